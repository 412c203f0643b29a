// Configuration (config.hpp): flags over environment over defaults, validation naming the flag, secrets kept
// out of messages, and every setting reaching librdkafka / libpq.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {
namespace {

using Args = std::vector<std::string>;
using Settings = std::map<std::string, std::string>;

Config parse(const Args& args, const Environment& env = {}) {
  CommandLine cl = parse_command_line(args, env);
  EXPECT_FALSE(cl.help_requested);
  return cl.config;
}

// The ConfigError message of a parse that must fail ("" and a test failure when it did not throw).
std::string config_error(const Args& args, const Environment& env = {}) {
  try {
    parse_command_line(args, env);
  } catch (const ConfigError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_FALSE(e.remedy().empty());
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than ConfigError: " << e.what();
    return {};
  }
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  for (const auto& [k, v] : env) joined += k + "=" + v + " ";
  ADD_FAILURE() << "no ConfigError for: " << joined;
  return {};
}

std::string get(const Settings& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? "<absent>" : it->second;
}

// A setting read back from a Config as text, for table-driven checks.
struct Field {
  const char* flag;  // without the leading dashes
  const char* env;   // "" when there is none
  std::function<std::string(const Config&)> read;
  const char* value;        // a valid non-default value
  const char* other_value;  // another one
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      {"kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", [](const Config& c) { return c.kafka.bootstrap_servers; },
       "broker-1:9093,broker-2:9093", "other:9092"},
      {"kafka_topic", "KAFKA_TOPIC_STRATEGIES", [](const Config& c) { return c.kafka.topic; }, "my-topic", "t2"},
      {"kafka_group_id", "KAFKA_GROUP_ID", [](const Config& c) { return c.kafka.group_id; }, "group-a", "group-b"},
      {"postgres_host", "POSTGRES_HOST", [](const Config& c) { return c.postgres.host; }, "db.internal", "db2"},
      {"postgres_port", "POSTGRES_PORT", [](const Config& c) { return std::to_string(c.postgres.port); }, "6543",
       "5433"},
      {"postgres_database", "POSTGRES_DB", [](const Config& c) { return c.postgres.database; }, "strats", "other"},
      {"postgres_username", "POSTGRES_USER", [](const Config& c) { return c.postgres.user; }, "alice", "bob"},
      {"postgres_password", "POSTGRES_PASSWORD", [](const Config& c) { return c.postgres.password; }, "pw-1",
       "pw-2"},
      {"batch_size", "BATCH_SIZE", [](const Config& c) { return std::to_string(c.processing.batch_size); }, "50",
       "77"},
      {"batch_timeout_seconds", "BATCH_TIMEOUT_SECONDS",
       [](const Config& c) { return num(c.processing.batch_timeout_seconds); }, "2.5", "7"},
      {"max_retries", "MAX_RETRIES", [](const Config& c) { return std::to_string(c.processing.max_retries); }, "7",
       "0"},
      // Flags without an environment variable.
      {"kafka_auto_offset_reset", "", [](const Config& c) { return c.kafka.auto_offset_reset; }, "latest",
       "earliest"},
      {"kafka_security_protocol", "", [](const Config& c) { return c.kafka.security_protocol; }, "SASL_SSL", "SSL"},
      {"poll_timeout_ms", "", [](const Config& c) { return std::to_string(c.kafka.poll_timeout_ms); }, "250", "5"},
      {"idle_timeout_seconds", "", [](const Config& c) { return num(c.processing.idle_timeout_seconds); }, "60",
       "1.5"},
      {"max_processing_time_seconds", "",
       [](const Config& c) { return num(c.processing.max_processing_time_seconds); }, "240", "10"},
      {"postgres_min_connections", "", [](const Config& c) { return std::to_string(c.postgres.min_connections); },
       "2", "3"},
      {"postgres_max_connections", "", [](const Config& c) { return std::to_string(c.postgres.max_connections); },
       "20", "30"},
      {"verbosity", "", [](const Config& c) { return std::to_string(c.verbosity); }, "-1", "2"},
      {"dlq_topic", "", [](const Config& c) { return c.kafka.dlq_topic; }, "my-dlq", "dlq2"},
  };
  return kFields;
}

TEST(ParseCommandLine, Defaults) {
  const Config c = parse({});
  EXPECT_EQ(c.kafka.topic, "discovered-strategies");
  EXPECT_EQ(c.kafka.group_id, "strategy-consumer");
  EXPECT_EQ(c.kafka.bootstrap_servers, "localhost:9092");
  EXPECT_EQ(c.kafka.auto_offset_reset, "earliest");
  EXPECT_EQ(c.kafka.security_protocol, "PLAINTEXT");
  EXPECT_EQ(c.kafka.dlq_topic, "strategy-consumer-dlq");
  EXPECT_TRUE(c.kafka.properties.empty());
  EXPECT_EQ(c.processing.batch_size, 1000);
  EXPECT_DOUBLE_EQ(c.processing.batch_timeout_seconds, 30.0);
  EXPECT_EQ(c.processing.max_retries, 3);
  EXPECT_FALSE(c.processing.drain_mode());
  EXPECT_EQ(c.postgres.host, "localhost");
  EXPECT_EQ(c.postgres.port, 5432);
  EXPECT_TRUE(c.postgres.password.empty());
  EXPECT_TRUE(c.migrate);
  EXPECT_EQ(c.verbosity, 0);
}

