// The Prometheus text exposition written by MetricsRegistry, the Metrics the pipeline feeds and librdkafka
// statistics parsing. The probes' answers are in http_test.cpp, the log lines in logging_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>

#include "test_support.hpp"
#include "strategy_consumer/ops/metrics.hpp"

using namespace strategy_consumer;

namespace {

using test_support::lines_of;

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

// ---- exposition format ----

TEST(Exposition, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
  EXPECT_EQ(escape_label_value("tab\tstays"), "tab\tstays");
}

TEST(Exposition, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(escape_help("a \"quoted\" \\ word\nnext"), "a \"quoted\" \\\\ word\\nnext");
}

TEST(Exposition, SampleValues) {
  EXPECT_EQ(format_sample_value(0), "0");
  EXPECT_EQ(format_sample_value(42), "42");
  EXPECT_EQ(format_sample_value(-3), "-3");
  EXPECT_EQ(format_sample_value(0.25), "0.25");
  EXPECT_EQ(format_sample_value(0.001), "0.001");
  EXPECT_EQ(format_sample_value(1e300), "1e+300");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_sample_value(std::nan("")), "NaN");
  // Round trip: the shortest text that reads back as the same double.
  const double v = 0.1 + 0.2;
  EXPECT_EQ(std::stod(format_sample_value(v)), v);
}

TEST(Exposition, Labels) {
  EXPECT_EQ(format_labels({}), "");
  EXPECT_EQ(format_labels({{"a", "1"}, {"b", "x\"y"}}), "{a=\"1\",b=\"x\\\"y\"}");
}

TEST(Registry, CounterRendersHelpTypeAndSamplesInLabelOrder) {
  MetricsRegistry r;
  r.describe("x_total", "Things\nthat happened", MetricType::counter);
  r.add("x_total", {{"kind", "b"}}, 2);
  r.add("x_total", {{"kind", "a"}});
  r.add("x_total", {{"kind", "b"}});
  EXPECT_EQ(r.render(),
            "# HELP x_total Things\\nthat happened\n"
            "# TYPE x_total counter\n"
            "x_total{kind=\"a\"} 1\n"
            "x_total{kind=\"b\"} 3\n");
  EXPECT_EQ(r.value("x_total", {{"kind", "b"}}), 3);
  EXPECT_EQ(r.value("x_total", {{"kind", "zzz"}}), 0);
}

TEST(Registry, FamiliesRenderInTheOrderDescribed) {
  MetricsRegistry r;
  r.describe("zeta", "z", MetricType::gauge);
  r.describe("alpha", "a", MetricType::gauge);
  r.set("alpha", {}, 1);
  r.set("zeta", {}, 2);
  const auto text = r.render();
  EXPECT_LT(text.find("zeta"), text.find("alpha"));
  EXPECT_TRUE(has_line(text, "zeta 2"));
  EXPECT_TRUE(has_line(text, "alpha 1"));
}

TEST(Registry, FamilyWithoutSamplesPrintsOnlyItsHeader) {
  MetricsRegistry r;
  r.describe("empty", "nothing yet", MetricType::gauge);
  EXPECT_EQ(r.render(), "# HELP empty nothing yet\n# TYPE empty gauge\n");
}

TEST(Registry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry r;
  r.describe("lat_seconds", "Latency", MetricType::histogram, {0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 2.0, 100.0}) r.observe("lat_seconds", {}, v);
  EXPECT_EQ(r.render(),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 2\n"   // 0.05 and 0.1 (le: less than or equal)
            "lat_seconds_bucket{le=\"1\"} 3\n"
            "lat_seconds_bucket{le=\"10\"} 4\n"
            "lat_seconds_bucket{le=\"+Inf\"} 5\n"
            "lat_seconds_sum 102.65\n"
            "lat_seconds_count 5\n");
}

TEST(Registry, HistogramLabelsComeBeforeLe) {
  MetricsRegistry r;
  r.describe("h", "h", MetricType::histogram, {1});
  r.observe("h", {{"op", "w"}}, 0.5);
  EXPECT_TRUE(has_line(r.render(), "h_bucket{op=\"w\",le=\"1\"} 1"));
  EXPECT_TRUE(has_line(r.render(), "h_count{op=\"w\"} 1"));
}

