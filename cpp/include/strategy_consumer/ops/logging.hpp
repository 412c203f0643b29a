#pragma once
// Logging: spdlog to stderr, one line per event, as JSON objects (the default when stderr is not a terminal:
// log collectors read them) or as text for people. Verbosity as absl's (0 info, 1 debug, 2 trace, -1 warning,
// -2 error).
//
// Correlation fields: a LogScope puts fields (batch_id, topic, partition, offset, strategy_hash, ...) on every
// line logged by its thread while it lives; scopes nest, an inner field replacing an outer one of the same name.
// JSON lines carry them as members next to "time", "level" and "message"; text lines end with [key=value ...].
// The scope is a thread-local stack read by the formatter, which spdlog's synchronous logger runs on the
// logging thread; lines from librdkafka's own threads carry no fields.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/pipeline/batch.hpp"

namespace strategy_consumer {

enum class LogFormat { text, json };

// json, unless stderr is a terminal.
LogFormat default_log_format();
// "json" / "text"; "" or "auto" give default_log_format(). Throws ConfigError for anything else.
LogFormat parse_log_format(const std::string& name);

// `secrets` (the PostgreSQL password, secret librdkafka settings) are replaced by "[redacted]" wherever they
// would appear in a line; the code never logs them, this catches what a library might quote. Secrets shorter
// than kMinRedactedSecretBytes are not searched for (they would blank out ordinary words).
inline constexpr std::size_t kMinRedactedSecretBytes = 4;
void configure_logging(int verbosity, LogFormat format = LogFormat::text, std::vector<std::string> secrets = {});

using LogFields = std::vector<std::pair<std::string, nlohmann::json>>;

class LogScope {
 public:
  explicit LogScope(LogFields fields);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  std::size_t previous_size_;
};

// The fields in force on this thread, outer scopes first, a later field of a name replacing an earlier one.
LogFields current_log_fields();

// Correlation fields of a batch: batch_id, topic (when it has one topic) and per partition its offset range
// read into the batch, "partitions": [{"topic", "partition", "first_offset", "last_offset"}, ...].
LogFields batch_log_fields(std::uint64_t batch_id, const Batch& batch);
// Correlation fields of one message.
LogFields message_log_fields(const SourcePosition& source);

// The two line formats (pure; `time_us` is microseconds since the Unix epoch, `level` spdlog's name).
std::string format_json_line(std::int64_t time_us, std::string_view level, std::string_view message,
                             const LogFields& fields);
std::string format_text_line(std::int64_t time_us, std::string_view level, std::string_view message,
                             const LogFields& fields);

}  // namespace strategy_consumer