TEST(ParseCommandLine, MessageFormatAndCompatibilityFlags) {
  Config d = parse({});
  EXPECT_EQ(d.processing.message_format, "auto");
  EXPECT_EQ(d.processing.parameters_layout, "named");
  EXPECT_EQ(d.processing.strategy_hash_scheme, "canonical");
  Config c = parse({"--message_format=protobuf", "--parameters_layout", "tradestream",
                    "--strategy_hash_scheme=tradestream"});
  EXPECT_EQ(c.processing.message_format, "protobuf");
  EXPECT_EQ(c.processing.parameters_layout, "tradestream");
  EXPECT_EQ(c.processing.strategy_hash_scheme, "tradestream");
  EXPECT_NE(config_error({"--message_format=xml"}).find("--message_format"), std::string::npos);
  EXPECT_NE(config_error({"--parameters_layout=flat"}).find("--parameters_layout"), std::string::npos);
  EXPECT_NE(config_error({"--strategy_hash_scheme=md5"}).find("--strategy_hash_scheme"), std::string::npos);
}

TEST(ParseCommandLine, EnvironmentUsedWhenFlagAbsent) {
  for (const auto& f : fields()) {
    if (std::string(f.env).empty()) continue;
    const Config c = parse({}, {{f.env, f.value}});
    EXPECT_EQ(f.read(c), f.value) << f.env;
  }
}

TEST(ParseCommandLine, AllEnvironmentVariablesTogether) {
  Environment env;
  for (const auto& f : fields()) {
    if (!std::string(f.env).empty()) env[f.env] = f.value;
  }
  env["UNRELATED"] = "ignored";
  const Config c = parse({}, env);
  for (const auto& f : fields()) {
    if (!std::string(f.env).empty()) EXPECT_EQ(f.read(c), f.value) << f.env;
  }
}

TEST(ParseCommandLine, EmptyEnvironmentVariableMeansUnset) {
  const Config c = parse({}, {{"KAFKA_TOPIC_STRATEGIES", ""}, {"BATCH_SIZE", ""}});
  EXPECT_EQ(c.kafka.topic, "discovered-strategies");
  EXPECT_EQ(c.processing.batch_size, 1000);
}

TEST(ParseCommandLine, FlagFormsEqualsAndSeparateValue) {
  for (const auto& f : fields()) {
    const std::string flag = std::string("--") + f.flag;
    EXPECT_EQ(f.read(parse({flag + "=" + f.value})), f.value) << flag << "=value";
    EXPECT_EQ(f.read(parse({flag, f.value})), f.value) << flag << " value";
  }
}

TEST(ParseCommandLine, FlagBeatsEnvironment) {
  for (const auto& f : fields()) {
    if (std::string(f.env).empty()) continue;
    const std::string flag = std::string("--") + f.flag;
    const Environment env{{f.env, f.other_value}};
    EXPECT_EQ(f.read(parse({flag + "=" + f.value}, env)), f.value) << flag;
    EXPECT_EQ(f.read(parse({flag, f.value}, env)), f.value) << flag;
  }
}

TEST(ParseCommandLine, ManyFlagsAtOnce) {
  const Config c = parse({"--kafka_topic", "t1", "--batch_size=10", "--postgres_port", "6000", "--no_migrate",
                          "--kafka_group_id=g"},
                         {{"KAFKA_BOOTSTRAP_SERVERS", "env-broker:1"}});
  EXPECT_EQ(c.kafka.topic, "t1");
  EXPECT_EQ(c.processing.batch_size, 10);
  EXPECT_EQ(c.postgres.port, 6000);
  EXPECT_FALSE(c.migrate);
  EXPECT_EQ(c.kafka.group_id, "g");
  EXPECT_EQ(c.kafka.bootstrap_servers, "env-broker:1");
}

TEST(ParseCommandLine, ShutdownTimeout) {
  EXPECT_EQ(parse({}).processing.shutdown_timeout_seconds, 10);
  EXPECT_EQ(parse({"--shutdown_timeout_seconds=2.5"}).processing.shutdown_timeout_seconds, 2.5);
}