TEST(Registry, TouchedHistogramStartsAtZero) {
  MetricsRegistry r;
  r.describe("h", "h", MetricType::histogram, {1, 2});
  r.touch("h");
  EXPECT_TRUE(has_line(r.render(), "h_bucket{le=\"+Inf\"} 0"));
  EXPECT_TRUE(has_line(r.render(), "h_sum 0"));
}

TEST(Registry, GaugeReplaceDropsSeriesThatWentAway) {
  MetricsRegistry r;
  r.describe("lag", "lag", MetricType::gauge);
  r.replace("lag", {{{{"partition", "0"}}, 5}, {{{"partition", "1"}}, 7}});
  r.replace("lag", {{{{"partition", "1"}}, 3}});
  const auto text = r.render();
  EXPECT_FALSE(has_line(text, "lag{partition=\"0\"} 5"));
  EXPECT_TRUE(has_line(text, "lag{partition=\"1\"} 3"));
}

TEST(Registry, MisuseIsAProgrammingError) {
  MetricsRegistry r;
  r.describe("c_total", "c", MetricType::counter);
  EXPECT_THROW(r.describe("c_total", "again", MetricType::counter), std::logic_error);
  EXPECT_THROW(r.add("unknown"), std::logic_error);
  EXPECT_THROW(r.add("c_total", {}, -1), std::logic_error);
  EXPECT_THROW(r.set("c_total", {}, 1), std::logic_error);
  EXPECT_THROW(r.observe("c_total", {}, 1), std::logic_error);
  EXPECT_THROW(r.describe("h", "no buckets", MetricType::histogram), std::logic_error);
}

TEST(Registry, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry r;
  r.describe("n_total", "n", MetricType::counter);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) r.add("n_total");
    });
  }
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) (void)r.render();
  });
  for (auto& t : threads) t.join();
  reader.join();
  EXPECT_EQ(r.value("n_total"), 40000);
}

// ---- the service's metrics ----

TEST(Metrics, EveryFamilyIsPrefixedAndTheOutcomesStartAtZero) {
  Metrics m("9.9.9");
  const auto text = m.render();
  for (const auto& line : lines_of(text)) {
    if (line.rfind("# ", 0) == 0) {
      std::istringstream in(line.substr(2));
      std::string kind, name;
      in >> kind >> name;
      EXPECT_EQ(name.rfind("strategy_consumer_", 0), 0u) << line;
    } else {
      EXPECT_EQ(line.rfind("strategy_consumer_", 0), 0u) << line;
    }
  }
  EXPECT_TRUE(has_line(text, "strategy_consumer_build_info{version=\"9.9.9\"} 1"));
  for (const char* outcome : {"stored_new", "stored_updated", "duplicate_in_batch", "dead_lettered"}) {
    EXPECT_TRUE(has_line(text, std::string("strategy_consumer_messages_total{outcome=\"") + outcome + "\"} 0"))
        << outcome;
  }
  EXPECT_TRUE(has_line(text, "strategy_consumer_batches_total 0"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_last_commit_timestamp_seconds 0"));
  // No rules registered: no rule families at all.
  EXPECT_EQ(text.find("rule"), std::string::npos);
}

TEST(Metrics, DeadLettersCountByStageWithTheirBatch) {
  Metrics m;
  m.batch_committed({.batch_id = 1, .messages = 10, .stored_new = 5, .stored_updated = 1, .duplicates = 1,
                     .dead_lettered = 3, .dead_letters_by_stage = {{"decode", 2}, {"database", 1}}});
  const auto& r = m.registry();
  EXPECT_EQ(r.value("strategy_consumer_dead_letters_total", {{"stage", "decode"}}), 2);
  EXPECT_EQ(r.value("strategy_consumer_dead_letters_total", {{"stage", "database"}}), 1);
  EXPECT_EQ(r.value("strategy_consumer_dead_letters_total", {{"stage", "validate"}}), 0);
  EXPECT_EQ(r.value("strategy_consumer_messages_total", {{"outcome", "stored_new"}}), 5);
  EXPECT_EQ(r.value("strategy_consumer_messages_total", {{"outcome", "stored_updated"}}), 1);
  EXPECT_EQ(r.value("strategy_consumer_messages_total", {{"outcome", "duplicate_in_batch"}}), 1);
  EXPECT_EQ(r.value("strategy_consumer_messages_total", {{"outcome", "dead_lettered"}}), 3);
  EXPECT_EQ(r.value("strategy_consumer_batches_total"), 1);
  EXPECT_EQ(r.value("strategy_consumer_batch_size_messages"), 1);  // one observation
  EXPECT_GT(r.value("strategy_consumer_last_commit_timestamp_seconds"), 1.7e9);
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_batch_size_messages_sum 10"));
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_batch_size_messages_bucket{le=\"10\"} 1"));
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_batch_size_messages_bucket{le=\"1\"} 0"));
}

