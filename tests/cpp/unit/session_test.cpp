// The settings of the service's PostgreSQL sessions (session.hpp), by server version.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/postgres/session.hpp"

namespace strategy_consumer {
namespace {

std::map<std::string, std::string> as_map(const SessionSettings& s) { return {s.settings.begin(), s.settings.end()}; }

PostgresConfig service_config() {
  PostgresConfig c;
  c.statement_timeout_seconds = 300;
  c.lock_timeout_seconds = 2.5;
  return c;
}

TEST(SessionSettings, FourteenAndLaterCheckTheClientEveryTwoSeconds) {
  for (int version : {140000, 150004, 170000}) {
    const auto s = session_settings(service_config(), version);
    EXPECT_EQ(as_map(s), (std::map<std::string, std::string>{{"statement_timeout", "300000"},
                                                              {"lock_timeout", "2500"},
                                                              {"client_connection_check_interval", "2000"}}))
        << version;
    EXPECT_TRUE(s.warnings.empty()) << version;
  }
}

// PostgreSQL 13 and older refuse a session that names client_connection_check_interval: every connection
// failed, for ever. It is left out there, with a warning.
TEST(SessionSettings, ThirteenAndOlderLeaveOutTheConnectionCheckWithAWarning) {
  for (int version : {130011, 120000, 90600}) {
    const auto s = session_settings(service_config(), version);
    EXPECT_EQ(as_map(s).count("client_connection_check_interval"), 0u) << version;
    EXPECT_EQ(as_map(s).at("statement_timeout"), "300000") << version;
    ASSERT_EQ(s.warnings.size(), 1u) << version;
    EXPECT_NE(s.warnings[0].find("client_connection_check_interval"), std::string::npos);
  }
  EXPECT_NE(session_settings(service_config(), 130011).warnings[0].find("PostgreSQL 13 "), std::string::npos);
}

TEST(SessionSettings, ZeroTimeoutsLeaveTheServersSetting) {
  const auto s = session_settings(PostgresConfig{}, 150000);
  EXPECT_EQ(as_map(s), (std::map<std::string, std::string>{{"client_connection_check_interval", "2000"}}));
}

TEST(SessionSettings, TheConnectionStringNamesNoVersionDependentSetting) {
  PostgresConfig c = service_config();
  c.password = "pw";
  const std::string s = c.connection_string();
  EXPECT_EQ(s.find("client_connection_check_interval"), std::string::npos);
  EXPECT_NE(s.find("client_encoding=UTF8"), std::string::npos);
  EXPECT_NE(s.find("TimeZone=UTC"), std::string::npos);
  EXPECT_NE(s.find("keepalives=1"), std::string::npos);
  EXPECT_NE(s.find("keepalives_idle=30"), std::string::npos);
}

// A statement cut off by the session limits is retried like any transient failure, never fatal.
TEST(SessionSettings, WhatTheTimeoutsRaiseIsRetried) {
  EXPECT_TRUE(is_retryable_sqlstate("55P03")) << "lock_timeout: lock_not_available";
  EXPECT_TRUE(is_retryable_sqlstate("57014")) << "statement_timeout: query_canceled";
  EXPECT_FALSE(is_retryable_sqlstate("55000")) << "other object-state errors are not";
  EXPECT_FALSE(is_retryable_sqlstate("23514"));
}

}  // namespace
}  // namespace strategy_consumer