TEST(PostgresConfig, TheConnectionStringHoldsOnlySettingsEveryServerKnows) {
  const std::string cs = PostgresConfig{}.connection_string();
  EXPECT_EQ(cs.find("client_connection_check_interval"), std::string::npos) << cs << ": SET by version";
  EXPECT_NE(cs.find("-c TimeZone=UTC"), std::string::npos) << cs;
  EXPECT_NE(cs.find("client_encoding=UTF8"), std::string::npos) << cs;
}

TEST(ParseCommandLine, SessionTimeoutsAndTheWriteStallLimit) {
  const Config d = parse({});
  EXPECT_EQ(d.postgres.statement_timeout_seconds, 300);
  EXPECT_EQ(d.postgres.lock_timeout_seconds, 60);
  EXPECT_EQ(d.processing.write_stall_seconds, 600);
  const Config c = parse({"--statement_timeout_seconds=30", "--lock_timeout_seconds=0", "--write_stall_seconds=5"});
  EXPECT_EQ(c.postgres.statement_timeout_seconds, 30);
  EXPECT_EQ(c.postgres.lock_timeout_seconds, 0);
  EXPECT_EQ(c.processing.write_stall_seconds, 5);
  EXPECT_THROW(parse({"--write_stall_seconds=0"}), ConfigError);
  EXPECT_THROW(parse({"--statement_timeout_seconds=-1"}), ConfigError);
}

TEST(ParseCommandLine, ScoreHistoryFlagsAndEnvironment) {
  const Config d = parse({});
  EXPECT_TRUE(d.postgres.score_history);
  EXPECT_EQ(d.postgres.score_history_retention_days, 0);
  const Config c = parse({"--score_history=false", "--score_history_retention_days", "400"});
  EXPECT_FALSE(c.postgres.score_history);
  EXPECT_EQ(c.postgres.score_history_retention_days, 400);
  const Config e = parse({}, {{"SCORE_HISTORY", "false"}, {"SCORE_HISTORY_RETENTION_DAYS", "90"}});
  EXPECT_FALSE(e.postgres.score_history);
  EXPECT_EQ(e.postgres.score_history_retention_days, 90);
  EXPECT_TRUE(parse({"--score_history=true"}, {{"SCORE_HISTORY", "false"}}).postgres.score_history)
      << "a flag beats the environment";
  EXPECT_THROW(parse({"--score_history_retention_days=-1"}), ConfigError);
  EXPECT_THROW(parse({"--score_history=maybe"}), ConfigError);
}

TEST(ParseCommandLine, DrainModeFlags) {
  EXPECT_TRUE(parse({"--idle_timeout_seconds=30"}).processing.drain_mode());
  EXPECT_TRUE(parse({"--max_processing_time_seconds=240"}).processing.drain_mode());
}

TEST(ParseCommandLine, TheReplayCommandHasItsFlagsAndIsADrain) {
  const Config plain = parse({"--kafka_group_id=g"});
  EXPECT_FALSE(plain.replay.enabled);
  const Config c = parse({"replay-dead-letters", "--kafka_group_id=g", "--stage=validate", "--stage=rule",
                          "--rule=parameters.range", "--source_partition=3", "--from_offset=10", "--to_offset=20",
                          "--since=2026-11-01T00:00:00Z", "--until=2026-11-02T00:00:00+01:00", "--dry_run"});
  EXPECT_TRUE(c.replay.enabled);
  EXPECT_TRUE(c.replay.dry_run);
  EXPECT_EQ(c.replay.group_id, "g-replay");
  EXPECT_EQ(c.replay.stages, (std::vector<std::string>{"validate", "rule"}));
  EXPECT_EQ(c.replay.rule_ids, std::vector<std::string>{"parameters.range"});
  EXPECT_EQ(c.replay.source_partitions, std::vector<int>{3});
  EXPECT_EQ(c.replay.from_offset, 10);
  EXPECT_EQ(c.replay.to_offset, 20);
  EXPECT_TRUE(c.processing.drain_mode()) << "a replay ends once the topic is read";
  EXPECT_EQ(c.processing.idle_timeout_seconds, 2);
  EXPECT_TRUE(c.direct_assignment());
  EXPECT_EQ(parse({"replay-dead-letters", "--idle_timeout_seconds=7"}).processing.idle_timeout_seconds, 7);
  EXPECT_EQ(parse({"replay-dead-letters", "--replay_group_id=r"}).replay.group_id, "r");
  EXPECT_EQ(c.http.port, 0) << "a replay serves no probes unless asked";
  EXPECT_EQ(parse({"replay-dead-letters", "--http_port=9090"}).http.port, 9090);
  EXPECT_EQ(plain.http.port, 8080);
  EXPECT_EQ(parse({"replay-dead-letters"}, {{"KAFKA_DLQ_TOPIC", "letters"}}).kafka.dlq_topic, "letters");

  EXPECT_NE(config_error({"--dry_run"}).find("unknown flag(s): --dry_run"), std::string::npos)
      << "replay flags exist only with the command";
  EXPECT_NE(config_error({"--kafka_topic=t", "replay-dead-letters"}).find("positional"), std::string::npos);
  EXPECT_NE(config_error({"replay-dead-letters", "--since=yesterday"}).find("--since"), std::string::npos);
  EXPECT_NE(config_error({"replay-dead-letters", "--from_offset=9", "--to_offset=3"}).find("--to_offset"),
            std::string::npos);
  EXPECT_NE(config_error({"replay-dead-letters", "--source_partition=-1"}).find("--source_partition"),
            std::string::npos);
  const CommandLine help = parse_command_line({"replay-dead-letters", "--help"}, {});
  EXPECT_TRUE(help.help_requested);
  EXPECT_NE(help.help_text.find("--dry_run"), std::string::npos);
  EXPECT_EQ(parse_command_line({"--help"}, {}).help_text.find("--dry_run"), std::string::npos);
}

