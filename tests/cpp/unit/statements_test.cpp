// The write path's SQL (postgres/statements.hpp): the upsert moves exactly the columns COPY fills, in that order,
// and every statement `strategy-bench-tool sql` prints is there once.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/postgres/statements.hpp"

namespace strategy_consumer {
namespace {

TEST(Statements, TheUpsertMovesTheCopyColumnsInOrder) {
  const std::string upsert(statements::kUpsert);
  const std::string columns(statements::kCopyColumns);
  EXPECT_NE(upsert.find("INSERT INTO strategies (" + columns + ")"), std::string::npos) << upsert;
  EXPECT_NE(upsert.find("SELECT " + columns), std::string::npos) << upsert;
  EXPECT_NE(upsert.find("ON CONFLICT (strategy_hash) DO UPDATE"), std::string::npos);
  EXPECT_NE(upsert.find("ORDER BY strategy_hash"), std::string::npos) << "one lock order for every writer";
  EXPECT_NE(std::string(statements::kCreateStaging).find(std::string(statements::kStagingTable)), std::string::npos);
  EXPECT_NE(std::string(statements::kCreateStaging).find("ON COMMIT DELETE ROWS"), std::string::npos);
}

TEST(Statements, TheEncoderWritesTheHeadersColumns) {
  EXPECT_EQ(kCopyColumns, statements::kCopyColumns);
}

TEST(Statements, EveryStatementHasOneName) {
  std::set<std::string_view> names;
  for (const auto& [name, sql] : statements::kAll) {
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_FALSE(sql.empty()) << name;
  }
  EXPECT_TRUE(names.count("upsert") && names.count("create_staging") && names.count("advance_offsets"));
}

}  // namespace
}  // namespace strategy_consumer
