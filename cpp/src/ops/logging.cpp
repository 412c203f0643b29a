#include "strategy_consumer/ops/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {
namespace {

thread_local LogFields tl_fields;

constexpr const char* kLoggerName = "strategy-consumer";

std::string rfc3339_utc(std::int64_t time_us) {
  std::int64_t secs = time_us / 1000000;
  std::int64_t frac = time_us % 1000000;
  if (frac < 0) frac += 1000000, secs -= 1;
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return buf;
}

std::string dump(const nlohmann::json& value) {
  // Invalid UTF-8 (it should not reach a log line, see text.hpp) becomes U+FFFD rather than an exception.
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Every occurrence of a secret becomes "[redacted]": a second line of defence behind the code never logging
// them (a library's message could still quote a setting).
void redact(std::string& text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 10)) {
      text.replace(pos, secret.size(), "[redacted]");
    }
  }
}

class LineFormatter final : public spdlog::formatter {
 public:
  LineFormatter(LogFormat format, std::vector<std::string> secrets)
      : format_(format), secrets_(std::move(secrets)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string_view level_name(level.data(), level.size());
    std::string message(msg.payload.data(), msg.payload.size());
    LogFields fields = current_log_fields();
    if (!secrets_.empty()) {
      // Before formatting: JSON escaping would hide a secret holding a quote or a backslash.
      redact(message, secrets_);
      for (auto& [_, value] : fields) {
        if (value.is_string()) redact(value.get_ref<std::string&>(), secrets_);
      }
    }
    std::string line = format_ == LogFormat::json ? format_json_line(us, level_name, message, fields)
                                                  : format_text_line(us, level_name, message, fields);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_, secrets_);
  }

 private:
  LogFormat format_;
  std::vector<std::string> secrets_;
};

}  // namespace

LogFormat default_log_format() { return isatty(STDERR_FILENO) ? LogFormat::text : LogFormat::json; }

LogFormat parse_log_format(const std::string& name) {
  if (name == "json") return LogFormat::json;
  if (name == "text") return LogFormat::text;
  if (name.empty() || name == "auto") return default_log_format();
  throw ConfigError("--log_format: must be json or text, not '" + name + "'");
}

void configure_logging(int verbosity, LogFormat format, std::vector<std::string> secrets) {
  std::erase_if(secrets, [](const std::string& s) { return s.size() < kMinRedactedSecretBytes; });
  auto logger = spdlog::get(kLoggerName);
  if (!logger) logger = spdlog::stderr_logger_mt(kLoggerName);
  spdlog::set_default_logger(logger);
  logger->set_formatter(std::make_unique<LineFormatter>(format, std::move(secrets)));
  spdlog::level::level_enum level = spdlog::level::info;
  if (verbosity >= 2) level = spdlog::level::trace;
  else if (verbosity == 1) level = spdlog::level::debug;
  else if (verbosity == -1) level = spdlog::level::warn;
  else if (verbosity <= -2) level = spdlog::level::err;
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::trace);  // every line reaches the collector, also the last before a crash
}

LogScope::LogScope(LogFields fields) : previous_size_(tl_fields.size()) {
  for (auto& f : fields) tl_fields.push_back(std::move(f));
}

LogScope::~LogScope() { tl_fields.resize(previous_size_); }

LogFields current_log_fields() {
  LogFields out;
  for (const auto& [name, value] : tl_fields) {
    bool replaced = false;
    for (auto& existing : out) {
      if (existing.first == name) {
        existing.second = value;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.emplace_back(name, value);
  }
  return out;
}

LogFields batch_log_fields(std::uint64_t batch_id, const Batch& batch) {
  LogFields out{{"batch_id", batch_id}};
  std::set<std::string> topics;
  nlohmann::json partitions = nlohmann::json::array();
  for (const auto& [tp, next] : batch.next_offsets()) {
    topics.insert(tp.first);
    auto first = batch.first_offsets().find(tp);
    partitions.push_back({{"topic", tp.first},
                          {"partition", tp.second},
                          {"first_offset", first == batch.first_offsets().end() ? next - 1 : first->second},
                          {"last_offset", next - 1}});
  }
  if (topics.size() == 1) out.emplace_back("topic", *topics.begin());
  out.emplace_back("partitions", std::move(partitions));
  return out;
}

LogFields message_log_fields(const SourcePosition& source) {
  return {{"topic", source.topic}, {"partition", source.partition}, {"offset", source.offset}};
}

std::string format_json_line(std::int64_t time_us, std::string_view level, std::string_view message,
                             const LogFields& fields) {
  std::string out = "{\"time\":\"" + rfc3339_utc(time_us) + "\",\"level\":" + dump(std::string(level)) +
                    ",\"message\":" + dump(std::string(message));
  for (const auto& [name, value] : fields) {
    if (name == "time" || name == "level" || name == "message") continue;
    out += ',';
    out += dump(name);
    out += ':';
    out += dump(value);
  }
  return out + "}";
}

std::string format_text_line(std::int64_t time_us, std::string_view level, std::string_view message,
                             const LogFields& fields) {
  std::string out = rfc3339_utc(time_us);
  out += ' ';
  out += level;
  out += ' ';
  out += message;
  if (!fields.empty()) {
    out += " [";
    bool first = true;
    for (const auto& [name, value] : fields) {
      if (!first) out += ' ';
      first = false;
      out += name;
      out += '=';
      out += value.is_string() ? value.get<std::string>() : dump(value);
    }
    out += ']';
  }
  return out;
}

}  // namespace strategy_consumer