TEST(ParseCommandLine, AssignmentIsDirectInDrainModeUnlessAsked) {
  EXPECT_EQ(parse({}).kafka.assignment, "auto");
  EXPECT_FALSE(parse({}).direct_assignment());  // a service joins its group
  EXPECT_TRUE(parse({"--idle_timeout_seconds=5"}).direct_assignment());
  EXPECT_TRUE(parse({"--max_processing_time_seconds=60"}).direct_assignment());
  EXPECT_FALSE(parse({"--idle_timeout_seconds=5", "--kafka_assignment=group"}).direct_assignment());
  EXPECT_TRUE(parse({"--kafka_assignment=direct"}).direct_assignment());
  try {
    parse({"--kafka_assignment=static"});
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--kafka_assignment"), std::string::npos) << e.what();
  }
}

TEST(ParseCommandLine, InvalidValuesNameTheFlag) {
  struct Case {
    Args args;
    Environment env;
    std::string must_name;
  };
  const std::vector<Case> cases = {
      {{"--batch_size=0"}, {}, "--batch_size"},
      {{"--batch_size=abc"}, {}, "--batch_size"},
      {{"--batch_size", "-5"}, {}, "--batch_size"},
      {{"--batch_size=1.5"}, {}, "--batch_size"},
      {{"--batch_size"}, {}, "--batch_size"},  // value missing
      {{"--postgres_port=70000"}, {}, "--postgres_port"},
      {{"--postgres_port=0"}, {}, "--postgres_port"},
      {{"--postgres_port=abc"}, {}, "--postgres_port"},
      {{"--kafka_auto_offset_reset=sideways"}, {}, "--kafka_auto_offset_reset"},
      {{"--kafka_security_protocol=TLS"}, {}, "--kafka_security_protocol"},
      {{"--batch_timeout_seconds=0"}, {}, "--batch_timeout_seconds"},
      {{"--batch_timeout_seconds=-1"}, {}, "--batch_timeout_seconds"},
      {{"--max_retries=-1"}, {}, "--max_retries"},
      {{"--idle_timeout_seconds=-5"}, {}, "--idle_timeout_seconds"},
      {{"--shutdown_timeout_seconds=0"}, {}, "--shutdown_timeout_seconds"},
      {{"--poll_timeout_ms=0"}, {}, "--poll_timeout_ms"},
      {{"--kafka_topic=bad topic"}, {}, "--kafka_topic"},
      {{"--kafka_topic="}, {}, "--kafka_topic"},
      {{"--kafka_bootstrap_servers="}, {}, "--kafka_bootstrap_servers"},
      {{"--kafka_group_id="}, {}, "--kafka_group_id"},
      {{"--postgres_host="}, {}, "--postgres_host"},
      {{"--kafka_ssl_cafile=/nonexistent/ca.pem"}, {}, "--kafka_ssl_cafile"},
      {{"--kafka_property=no-equals-sign"}, {}, "--kafka_property"},
      {{"--kafka_property==value"}, {}, "--kafka_property"},
      {{"--postgres_min_connections=5", "--postgres_max_connections=2"}, {}, "--postgres_max_connections"},
      {{"--verbosity=9"}, {}, "--verbosity"},
      {{"--dlq_topic=discovered-strategies"}, {}, "--dlq_topic"},
      // Bad environment values name the variable.
      {{}, {{"BATCH_SIZE", "abc"}}, "BATCH_SIZE"},
      {{}, {{"POSTGRES_PORT", "five"}}, "POSTGRES_PORT"},
      {{}, {{"MAX_RETRIES", "3x"}}, "MAX_RETRIES"},
      {{}, {{"BATCH_TIMEOUT_SECONDS", "soon"}}, "BATCH_TIMEOUT_SECONDS"},
  };
  for (const auto& c : cases) {
    const std::string what = config_error(c.args, c.env);
    EXPECT_NE(what.find(c.must_name), std::string::npos) << "message '" << what << "' does not name " << c.must_name;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

TEST(ParseCommandLine, ValidEnvironmentValueOutOfRangeIsRejected) {
  // BATCH_SIZE=0 parses as a number, then fails validation: the message names the setting.
  const std::string what = config_error({}, {{"BATCH_SIZE", "0"}});
  EXPECT_TRUE(what.find("BATCH_SIZE") != std::string::npos || what.find("--batch_size") != std::string::npos)
      << what;
}

TEST(ParseCommandLine, UnknownFlagsAndStrayArgumentsThrow) {
  for (const Args& args : {Args{"--no_such_flag=1"}, Args{"--no_such_flag"}, Args{"--batchsize=10"},
                           Args{"stray-positional"}, Args{"--kafka_topic", "t", "extra"}}) {
    EXPECT_FALSE(config_error(args).empty()) << args.front();
  }
}

TEST(ParseCommandLine, KafkaPropertyIsRepeatableAndOverridesOurs) {
  const Config c = parse({"--kafka_property", "session.timeout.ms=6000", "--kafka_property=fetch.wait.max.ms=10",
                          "--kafka_property", "enable.auto.commit=true", "--kafka_group_id=mine",
                          "--kafka_property=group.id=theirs", "--kafka_property=client.id=a=b"});
  const Settings expected_props{{"session.timeout.ms", "6000"},
                                {"fetch.wait.max.ms", "10"},
                                {"enable.auto.commit", "true"},
                                {"group.id", "theirs"},
                                {"client.id", "a=b"}};
  EXPECT_EQ(c.kafka.properties, expected_props);
  const Settings s = c.kafka.consumer_settings();
  EXPECT_EQ(get(s, "session.timeout.ms"), "6000");
  EXPECT_EQ(get(s, "fetch.wait.max.ms"), "10");
  EXPECT_EQ(get(s, "enable.auto.commit"), "true") << "the escape hatch is applied last";
  EXPECT_EQ(get(s, "group.id"), "theirs");
  EXPECT_EQ(get(s, "client.id"), "a=b") << "only the first '=' splits key from value";
}

// ---- secrets ----

TEST(ParseCommandLine, ConfigErrorsNeverContainThePassword) {
  const std::string secret = "Hunter2-s3cr3t";
  struct Case {
    const char* name;
    Args args;
    Environment env;
  };
  const std::vector<Case> cases = {
      {"password by flag, other flag invalid", {"--postgres_password=" + secret, "--batch_size=0"}, {}},
      {"password by env, other flag invalid", {"--batch_size=abc"}, {{"POSTGRES_PASSWORD", secret}}},
      {"password by env, other env invalid", {}, {{"POSTGRES_PASSWORD", secret}, {"BATCH_SIZE", "abc"}}},
      {"password by flag, unknown flag", {"--postgres_password", secret, "--bogus"}, {}},
      {"password flag given twice", {"--postgres_password=" + secret, "--postgres_password=" + secret + "x"}, {}},
      {"password value looks like a flag", {"--postgres_password", "-" + secret}, {}},
      {"password flag misspelt, =value", {"--postgres_pasword=" + secret}, {}},
      {"password flag misspelt, separate value", {"--postgres-password", secret}, {}},
      {"password and a stray argument", {"--postgres_password=" + secret, "stray"}, {}},
  };
  for (const auto& c : cases) {
    std::string what;
    try {
      parse_command_line(c.args, c.env);
      // Accepting the input is fine too (e.g. the last of two values); then nothing leaked.
      continue;
    } catch (const ConfigError& e) {
      what = e.what();
    }
    EXPECT_EQ(what.find(secret), std::string::npos) << c.name << ": the message shows the password: " << what;
  }
}

TEST(ParseCommandLine, HelpListsFlagsAndDefaults) {
  const CommandLine cl = parse_command_line({"--help"}, {});
  ASSERT_TRUE(cl.help_requested);
  const std::string& help = cl.help_text;
  for (const char* flag :
       {"--kafka_bootstrap_servers", "--kafka_topic", "--kafka_group_id", "--kafka_auto_offset_reset",
        "--kafka_security_protocol", "--kafka_ssl_cafile", "--kafka_ssl_certfile", "--kafka_ssl_keyfile",
        "--postgres_host", "--postgres_port", "--postgres_database", "--postgres_username", "--postgres_password",
        "--batch_size", "--batch_timeout_seconds", "--max_retries", "--poll_timeout_ms", "--idle_timeout_seconds",
        "--max_processing_time_seconds", "--postgres_min_connections", "--postgres_max_connections", "--verbosity",
        "--kafka_property"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag << " missing from help:\n" << help;
  }
  for (const char* shown : {"discovered-strategies", "strategy-consumer", "localhost:9092", "1000", "earliest",
                            "KAFKA_TOPIC_STRATEGIES", "POSTGRES_PASSWORD", "BATCH_SIZE"}) {
    EXPECT_NE(help.find(shown), std::string::npos) << shown << " missing from help:\n" << help;
  }
  // The default sits on the flag's own line.
  auto line_of = [&](const std::string& flag) {
    const auto at = help.find(flag + " ");
    if (at == std::string::npos) return std::string();
    const auto start = help.rfind('\n', at) + 1;
    return help.substr(start, help.find('\n', at) - start);
  };
  EXPECT_NE(line_of("--batch_size").find("1000"), std::string::npos) << line_of("--batch_size");
  EXPECT_NE(line_of("--batch_timeout_seconds").find("30"), std::string::npos) << line_of("--batch_timeout_seconds");
  EXPECT_NE(line_of("--max_retries").find("3"), std::string::npos) << line_of("--max_retries");
  EXPECT_NE(line_of("--kafka_topic").find("discovered-strategies"), std::string::npos) << line_of("--kafka_topic");
  EXPECT_NE(line_of("--kafka_group_id").find("strategy-consumer"), std::string::npos) << line_of("--kafka_group_id");
  // -h is the same.
  EXPECT_EQ(parse_command_line({"-h"}, {}).help_text, help);
}

TEST(ParseCommandLine, HelpNeverShowsThePassword) {
  const std::string env_secret = "env-Secret-123";
  const std::string flag_secret = "flag-Secret-456";
  for (const Args& args : {Args{"--help"}, Args{"--postgres_password=" + flag_secret, "--help"},
                           Args{"--help", "--postgres_password", flag_secret}}) {
    const CommandLine cl = parse_command_line(args, {{"POSTGRES_PASSWORD", env_secret}});
    ASSERT_TRUE(cl.help_requested);
    EXPECT_EQ(cl.help_text.find(env_secret), std::string::npos) << cl.help_text;
    EXPECT_EQ(cl.help_text.find(flag_secret), std::string::npos) << cl.help_text;
  }
}

// ---- librdkafka settings ----

TEST(KafkaSettings, ConsumerEssentials) {
  const Config c = parse({"--kafka_group_id=g1", "--kafka_auto_offset_reset=latest"});
  const Settings s = c.kafka.consumer_settings();
  EXPECT_EQ(get(s, "enable.auto.commit"), "false");
  EXPECT_EQ(get(s, "group.id"), "g1");
  EXPECT_EQ(get(s, "auto.offset.reset"), "latest");
  EXPECT_EQ(get(s, "partition.assignment.strategy"), "cooperative-sticky");
  EXPECT_EQ(get(s, "enable.auto.offset.store"), "false");
}

TEST(KafkaSettings, PrefetchHoldsMoreThanASecondAndRefillsInBoundedSteps) {
  // librdkafka 2.0 looks at a full prefetch queue again once a second: 32 MiB (some 60,000 messages) outlasts that
  // at the consumer's top rate; one fetch response adds at most 8 MiB on top (the drain's peak memory).
  const Settings s = parse({}).kafka.consumer_settings();
  EXPECT_EQ(get(s, "queued.max.messages.kbytes"), "32768");
  EXPECT_EQ(get(s, "fetch.max.bytes"), "8388608");
  const Settings overridden = parse({"--kafka_property=queued.max.messages.kbytes=1024"}).kafka.consumer_settings();
  EXPECT_EQ(get(overridden, "queued.max.messages.kbytes"), "1024");
}

TEST(KafkaSettings, EachDefaultReachesTheConsumerSettings) {
  const KafkaConfig defaults;
  const Settings s = defaults.consumer_settings();
  EXPECT_EQ(get(s, "bootstrap.servers"), defaults.bootstrap_servers);
  EXPECT_EQ(get(s, "group.id"), defaults.group_id);
  EXPECT_EQ(get(s, "auto.offset.reset"), defaults.auto_offset_reset);
  EXPECT_EQ(get(s, "security.protocol"), defaults.security_protocol);
  EXPECT_EQ(get(s, "bootstrap.servers"), "localhost:9092");
  EXPECT_EQ(get(s, "group.id"), "strategy-consumer");
  EXPECT_EQ(get(s, "auto.offset.reset"), "earliest");
  EXPECT_EQ(get(s, "security.protocol"), "PLAINTEXT");
  // Statistics feed /metrics (consumer lag) and /ready (brokers): on by default, for the consumer only.
  EXPECT_EQ(get(s, "statistics.interval.ms"), std::to_string(defaults.statistics_interval_ms));
  EXPECT_EQ(get(s, "statistics.interval.ms"), "5000");
  EXPECT_EQ(defaults.producer_settings().count("statistics.interval.ms"), 0u);
  // Empty file settings are left out rather than passed as "".
  EXPECT_EQ(s.count("ssl.ca.location"), 0u);
  EXPECT_EQ(s.count("ssl.certificate.location"), 0u);
  EXPECT_EQ(s.count("ssl.key.location"), 0u);
}

// Each KafkaConfig field, set to a non-default value, reaches the librdkafka key it stands for.
TEST(KafkaSettings, EachFieldReachesItsLibrdkafkaKey) {
  struct Case {
    const char* key;
    std::function<void(KafkaConfig&)> set;
    const char* value;
    bool in_producer;
  };
  const std::vector<Case> cases = {
      {"bootstrap.servers", [](KafkaConfig& k) { k.bootstrap_servers = "b:1"; }, "b:1", true},
      {"group.id", [](KafkaConfig& k) { k.group_id = "gg"; }, "gg", false},
      {"auto.offset.reset", [](KafkaConfig& k) { k.auto_offset_reset = "latest"; }, "latest", false},
      {"security.protocol", [](KafkaConfig& k) { k.security_protocol = "SSL"; }, "SSL", true},
      {"ssl.ca.location", [](KafkaConfig& k) { k.ssl_cafile = "/ca.pem"; }, "/ca.pem", true},
      {"ssl.certificate.location", [](KafkaConfig& k) { k.ssl_certfile = "/c.pem"; }, "/c.pem", true},
      {"ssl.key.location", [](KafkaConfig& k) { k.ssl_keyfile = "/k.pem"; }, "/k.pem", true},
  };
  for (const auto& c : cases) {
    KafkaConfig k;
    c.set(k);
    EXPECT_EQ(get(k.consumer_settings(), c.key), c.value) << c.key;
    if (c.in_producer) EXPECT_EQ(get(k.producer_settings(), c.key), c.value) << c.key;
    else EXPECT_EQ(k.producer_settings().count(c.key), 0u) << c.key << " is consumer-only";
  }
}

TEST(KafkaSettings, SslFilesFromFlagsReachBothClients) {
  char path[] = "/tmp/strategy_consumer_config_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  const Config c = parse({"--kafka_security_protocol=SSL", std::string("--kafka_ssl_cafile=") + path,
                          "--kafka_ssl_certfile", path, std::string("--kafka_ssl_keyfile=") + path});
  for (const Settings& s : {c.kafka.consumer_settings(), c.kafka.producer_settings()}) {
    EXPECT_EQ(get(s, "security.protocol"), "SSL");
    EXPECT_EQ(get(s, "ssl.ca.location"), path);
    EXPECT_EQ(get(s, "ssl.certificate.location"), path);
    EXPECT_EQ(get(s, "ssl.key.location"), path);
  }
  std::remove(path);
}

TEST(KafkaSettings, ProducerDropsConsumerOnlyProperties) {
  KafkaConfig k;
  k.properties = {{"session.timeout.ms", "6000"},   {"group.id", "x"},          {"auto.offset.reset", "latest"},
                  {"enable.auto.commit", "true"},   {"isolation.level", "x"},   {"max.poll.interval.ms", "1000"},
                  {"message.max.bytes", "2000000"}, {"linger.ms", "50"},        {"socket.timeout.ms", "1234"}};
  const Settings p = k.producer_settings();
  for (const char* consumer_only : {"session.timeout.ms", "group.id", "auto.offset.reset", "enable.auto.commit",
                                    "isolation.level", "max.poll.interval.ms"}) {
    EXPECT_EQ(p.count(consumer_only), 0u) << consumer_only;
  }
  EXPECT_EQ(get(p, "message.max.bytes"), "2000000");
  EXPECT_EQ(get(p, "linger.ms"), "50") << "a property overrides our producer default";
  EXPECT_EQ(get(p, "socket.timeout.ms"), "1234");
  EXPECT_EQ(get(p, "enable.idempotence"), "true");
  EXPECT_EQ(get(p, "acks"), "all");
  EXPECT_EQ(get(p, "bootstrap.servers"), "localhost:9092");
  // The consumer gets them all.
  const Settings s = k.consumer_settings();
  EXPECT_EQ(get(s, "session.timeout.ms"), "6000");
  EXPECT_EQ(get(s, "group.id"), "x");
  EXPECT_EQ(get(s, "socket.timeout.ms"), "1234");
}

// ---- libpq connection string ----

// Parses a libpq keyword/value string as libpq does: values bare, or single-quoted with \' and \\ escapes.
std::map<std::string, std::string> parse_conninfo(const std::string& s) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size() && s[i] == ' ') ++i;
  };
  while (true) {
    skip_space();
    if (i >= s.size()) return out;
    const std::size_t eq = s.find('=', i);
    if (eq == std::string::npos) {
      ADD_FAILURE() << "no '=' after keyword at " << i << " in " << s;
      return out;
    }
    const std::string key = s.substr(i, eq - i);
    i = eq + 1;
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          value += s[i + 1];
          i += 2;
        } else if (s[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          value += s[i++];
        }
      }
      if (!closed) ADD_FAILURE() << "unterminated quote in " << s;
    } else {
      while (i < s.size() && s[i] != ' ') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
    }
    out[key] = value;
  }
}

