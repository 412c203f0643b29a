#pragma once
// librdkafka handles from our settings maps: the only place where settings become rd_kafka_conf_t. And the
// owning wrappers of librdkafka's objects (unique_ptr with its destroy function), so that no path out of a
// function, an exception's included, leaks or double-frees one.
#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

namespace strategy_consumer {

// True for settings whose values are secrets (passwords, keys): never printed.
bool is_secret_kafka_setting(const std::string& key);

// Throws ConfigError naming the setting (never its value when it is a secret).
rd_kafka_conf_t* make_kafka_conf(const std::map<std::string, std::string>& settings);

// Throws ConfigError when librdkafka refuses one of the settings (checked at start, before any connection).
void check_kafka_settings(const std::map<std::string, std::string>& settings);

struct KafkaDeleter {
  void operator()(rd_kafka_t* p) const noexcept { rd_kafka_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const noexcept { rd_kafka_topic_partition_list_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const noexcept { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_message_t* p) const noexcept { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_event_t* p) const noexcept { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_error_t* p) const noexcept { rd_kafka_error_destroy(p); }
  void operator()(rd_kafka_topic_t* p) const noexcept { rd_kafka_topic_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const noexcept { rd_kafka_metadata_destroy(p); }
};
// A client (consumer or producer). A consumer that must be destroyed with flags (rd_kafka_destroy_flags)
// is release()d for it.
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using QueueHandle = std::unique_ptr<rd_kafka_queue_t, KafkaDeleter>;
using MessageHandle = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;
using EventHandle = std::unique_ptr<rd_kafka_event_t, KafkaDeleter>;
using ErrorHandle = std::unique_ptr<rd_kafka_error_t, KafkaDeleter>;
using TopicHandle = std::unique_ptr<rd_kafka_topic_t, KafkaDeleter>;
using MetadataHandle = std::unique_ptr<const rd_kafka_metadata_t, KafkaDeleter>;

inline PartitionList new_partition_list(int size) { return PartitionList(rd_kafka_topic_partition_list_new(size)); }

// Takes ownership of conf; routes librdkafka's log lines to spdlog. Throws KafkaError.
KafkaHandle new_kafka_handle(rd_kafka_type_t type, rd_kafka_conf_t* conf);

}  // namespace strategy_consumer
