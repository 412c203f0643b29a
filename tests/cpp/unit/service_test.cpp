// The one exit-code map (service/service.hpp): what the binary and `python -m strategy_consumer` exit with.
#include <gtest/gtest.h>

#include <stdexcept>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/service/service.hpp"

namespace strategy_consumer {
namespace {

TEST(ServiceOutcome, ConfigurationErrorsExitTwo) {
  const auto out = outcome_of(std::make_exception_ptr(ConfigError("--batch_size: must be at least 1")));
  EXPECT_EQ(out.exit_code, kExitBadConfig);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.reason, "bad_config");
  EXPECT_THROW(std::rethrow_exception(out.error), ConfigError);
}

TEST(ServiceOutcome, FailuresAfterRetriesExitOne) {
  const auto out = outcome_of(std::make_exception_ptr(DatabaseError("connection refused", "", true)));
  EXPECT_EQ(out.exit_code, kExitFailed);
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(out.reason, "failed");
}

TEST(ServiceOutcome, AnExceptionThatIsNotOursExitsOneInsteadOfAborting) {
  EXPECT_EQ(outcome_of(std::make_exception_ptr(std::out_of_range("vector::at"))).exit_code, kExitFailed);
  EXPECT_EQ(outcome_of(std::make_exception_ptr(42)).exit_code, kExitFailed);
}

TEST(ServiceOutcome, ExitReasonsHaveOneSpelling) {
  EXPECT_STREQ(exit_reason_name(ExitReason::idle), "idle");
  EXPECT_STREQ(exit_reason_name(ExitReason::time_limit), "time_limit");
  EXPECT_STREQ(exit_reason_name(ExitReason::stopped), "stopped");
}

}  // namespace
}  // namespace strategy_consumer