TEST(PostgresConfig, ConnectionStringQuotesEveryValue) {
  PostgresConfig p;
  p.host = "db host";
  p.port = 6543;
  p.database = "it's";
  p.user = "back\\slash";
  p.password = "p'a\\ss word=";
  p.application_name = "app";
  const std::string cs = p.connection_string();
  const auto kv = parse_conninfo(cs);
  EXPECT_EQ(kv.count("host") ? kv.at("host") : "", "db host") << cs;
  EXPECT_EQ(kv.count("port") ? kv.at("port") : "", "6543") << cs;
  EXPECT_EQ(kv.count("dbname") ? kv.at("dbname") : "", "it's") << cs;
  EXPECT_EQ(kv.count("user") ? kv.at("user") : "", "back\\slash") << cs;
  EXPECT_EQ(kv.count("password") ? kv.at("password") : "", "p'a\\ss word=") << cs;
  EXPECT_EQ(kv.count("application_name") ? kv.at("application_name") : "", "app") << cs;
  EXPECT_NE(cs.find("password='p\\'a\\\\ss word='"), std::string::npos) << cs;
  EXPECT_NE(cs.find("dbname='it\\'s'"), std::string::npos) << cs;
}

TEST(PostgresConfig, NoPasswordKeywordWhenEmpty) {
  PostgresConfig p;
  const std::string cs = p.connection_string();
  EXPECT_EQ(cs.find("password"), std::string::npos) << cs;
  const auto kv = parse_conninfo(cs);
  EXPECT_EQ(kv.count("host") ? kv.at("host") : "", "localhost");
  EXPECT_EQ(kv.count("dbname") ? kv.at("dbname") : "", "tradestream");
}

