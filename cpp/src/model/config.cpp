#include "strategy_consumer/model/config.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "kafka/handles.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/timestamp.hpp"

extern char** environ;

namespace strategy_consumer {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

bool one_of(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

void put_file(std::map<std::string, std::string>& s, const char* key, const std::string& path) {
  if (!path.empty()) s[key] = path;
}

}  // namespace

void KafkaConfig::validate() const {
  require(!bootstrap_servers.empty(), "--kafka_bootstrap_servers: must not be empty");
  static const std::regex kTopic("[A-Za-z0-9._-]{1,249}");
  require(std::regex_match(topic, kTopic), "--kafka_topic: '" + topic + "' is not a valid topic name");
  require(std::regex_match(dlq_topic, kTopic), "--dlq_topic: '" + dlq_topic + "' is not a valid topic name");
  require(topic != dlq_topic, "--dlq_topic: must differ from --kafka_topic");
  require(!group_id.empty(), "--kafka_group_id: must not be empty");
  require(one_of(auto_offset_reset, {"earliest", "latest", "smallest", "largest", "beginning", "end"}),
          "--kafka_auto_offset_reset: must be earliest or latest, not '" + auto_offset_reset + "'");
  require(one_of(assignment, {"auto", "group", "direct"}),
          "--kafka_assignment: must be auto, group or direct, not '" + assignment + "'");
  require(one_of(security_protocol, {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "plaintext", "ssl",
                                     "sasl_plaintext", "sasl_ssl"}),
          "--kafka_security_protocol: must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not '" +
              security_protocol + "'");
  for (auto [flag, path] : {std::pair{"--kafka_ssl_cafile", &ssl_cafile}, std::pair{"--kafka_ssl_certfile", &ssl_certfile},
                            std::pair{"--kafka_ssl_keyfile", &ssl_keyfile}}) {
    require(path->empty() || std::filesystem::exists(*path), std::string(flag) + ": no such file: " + *path);
  }
  require(poll_timeout_ms >= 1 && poll_timeout_ms <= 60000, "--poll_timeout_ms: must be between 1 and 60000");
  try {
    check_kafka_settings(consumer_settings());
    check_kafka_settings(producer_settings());
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--kafka_property: ") + e.what());
  }
}

std::map<std::string, std::string> KafkaConfig::consumer_settings() const {
  std::map<std::string, std::string> s{
      {"bootstrap.servers", bootstrap_servers},
      {"group.id", group_id},
      {"client.id", "strategy-consumer"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", auto_offset_reset},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"isolation.level", "read_committed"},
      {"security.protocol", security_protocol},
      {"statistics.interval.ms", std::to_string(statistics_interval_ms)},
      // A broker answers a fetch at the latest after this long without new data: what a message that arrives
      // meanwhile may wait (librdkafka's 500 ms would be most of the latency budget; a real broker answers as
      // soon as data arrives, the dev broker only then).
      {"fetch.wait.max.ms", "50"},
      // Prefetched messages held in memory: 32 MiB, some 60,000 messages (librdkafka's default is 64 MiB). Once
      // the queue is over this, librdkafka 2.0 looks at it again only on its broker thread's one-second round, so
      // it must hold more than a second of the consumer's top rate: with 16 MiB the queue ran dry before the next
      // fetch and the writers waited a fifth of the time (README: The write per batch).
      {"queued.max.messages.kbytes", "32768"},
      // What one fetch response may bring on top of that: the queue refills in steps of 8 MiB, not of librdkafka's
      // 50 MiB (the peak memory of a drain).
      {"fetch.max.bytes", "8388608"},
  };
  put_file(s, "ssl.ca.location", ssl_cafile);
  put_file(s, "ssl.certificate.location", ssl_certfile);
  put_file(s, "ssl.key.location", ssl_keyfile);
  for (const auto& [k, v] : properties) s[k] = v;
  return s;
}

std::map<std::string, std::string> KafkaConfig::producer_settings() const {
  std::map<std::string, std::string> s{
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "strategy-consumer-dlq"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"security.protocol", security_protocol},
  };
  put_file(s, "ssl.ca.location", ssl_cafile);
  put_file(s, "ssl.certificate.location", ssl_certfile);
  put_file(s, "ssl.key.location", ssl_keyfile);
  // Consumer-only settings given with --kafka_property would make the producer refuse to start.
  static const std::set<std::string> kConsumerOnly{
      "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
      "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof",
      "partition.assignment.strategy", "isolation.level", "fetch.min.bytes", "fetch.wait.max.ms",
      "fetch.max.bytes", "max.partition.fetch.bytes", "queued.min.messages", "queued.max.messages.kbytes",
      "auto.commit.interval.ms", "group.protocol.type", "coordinator.query.interval.ms", "check.crcs"};
  for (const auto& [k, v] : properties) {
    if (!kConsumerOnly.count(k)) s[k] = v;
  }
  return s;
}

void ProcessingConfig::validate() const {
  require(batch_size >= 1 && batch_size <= 1000000, "--batch_size: must be between 1 and 1000000");
  require(batch_timeout_seconds > 0, "--batch_timeout_seconds: must be greater than 0");
  require(max_retries >= 0 && max_retries <= 1000, "--max_retries: must be between 0 and 1000");
  require(idle_timeout_seconds >= 0, "--idle_timeout_seconds: must not be negative");
  require(max_processing_time_seconds >= 0, "--max_processing_time_seconds: must not be negative");
  require(shutdown_timeout_seconds > 0, "--shutdown_timeout_seconds: must be positive");
  require(writer_connections >= 1 && writer_connections <= 16, "--writer_connections: must be between 1 and 16");
  require(write_stall_seconds > 0, "--write_stall_seconds: must be greater than 0");
  require(max_message_bytes >= 1024 && max_message_bytes <= (256u << 20),
          "--max_message_bytes: must be between 1024 and 268435456");
  require(one_of(message_format, {"auto", "json", "protobuf"}),
          "--message_format: must be auto, json or protobuf, not '" + message_format + "'");
  require(one_of(parameters_layout, {"named", "tradestream"}),
          "--parameters_layout: must be named or tradestream, not '" + parameters_layout + "'");
  require(one_of(strategy_hash_scheme, {"canonical", "tradestream"}),
          "--strategy_hash_scheme: must be canonical or tradestream, not '" + strategy_hash_scheme + "'");
  require(max_batch_bytes >= 1024, "--max_batch_bytes: must be at least 1024");
  require(max_buffered_bytes >= max_batch_bytes, "--max_buffered_bytes: must be at least --max_batch_bytes");
}

void ReplayConfig::validate() const {
  for (const auto& stage : stages) require(!stage.empty(), "--stage: must not be empty");
  for (const auto& rule : rule_ids) require(!rule.empty(), "--rule: must not be empty");
  for (auto p : source_partitions) require(p >= 0, "--source_partition: must not be negative");
  require(from_offset >= -1 && to_offset >= -1, "--from_offset, --to_offset: must not be negative");
  require(to_offset < 0 || from_offset <= to_offset, "--to_offset: must not be less than --from_offset");
  require(since.empty() || parse_rfc3339_us(since), "--since: not an RFC 3339 time with a zone: '" + since + "'");
  require(until.empty() || parse_rfc3339_us(until), "--until: not an RFC 3339 time with a zone: '" + until + "'");
}

void Config::validate() const {
  kafka.validate();
  if (replay.enabled) replay.validate();
  processing.validate();
  require(!postgres.host.empty(), "--postgres_host: must not be empty");
  require(postgres.port >= 1 && postgres.port <= 65535, "--postgres_port: must be between 1 and 65535");
  require(!postgres.database.empty(), "--postgres_database: must not be empty");
  require(!postgres.user.empty(), "--postgres_username: must not be empty");
  require(postgres.min_connections >= 1, "--postgres_min_connections: must be at least 1");
  require(postgres.statement_timeout_seconds >= 0, "--statement_timeout_seconds: must not be negative");
  require(postgres.lock_timeout_seconds >= 0, "--lock_timeout_seconds: must not be negative");
  require(postgres.score_history_retention_days >= 0 && postgres.score_history_retention_days <= 365000,
          "--score_history_retention_days: must be between 0 (keep forever) and 365000");
  require(postgres.max_connections >= postgres.min_connections,
          "--postgres_max_connections: must be at least --postgres_min_connections");
  require(verbosity >= -3 && verbosity <= 3, "--verbosity: must be between -3 and 3");
  require(log_format.empty() || log_format == "auto" || log_format == "json" || log_format == "text",
          "--log_format: must be json, text or auto, not '" + log_format + "'");
  http.validate();
}

std::vector<std::string> Config::secrets() const {
  std::vector<std::string> out;
  if (!postgres.password.empty()) out.push_back(postgres.password);
  for (const auto& [key, value] : kafka.properties) {
    if (is_secret_kafka_setting(key) && !value.empty()) out.push_back(value);
  }
  return out;
}

Environment current_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

CommandLine parse_command_line(const std::vector<std::string>& given, const Environment& env) {
  CommandLine out;
  Config& c = out.config;
  c.replay.enabled = !given.empty() && given.front() == kReplayCommand;
  const std::vector<std::string> args(given.begin() + (c.replay.enabled ? 1 : 0), given.end());
  CLI::App app{c.replay.enabled
                   ? "strategy-consumer replay-dead-letters: reads the dead-letter topic (--dlq_topic), runs each\n"
                     "selected letter's original message through today's decoding, validation and rules, stores what\n"
                     "passes now as the main path would, exactly once (the replay group's offsets of the dead-letter\n"
                     "topic are stored with the rows), and prints a report as JSON on stdout. All flags of the service\n"
                     "apply; what still fails is counted, not dead-lettered again."
                   : "strategy-consumer: stores the trading strategies of the discovery pipeline from Kafka into "
                     "PostgreSQL,\nexactly once. A flag beats its environment variable, which beats the default.\n"
                     "Command: strategy-consumer replay-dead-letters [flags] (see its --help).",
               c.replay.enabled ? "strategy-consumer replay-dead-letters" : "strategy-consumer"};
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(44);

  // Options that an environment variable can also set: name -> variable.
  std::vector<std::pair<CLI::Option*, std::string>> from_env;
  auto env_name = [&](CLI::Option* o, const char* var) {
    o->description(o->get_description() + " [env " + var + "]");
    from_env.emplace_back(o, var);
    return o;
  };

  const std::string kafka = "Kafka", pg = "PostgreSQL", proc = "Processing";
  env_name(app.add_option("--kafka_bootstrap_servers", c.kafka.bootstrap_servers, "Kafka bootstrap servers")->group(kafka),
           "KAFKA_BOOTSTRAP_SERVERS");
  env_name(app.add_option("--kafka_topic", c.kafka.topic, "Topic of discovered strategies")->group(kafka),
           "KAFKA_TOPIC_STRATEGIES");
  env_name(app.add_option("--kafka_group_id", c.kafka.group_id, "Consumer group id")->group(kafka), "KAFKA_GROUP_ID");
  app.add_option("--kafka_auto_offset_reset", c.kafka.auto_offset_reset,
                 "Where a partition with no stored offset starts: earliest or latest")->group(kafka);
  app.add_option("--kafka_assignment", c.kafka.assignment,
                 "How partitions are taken: group (join the consumer group), direct (every partition of the "
                 "topic at its stored offset, no group), auto (direct in drain mode, else group)")
      ->group(kafka);
  app.add_option("--kafka_security_protocol", c.kafka.security_protocol,
                 "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")->group(kafka);
  app.add_option("--kafka_ssl_cafile", c.kafka.ssl_cafile, "CA certificate file (SSL)")->group(kafka);
  app.add_option("--kafka_ssl_certfile", c.kafka.ssl_certfile, "Client certificate file (SSL)")->group(kafka);
  app.add_option("--kafka_ssl_keyfile", c.kafka.ssl_keyfile, "Client private key file (SSL)")->group(kafka);
  std::vector<std::string> properties;
  app.add_option("--kafka_property", properties,
                 "Any librdkafka setting as key=value, applied last (repeatable)")->group(kafka)->type_name("KEY=VALUE");
  env_name(app.add_option("--dlq_topic", c.kafka.dlq_topic, "Dead-letter topic")->group(kafka), "KAFKA_DLQ_TOPIC");
  app.add_option("--poll_timeout_ms", c.kafka.poll_timeout_ms, "Longest wait for a message in one poll")->group(kafka);

  env_name(app.add_option("--postgres_host", c.postgres.host, "PostgreSQL host")->group(pg), "POSTGRES_HOST");
  env_name(app.add_option("--postgres_port", c.postgres.port, "PostgreSQL port")->group(pg), "POSTGRES_PORT");
  env_name(app.add_option("--postgres_database", c.postgres.database, "PostgreSQL database")->group(pg), "POSTGRES_DB");
  env_name(app.add_option("--postgres_username", c.postgres.user, "PostgreSQL user")->group(pg), "POSTGRES_USER");
  // The password's value never appears in --help or in any message.
  env_name(app.add_option("--postgres_password", c.postgres.password, "PostgreSQL password")
               ->group(pg)->default_str("")->type_name("SECRET"),
           "POSTGRES_PASSWORD");
  app.add_option("--postgres_min_connections", c.postgres.min_connections,
                 "Connections opened at start (the Python client's pool)")->group(pg);
  app.add_option("--postgres_max_connections", c.postgres.max_connections,
                 "Most connections open at once (the Python client's pool)")->group(pg);
  c.postgres.statement_timeout_seconds = 300;
  c.postgres.lock_timeout_seconds = 60;
  app.add_option("--statement_timeout_seconds", c.postgres.statement_timeout_seconds,
                 "statement_timeout of the service's sessions: the longest one statement of a batch write may take "
                 "(0: the server's setting)")->group(pg);
  app.add_option("--lock_timeout_seconds", c.postgres.lock_timeout_seconds,
                 "lock_timeout of the service's sessions: the longest wait for a lock, then the write is retried "
                 "(0: the server's setting)")->group(pg);
  env_name(app.add_option("--score_history", c.postgres.score_history,
                          "Append every applied discovery (score, metrics, window, source offset) to "
                          "strategy_score_history in the batch's transaction: true or false (README: its cost)")
               ->group(pg),
           "SCORE_HISTORY");
  env_name(app.add_option("--score_history_retention_days", c.postgres.score_history_retention_days,
                          "Drop the score history's month partitions once they are wholly older than this many days "
                          "(0: keep forever)")
               ->group(pg),
           "SCORE_HISTORY_RETENTION_DAYS");
  bool no_migrate = false;
  app.add_flag("--no_migrate", no_migrate, "Verify the schema instead of applying migrations")->group(pg);

  env_name(app.add_option("--batch_size", c.processing.batch_size, "Most messages in one transaction")->group(proc),
           "BATCH_SIZE");
  env_name(app.add_option("--batch_timeout_seconds", c.processing.batch_timeout_seconds,
                          "Longest time a message waits in an open batch")->group(proc),
           "BATCH_TIMEOUT_SECONDS");
  env_name(app.add_option("--max_retries", c.processing.max_retries,
                          "Retries of one failing operation before giving up (drain mode) or reporting not ready")
               ->group(proc),
           "MAX_RETRIES");
  app.add_option("--idle_timeout_seconds", c.processing.idle_timeout_seconds,
                 "Drain mode: exit 0 after this long caught up with nothing new (0: never)")->group(proc);
  app.add_option("--max_processing_time_seconds", c.processing.max_processing_time_seconds,
                 "Drain mode: exit 0 after this long in all (0: never)")->group(proc);
  app.add_option("--writer_connections", c.processing.writer_connections,
                 "Batches written in parallel, each by a thread with its own PostgreSQL connection, over disjoint "
                 "partitions")
      ->group(proc);
  app.add_option("--write_stall_seconds", c.processing.write_stall_seconds,
                 "A batch write in flight for longer than this is hung: /health and /ready answer 503 until it ends")
      ->group(proc);
  app.add_option("--shutdown_timeout_seconds", c.processing.shutdown_timeout_seconds,
                 "On SIGTERM/SIGINT, the longest wait for the open batch to commit before it is abandoned")
      ->group(proc);
  app.add_option("--max_message_bytes", c.processing.max_message_bytes,
                 "Larger messages are dead-lettered unread")->group(proc);
  app.add_option("--max_batch_bytes", c.processing.max_batch_bytes,
                 "A batch is written once its messages hold this many bytes (payloads, decoded values, dead letters)")
      ->group(proc);
  app.add_option("--max_buffered_bytes", c.processing.max_buffered_bytes,
                 "Bytes held for messages in all open and in-flight batches together; reading from Kafka pauses "
                 "while they reach it")
      ->group(proc);
  app.add_option("--strategy_catalog", c.processing.strategy_catalog,
                 "Catalog file whose strategy types are added to, or replace, the built-in ones (README)")
      ->group(proc)->check(CLI::ExistingFile);
  app.add_flag("--allow_unknown_strategy_types", c.processing.allow_unknown_strategy_types,
               "Store strategy types the catalog does not know (their parameters are not checked)")->group(proc);
  app.add_option("--message_format", c.processing.message_format,
                 "auto: JSON when the first non-blank byte is `{`, else protobuf discovery.DiscoveredStrategy; "
                 "json; protobuf")->group(proc);
  app.add_option("--parameters_layout", c.processing.parameters_layout,
                 "named: parameters as named values; tradestream: as the old service wrote them (protobuf_type, "
                 "protobuf_data, raw_parameters) plus the named values under \"named\"")->group(proc);
  app.add_option("--strategy_hash_scheme", c.processing.strategy_hash_scheme,
                 "canonical: SHA-256 of symbol, type and parameters; tradestream: the old service's SHA-256 of "
                 "the serialized Any (README: what it gets wrong)")->group(proc);
  app.add_option("--rules", c.processing.rules,
                 "Analyst rules in Python: a .py file, a directory of them or a module name (repeatable; README)")
      ->group(proc)->type_name("PATH_OR_MODULE");
  const std::string ops = "Operations";
  CLI::Option* http_port = app.add_option("--http_port", c.http.port,
                                          c.replay.enabled ? "Port of /health, /ready and /metrics (default 0 for a "
                                                             "replay: no HTTP server)"
                                                           : "Port of /health, /ready and /metrics (0: no HTTP server)")
                               ->group(ops);
  app.add_option("--http_host", c.http.host, "Address the HTTP server binds to")->group(ops);
  app.add_option("--log_format", c.log_format, "Log lines as json or text; auto: json unless stderr is a terminal")
      ->group(ops)->default_str("auto");
  app.add_option("--verbosity", c.verbosity, "Log level: -2 error, -1 warning, 0 info, 1 debug, 2 trace")->group(ops);
  if (c.replay.enabled) {
    const std::string replay = "Replay";
    app.add_flag("--dry_run", c.replay.dry_run, "Write and roll back each batch, store no offset: only report")
        ->group(replay);
    app.add_option("--replay_group_id", c.replay.group_id,
                   "Whose offsets of the dead-letter topic (default: <--kafka_group_id>-replay)")->group(replay);
    app.add_option("--stage", c.replay.stages, "Only letters of this stage (decode, validate, rule:<name>, rule, "
                   "database); repeatable")->group(replay);
    app.add_option("--rule", c.replay.rule_ids, "Only letters with a reason of this rule id; repeatable")
        ->group(replay);
    app.add_option("--source_partition", c.replay.source_partitions,
                   "Only letters of originals read from this partition; repeatable")->group(replay);
    app.add_option("--from_offset", c.replay.from_offset, "Only originals at this offset or later (-1: any)")
        ->group(replay);
    app.add_option("--to_offset", c.replay.to_offset, "Only originals at this offset or earlier (-1: any)")
        ->group(replay);
    app.add_option("--since", c.replay.since, "Only letters written at or after this RFC 3339 time")->group(replay);
    app.add_option("--until", c.replay.until, "Only letters written before this RFC 3339 time")->group(replay);
  }
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.allow_extras();  // reported below by name only: a mistyped --postgres_pasword=... must not print its value

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them back to front
    app.parse(reversed);
    if (!app.remaining().empty()) {
      std::string names;
      for (const auto& extra : app.remaining()) {
        if (extra.rfind("-", 0) != 0) continue;  // a value: may be a secret
        names += (names.empty() ? "" : ", ") + extra.substr(0, extra.find('='));
      }
      throw ConfigError(names.empty() ? std::string("unexpected positional argument(s); flags start with --")
                                      : "unknown flag(s): " + names + " (see --help)");
    }
    for (auto& [option, var] : from_env) {
      auto it = env.find(var);
      if (option->count() > 0 || it == env.end() || it->second.empty()) continue;
      try {
        option->add_result(it->second);
        option->run_callback();
      } catch (const CLI::Error&) {
        const bool secret = var == "POSTGRES_PASSWORD";
        throw ConfigError(var + ": invalid value" + (secret ? std::string() : " '" + it->second + "'") + " for " +
                          option->get_name());
      }
    }
  } catch (const CLI::CallForHelp&) {
    out.help_requested = true;
    out.help_text = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    throw ConfigError(what);
  }

  for (const auto& p : properties) {
    auto eq = p.find('=');
    // Never echo the argument: without its '=' it may be a whole "sasl.password:..." or a bare secret.
    require(eq != std::string::npos, "--kafka_property: expected key=value, got an argument without '=' (" +
                                         std::to_string(p.size()) + " characters, not shown: it may hold a secret)");
    require(eq > 0, "--kafka_property: expected key=value, got an empty key");
    c.kafka.properties[p.substr(0, eq)] = p.substr(eq + 1);
  }
  c.migrate = !no_migrate;
  if (c.replay.enabled) {
    if (c.replay.group_id.empty()) c.replay.group_id = c.kafka.group_id + "-replay";
    // A one-off command serves no probes unless asked: the service on the same host may hold the port.
    if (http_port->count() == 0) c.http.port = 0;
    // A replay is a drain: it ends once the dead-letter topic is read.
    if (!c.processing.drain_mode()) c.processing.idle_timeout_seconds = 2;
  }
  c.validate();
  return out;
}

}  // namespace strategy_consumer
