#pragma once
// Configuration: plain structs with defaults and validate(). A flag beats the environment, which beats the
// default. `kafka.properties` is the escape hatch: any librdkafka setting, applied last.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace strategy_consumer {

// PostgreSQL: where and how to connect (connection_string() and describe() are written by postgres/).
struct PostgresConfig {
  std::string host = "localhost";
  int port = 5432;
  std::string database = "tradestream";
  std::string user = "postgres";
  std::string password;
  int min_connections = 1;
  int max_connections = 10;
  int connect_timeout_seconds = 10;
  std::string application_name = "strategy-consumer";
  // Session limits (postgres/session.hpp); 0 leaves the server's setting. The service sets both on its
  // connections (--statement_timeout_seconds, --lock_timeout_seconds).
  double statement_timeout_seconds = 0;
  double lock_timeout_seconds = 0;
  // The score history (postgres/history.hpp): every applied discovery appended to strategy_score_history in the
  // batch's transaction (--score_history), and month partitions older than the retention dropped
  // (--score_history_retention_days; 0: kept forever).
  bool score_history = true;
  int score_history_retention_days = 0;

  // libpq keyword/value string, values quoted. Holds the password: never log it, log describe() instead.
  std::string connection_string() const;
  // "user@host:port/database", no password.
  std::string describe() const;
};

// The operations endpoints (ops/http.hpp), validated there.
struct HttpConfig {
  std::string host = "0.0.0.0";
  int port = 8080;                    // 0: no HTTP server
  double health_stale_seconds = 60;   // /health fails after this long without a heartbeat

  void validate() const;
};

struct KafkaConfig {
  std::string bootstrap_servers = "localhost:9092";
  std::string topic = "discovered-strategies";
  std::string group_id = "strategy-consumer";
  std::string auto_offset_reset = "earliest";  // for partitions with no stored offset
  // How the consumer gets its partitions: "group" joins the consumer group (partitions shared and moved by the
  // group's rebalances); "direct" assigns itself every partition of the topic at its stored offset without
  // joining (no join delay; fencing on the stored offsets keeps a second reader harmless); "auto" is direct in
  // drain mode (--idle_timeout_seconds or --max_processing_time_seconds) and group otherwise.
  std::string assignment = "auto";
  std::string security_protocol = "PLAINTEXT";
  std::string ssl_cafile;
  std::string ssl_certfile;
  std::string ssl_keyfile;
  std::string dlq_topic = "strategy-consumer-dlq";
  int poll_timeout_ms = 100;
  int statistics_interval_ms = 5000;  // librdkafka statistics: consumer lag and broker state for /metrics, /ready
  std::map<std::string, std::string> properties;  // --kafka_property key=value

  void validate() const;
  // librdkafka settings for the consumer / the dead-letter producer: ours, then `properties` over them.
  std::map<std::string, std::string> consumer_settings() const;
  std::map<std::string, std::string> producer_settings() const;
};

struct ProcessingConfig {
  int batch_size = 1000;
  double batch_timeout_seconds = 30;
  int max_retries = 3;
  double idle_timeout_seconds = 0;         // 0: no idle limit (service mode)
  double max_processing_time_seconds = 0;  // 0: no time limit
  double shutdown_timeout_seconds = 10;    // after SIGTERM, the longest wait for the open batch's write
  int writer_connections = 2;              // writer threads, each with its PostgreSQL connection and partitions
  double write_stall_seconds = 600;        // a write attempt in flight for longer is hung: /health and /ready 503
  std::size_t max_message_bytes = 1 << 20;
  std::size_t max_batch_bytes = 16u << 20;      // a batch is written once it holds this much (memory_budget.hpp)
  std::size_t max_buffered_bytes = 128u << 20;  // all open and in-flight batches: no polling while over it
  std::string strategy_catalog;               // types added to or replacing the built-in catalog
  bool allow_unknown_strategy_types = false;  // store types the catalog does not know (their parameters unchecked)
  std::vector<std::string> rules;             // --rules: analyst rules files, directories or modules (Python)
  std::string message_format = "auto";        // auto | json | protobuf (message/decoding.hpp)
  std::string parameters_layout = "named";    // named | tradestream (message/tradestream_compat.hpp)
  std::string strategy_hash_scheme = "canonical";  // canonical | tradestream

  void validate() const;
  bool drain_mode() const { return idle_timeout_seconds > 0 || max_processing_time_seconds > 0; }
};

// The replay-dead-letters command (service/replay.hpp): which letters of the dead-letter topic to run through
// today's decoding, validation and rules again. Every set filter narrows the selection.
struct ReplayConfig {
  bool enabled = false;  // the command was given
  bool dry_run = false;  // --dry_run: each batch written and rolled back, no offset stored: only the report
  std::string group_id;  // --replay_group_id: whose offsets of the dead-letter topic; "": <--kafka_group_id>-replay
  std::vector<std::string> stages;     // --stage: the letter's stage; "rule" stands for every rule:<name>
  std::vector<std::string> rule_ids;   // --rule: a rule id among the letter's reasons
  std::vector<int> source_partitions;  // --source_partition: where the original was read
  long long from_offset = -1;          // --from_offset / --to_offset: the original's offset, inclusive; -1: open
  long long to_offset = -1;
  std::string since;  // --since / --until: RFC 3339; letters written at or after / before; "": open
  std::string until;

  void validate() const;
};

struct Config {
  KafkaConfig kafka;
  PostgresConfig postgres;
  ProcessingConfig processing;
  HttpConfig http;          // --http_port (0: off), --http_host
  ReplayConfig replay;      // `strategy-consumer replay-dead-letters ...`
  std::string log_format;   // --log_format json|text|auto; "" or auto: json unless stderr is a terminal
  bool migrate = true;  // --no_migrate: verify the schema instead of applying migrations
  int verbosity = 0;    // as absl's: 0 info, 1 debug, 2 and more trace; -1 warning, -2 error

  void validate() const;
  // True when the consumer assigns itself every partition instead of joining the group (kafka.assignment).
  bool direct_assignment() const {
    return kafka.assignment == "direct" || (kafka.assignment == "auto" && processing.drain_mode());
  }
  // Values never to print: the PostgreSQL password and secret librdkafka settings (sasl.password, ...).
  std::vector<std::string> secrets() const;
};

inline constexpr const char* kReplayCommand = "replay-dead-letters";

using Environment = std::map<std::string, std::string>;
Environment current_environment();

struct CommandLine {
  Config config;
  bool help_requested = false;
  std::string help_text;
};

// Parses flags (`--flag=value` and `--flag value`) over the environment over the defaults, then validates.
// A first argument `replay-dead-letters` is the replay command: its own flags (ReplayConfig) besides all others,
// and drain mode unless a time limit is given (--idle_timeout_seconds defaults to 2).
// Throws ConfigError with a one-line message naming the flag or variable.
CommandLine parse_command_line(const std::vector<std::string>& args, const Environment& env);

}  // namespace strategy_consumer