TEST(PostgresConfig, DescribeHasNoPassword) {
  const Config c = parse({"--postgres_host=db", "--postgres_port=6543", "--postgres_database=strats",
                          "--postgres_username=alice"},
                         {{"POSTGRES_PASSWORD", "TopSecret!"}});
  EXPECT_EQ(c.postgres.password, "TopSecret!");
  EXPECT_EQ(c.postgres.describe(), "alice@db:6543/strats");
  EXPECT_EQ(c.postgres.describe().find("TopSecret"), std::string::npos);
  EXPECT_NE(c.postgres.connection_string().find("TopSecret!"), std::string::npos);
}

// ---- operations flags ----

TEST(OperationsFlags, DefaultsAndValues) {
  const Config d = parse({});
  EXPECT_EQ(d.http.port, 8080);
  EXPECT_EQ(d.http.host, "0.0.0.0");
  EXPECT_EQ(d.log_format, "");
  const Config c = parse({"--http_port=0", "--http_host", "127.0.0.1", "--log_format=json"});
  EXPECT_EQ(c.http.port, 0);
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(parse({"--log_format=text"}).log_format, "text");
  EXPECT_NE(config_error({"--http_port=65536"}).find("--http_port"), std::string::npos);
  EXPECT_NE(config_error({"--log_format=xml"}).find("--log_format"), std::string::npos);
}