TEST(Metrics, RefusedLettersAndCommitsInDoubtAreCountedFromZero) {
  Metrics m;
  const auto& r = m.registry();
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_dead_letters_refused_total{delivered=\"none\"} 0"));
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_commits_in_doubt_total{outcome=\"committed\"} 0"));
  m.dead_letter_refused(true);
  m.dead_letter_refused(false);
  m.dead_letter_refused(false);
  m.commit_in_doubt(true);
  EXPECT_EQ(r.value("strategy_consumer_dead_letters_refused_total", {{"delivered", "minimal"}}), 1);
  EXPECT_EQ(r.value("strategy_consumer_dead_letters_refused_total", {{"delivered", "none"}}), 2);
  EXPECT_EQ(r.value("strategy_consumer_commits_in_doubt_total", {{"outcome", "committed"}}), 1);
  EXPECT_EQ(r.value("strategy_consumer_commits_in_doubt_total", {{"outcome", "not_committed"}}), 0);
}

TEST(Metrics, RetriesByOperationAndStalledAsTheTrackerSays) {
  Metrics m;
  EXPECT_EQ(m.stall_reason(), "");
  m.retrying("write batch");
  m.retrying("write batch");
  EXPECT_EQ(m.registry().value("strategy_consumer_retries_total", {{"target", "write_batch"}}), 2);
  EXPECT_EQ(m.registry().value("strategy_consumer_stalled"), 0) << "retries count; the tracker says stalled";
  m.stall_changed(true, "retrying write batch");
  EXPECT_EQ(m.stall_reason(), "retrying write batch");
  EXPECT_EQ(m.registry().value("strategy_consumer_stalled"), 1);
  m.stall_changed(false, "");
  EXPECT_EQ(m.stall_reason(), "");
  EXPECT_EQ(m.registry().value("strategy_consumer_stalled"), 0);
  EXPECT_EQ(operation_label("connect to PostgreSQL"), "connect_to_postgresql");
  EXPECT_EQ(operation_label("deliver dead letters"), "deliver_dead_letters");
  EXPECT_EQ(operation_label("  "), "unknown");
}

TEST(Metrics, RuleEngineFailuresAreCountedByWhatTheyGrew) {
  Metrics m;
  EXPECT_FALSE(m.registry().has_family("strategy_consumer_rule_engine_failures_total")) << "no rules, no family";
  RuleStats totals;
  totals.rules.push_back({.name = "few_trades", .severity = "reject"});
  m.rules_evaluated(totals);
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_rule_engine_failures_total 0"));
  totals.engine_failures = 2;
  m.rules_evaluated(totals);
  m.rules_evaluated(totals);  // the same totals again: nothing more
  EXPECT_TRUE(has_line(m.render(), "strategy_consumer_rule_engine_failures_total 2"));
  totals.engine_failures = 3;
  m.rules_evaluated(totals);
  EXPECT_EQ(m.registry().value("strategy_consumer_rule_engine_failures_total"), 3);
}

