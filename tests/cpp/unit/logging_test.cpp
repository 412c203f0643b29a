// The log lines (ops/logging.hpp): JSON and text formats, correlation fields, redaction of secrets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "strategy_consumer/ops/logging.hpp"

using namespace strategy_consumer;

namespace {

using test_support::lines_of;

}  // namespace

TEST(LogLines, JsonLineHasTimeLevelMessageAndFields) {
  const std::string line = format_json_line(1700000000123456, "warning", "dead-lettering \"x\"\n",
                                            {{"batch_id", 7}, {"topic", "t"}, {"partition", 2}, {"offset", 41}});
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["message"], "dead-lettering \"x\"\n");
  EXPECT_EQ(j["batch_id"], 7);
  EXPECT_EQ(j["topic"], "t");
  EXPECT_EQ(j["offset"], 41);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
}

TEST(LogLines, JsonLineSurvivesInvalidUtf8) {
  const auto j = nlohmann::json::parse(format_json_line(0, "info", "bad \xff byte", {{"k", "\xfe"}}));
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000000Z");
  EXPECT_NE(j["message"].get<std::string>().find("bad"), std::string::npos);
}

TEST(LogLines, TextLineEndsWithFields) {
  EXPECT_EQ(format_text_line(0, "info", "batch 1: done", {{"batch_id", 1}, {"topic", "t"}}),
            "1970-01-01T00:00:00.000000Z info batch 1: done [batch_id=1 topic=t]");
  EXPECT_EQ(format_text_line(0, "info", "plain", {}), "1970-01-01T00:00:00.000000Z info plain");
}

TEST(LogLines, ScopesNestAndInnerFieldsWin) {
  EXPECT_TRUE(current_log_fields().empty());
  {
    LogScope outer({{"batch_id", 1}, {"topic", "a"}});
    {
      LogScope inner({{"topic", "b"}, {"offset", 5}});
      const auto f = current_log_fields();
      ASSERT_EQ(f.size(), 3u);
      EXPECT_EQ(f[0].first, "batch_id");
      EXPECT_EQ(f[1].second, "b");
      EXPECT_EQ(f[2].first, "offset");
    }
    EXPECT_EQ(current_log_fields().size(), 2u);
    std::thread([] { EXPECT_TRUE(current_log_fields().empty()) << "scopes are per thread"; }).join();
  }
  EXPECT_TRUE(current_log_fields().empty());
}

TEST(LogLines, BatchFieldsCarryTheOffsetRangeOfEachPartition) {
  Batch batch;
  StrategyRecord r;
  r.strategy_hash = "h";
  batch.add(r, {"t", 0, 10});
  batch.skip({"t", 0, 11});
  batch.add(r, {"t", 3, 7});
  const auto fields = batch_log_fields(4, batch);
  nlohmann::json j;
  for (const auto& [k, v] : fields) j[k] = v;
  EXPECT_EQ(j["batch_id"], 4);
  EXPECT_EQ(j["topic"], "t");
  ASSERT_EQ(j["partitions"].size(), 2u);
  EXPECT_EQ(j["partitions"][0], (nlohmann::json{{"topic", "t"}, {"partition", 0}, {"first_offset", 10},
                                                {"last_offset", 11}}));
  EXPECT_EQ(j["partitions"][1]["first_offset"], 7);
  EXPECT_EQ(j["partitions"][1]["last_offset"], 7);
}

TEST(LogLines, LogFormatNames) {
  EXPECT_EQ(parse_log_format("json"), LogFormat::json);
  EXPECT_EQ(parse_log_format("text"), LogFormat::text);
  EXPECT_EQ(parse_log_format(""), default_log_format());
  EXPECT_ANY_THROW(parse_log_format("xml"));
}

TEST(LogLines, ConfiguredLoggerWritesJsonAndRedactsSecrets) {
  configure_logging(0, LogFormat::json, {"hunter22-secret", "abc"});
  testing::internal::CaptureStderr();
  {
    LogScope scope({{"batch_id", 9}, {"note", "has hunter22-secret inside"}});
    spdlog::info("connecting with \"{}\"", "hunter22-secret");
    spdlog::debug("not at verbosity 0");
  }
  spdlog::warn("abc stays: too short to search for");
  const std::string out = testing::internal::GetCapturedStderr();
  configure_logging(0, LogFormat::text);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(out.find("hunter22-secret"), std::string::npos) << out;
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["message"], "connecting with \"[redacted]\"");
  EXPECT_EQ(first["note"], "has [redacted] inside");
  EXPECT_EQ(first["batch_id"], 9);
  EXPECT_EQ(first["level"], "info");
  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["level"], "warning");
  EXPECT_EQ(second["message"], "abc stays: too short to search for");
  EXPECT_FALSE(second.contains("batch_id"));
}