TEST(OperationsFlags, SecretsAreThePasswordAndSecretKafkaSettings) {
  const Config c = parse({"--postgres_password=pw-1", "--kafka_property=sasl.password=pw-2",
                          "--kafka_property=sasl.username=user", "--kafka_property=ssl.key.password=pw-3"});
  auto secrets = c.secrets();
  std::sort(secrets.begin(), secrets.end());
  EXPECT_EQ(secrets, (std::vector<std::string>{"pw-1", "pw-2", "pw-3"}));
  EXPECT_TRUE(parse({}).secrets().empty());
}

TEST(OperationsFlags, AKafkaPropertyWithoutEqualsSignIsNotEchoed) {
  // A mistyped secret ("sasl.password:...", or the password alone) must not reach stderr.
  for (const std::string arg : {"sasl.password:hunter2-secret", "hunter2-secret"}) {
    const std::string what = config_error({"--kafka_property=" + arg});
    EXPECT_NE(what.find("--kafka_property"), std::string::npos) << what;
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    EXPECT_EQ(what.find("sasl.password"), std::string::npos) << what;
  }
  const std::string empty_key = config_error({"--kafka_property==hunter2-secret"});
  EXPECT_NE(empty_key.find("--kafka_property"), std::string::npos) << empty_key;
  EXPECT_EQ(empty_key.find("hunter2"), std::string::npos) << empty_key;
}

}  // namespace
}  // namespace strategy_consumer
