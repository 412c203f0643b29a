#pragma once
// librdkafka handles from our settings maps: the only place where settings become rd_kafka_conf_t.
#include <librdkafka/rdkafka.h>

#include <map>
#include <string>

namespace strategy_consumer {

// True for settings whose values are secrets (passwords, keys): never printed.
bool is_secret_kafka_setting(const std::string& key);

// Throws ConfigError naming the setting (never its value when it is a secret).
rd_kafka_conf_t* make_kafka_conf(const std::map<std::string, std::string>& settings);

// Throws ConfigError when librdkafka refuses one of the settings (checked at start, before any connection).
void check_kafka_settings(const std::map<std::string, std::string>& settings);

// Takes ownership of conf; routes librdkafka's log lines to spdlog. Throws KafkaError.
rd_kafka_t* new_kafka_handle(rd_kafka_type_t type, rd_kafka_conf_t* conf);

}  // namespace strategy_consumer
