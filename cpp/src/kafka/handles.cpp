#include "kafka/handles.hpp"

#include <spdlog/spdlog.h>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/logging.hpp"

namespace strategy_consumer {
namespace {

void log_cb(const rd_kafka_t*, int level, const char* facility, const char* message) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
  const auto lvl = level <= 3 ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  // Called on librdkafka's own threads: the fields say where the line comes from.
  LogScope scope({{"component", "librdkafka"}, {"facility", facility}});
  spdlog::log(lvl, "librdkafka {}: {}", facility, message);
}

void error_cb(rd_kafka_t*, int err, const char* reason, void*) {
  // Broker-down and similar errors are transient: librdkafka retries on its own.
  spdlog::warn("kafka: {} ({})", reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

}  // namespace

bool is_secret_kafka_setting(const std::string& key) {
  return key.find("password") != std::string::npos || key.find("secret") != std::string::npos ||
         key.find("key.pem") != std::string::npos || key == "ssl.key.password" ||
         key.find("sasl.oauthbearer.config") != std::string::npos;
}

rd_kafka_conf_t* make_kafka_conf(const std::map<std::string, std::string>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw ConfigError("kafka setting " + key + ": " +
                        (is_secret_kafka_setting(key) ? std::string("invalid value") : std::string(err)));
    }
  }
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  return conf;
}

void check_kafka_settings(const std::map<std::string, std::string>& settings) {
  rd_kafka_conf_destroy(make_kafka_conf(settings));
}

KafkaHandle new_kafka_handle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw ConfigError(std::string("kafka: ") + err);
  }
  return KafkaHandle(rk);
}

}  // namespace strategy_consumer