TEST(Metrics, RuleTotalsBecomeTheRuleCountersByWhatTheyGrew) {
  Metrics m;
  RuleStats totals;
  totals.rules.push_back({.name = "few_trades", .severity = "reject"});
  totals.rules.push_back({.name = "high_sharpe", .severity = "warn"});
  m.rules_evaluated(totals);  // the engine was set: every series at 0
  auto text = m.render();
  for (const char* family : {"evaluations", "rejections", "errors", "warnings", "seconds"}) {
    EXPECT_TRUE(has_line(text, std::string("strategy_consumer_rule_") + family + "_total{rule=\"few_trades\"} 0"))
        << family;
  }
  totals.rules[0].evaluated = 100;
  totals.rules[0].rejected = 7;
  totals.rules[0].errors = 1;
  totals.rules[0].seconds = 0.25;
  totals.rules[1].evaluated = 100;
  totals.rules[1].warned = 3;
  m.rules_evaluated(totals);
  totals.rules[0].evaluated = 150;
  totals.rules[0].rejected = 9;
  totals.rules[0].seconds = 0.5;
  totals.rules[1].evaluated = 150;
  m.rules_evaluated(totals);
  text = m.render();
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_evaluations_total{rule=\"few_trades\"} 150"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_rejections_total{rule=\"few_trades\"} 9"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_errors_total{rule=\"few_trades\"} 1"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_seconds_total{rule=\"few_trades\"} 0.5"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_warnings_total{rule=\"high_sharpe\"} 3"));
  EXPECT_TRUE(has_line(text, "strategy_consumer_rule_rejections_total{rule=\"high_sharpe\"} 0"));
}

TEST(Metrics, HeartbeatAndAssignment) {
  Metrics m;
  const auto before = m.last_heartbeat();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  m.heartbeat(3);
  EXPECT_GT(m.last_heartbeat(), before);
  EXPECT_EQ(m.assigned_partitions(), 3u);
  EXPECT_EQ(m.registry().value("strategy_consumer_assigned_partitions"), 3);
}

// ---- librdkafka statistics ----

const char* const kStatistics = R"({
  "name": "strategy-consumer#consumer-1", "type": "consumer",
  "brokers": {
    "127.0.0.1:39000/bootstrap": {"name": "127.0.0.1:39000/bootstrap", "nodeid": -1, "source": "configured", "state": "UP"},
    "127.0.0.1:39000/1": {"name": "127.0.0.1:39000/1", "nodeid": 1, "source": "learned", "state": "UP"},
    "127.0.0.1:39001/2": {"name": "127.0.0.1:39001/2", "nodeid": 2, "source": "learned", "state": "DOWN"},
    "GroupCoordinator": {"name": "GroupCoordinator", "nodeid": 1, "source": "logical", "state": "UP"}
  },
  "topics": {
    "strategies": {"topic": "strategies", "partitions": {
      "0": {"partition": 0, "fetch_state": "active", "consumer_lag": 12, "committed_offset": 88},
      "1": {"partition": 1, "fetch_state": "active", "consumer_lag": 0},
      "2": {"partition": 2, "fetch_state": "none", "consumer_lag": 40},
      "3": {"partition": 3, "fetch_state": "active", "consumer_lag": -1, "lo_offset": 0, "ls_offset": 5},
      "4": {"partition": 4, "fetch_state": "active", "consumer_lag": -1, "lo_offset": 0, "ls_offset": 0},
      "-1": {"partition": -1, "fetch_state": "none", "consumer_lag": -1}
    }}
  }
})";

TEST(KafkaStatisticsParse, LagOfFetchedPartitionsAndRealBrokersUp) {
  const auto s = parse_kafka_statistics(kStatistics);
  // 2: revoked; 3: nothing committed yet (unknown); 4: nothing committed and empty (0); -1: not a partition.
  ASSERT_EQ(s.lag.size(), 3u);
  EXPECT_EQ(s.lag[0].topic, "strategies");
  EXPECT_EQ(s.lag[0].partition, 0);
  EXPECT_EQ(s.lag[0].lag, 12);
  EXPECT_EQ(s.lag[1].partition, 1);
  EXPECT_EQ(s.lag[1].lag, 0);
  EXPECT_EQ(s.lag[2].partition, 4);
  EXPECT_EQ(s.lag[2].lag, 0);
  EXPECT_EQ(s.brokers, 2);
  EXPECT_EQ(s.brokers_up, 1);
}

TEST(KafkaStatisticsParse, GarbageGivesNothing) {
  for (const char* bad : {"", "not json", "[]", "{\"topics\": 3}", "{\"topics\": {\"t\": {\"partitions\": []}}}"}) {
    const auto s = parse_kafka_statistics(bad);
    EXPECT_TRUE(s.lag.empty()) << bad;
    EXPECT_EQ(s.brokers, 0) << bad;
  }
}

TEST(KafkaStatisticsParse, MetricsReplaceTheLagSeries) {
  Metrics m;
  m.kafka_statistics(kStatistics);
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "strategy_consumer_consumer_lag_messages{partition=\"0\",topic=\"strategies\"} 12") ||
              has_line(text, "strategy_consumer_consumer_lag_messages{topic=\"strategies\",partition=\"0\"} 12"))
      << text;
  EXPECT_EQ(m.kafka_brokers_up(), 1);
  m.kafka_statistics(R"({"brokers": {}, "topics": {}})");
  EXPECT_EQ(m.render().find("strategy_consumer_consumer_lag_messages{"), std::string::npos);
  EXPECT_EQ(m.kafka_brokers_up(), -1);
}
