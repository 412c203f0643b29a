#include "strategy_consumer/kafka/source.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <exception>

#include "strategy_consumer/model/errors.hpp"
#include "kafka/handles.hpp"

namespace strategy_consumer {
namespace {
// How long leaving the group may take before the consumer goes without the coordinator's answer.
constexpr std::chrono::seconds kCloseTimeout{5};
// Direct assignment: how long one poll waits for the topic's metadata (it is asked again on the next poll).
constexpr int kMetadataTimeoutMs = 2000;
}  // namespace

struct KafkaSource::Impl {
  KafkaConfig config;
  RebalanceListener& listener;
  KafkaHandle rk;
  std::set<TopicPartition> assigned;
  std::set<TopicPartition> at_end;
  bool queue_empty = false;  // the last poll timed out: nothing fetched was waiting
  std::exception_ptr callback_error;  // thrown inside a librdkafka callback, rethrown from poll()
  bool direct = false;                // assign every partition ourselves, no group
  bool direct_pending = false;        // direct, and not assigned yet
  std::string direct_problem;         // why the last attempt failed (logged once per change)

  Impl(const KafkaConfig& c, RebalanceListener& l) : config(c), listener(l) {}

  std::int64_t start_offset(const std::map<std::int32_t, std::int64_t>& stored, std::int32_t partition) const {
    if (auto it = stored.find(partition); it != stored.end()) return it->second;
    const auto& r = config.auto_offset_reset;
    return (r == "latest" || r == "largest" || r == "end") ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
  }

  // On assignment, a partition with no row in our offsets table starts where the group last committed in Kafka
  // (the service this one replaces committed there; librdkafka falls back to auto.offset.reset when the group
  // has no commit); from its first batch on, the offsets table decides.
  std::int64_t assigned_offset(const std::map<std::int32_t, std::int64_t>& stored, std::int32_t partition) const {
    if (auto it = stored.find(partition); it != stored.end()) return it->second;
    return RD_KAFKA_OFFSET_STORED;
  }

  void on_assign(rd_kafka_topic_partition_list_t* parts) {
    std::map<std::string, std::vector<std::int32_t>> by_topic;
    for (int i = 0; i < parts->cnt; ++i) by_topic[parts->elems[i].topic].push_back(parts->elems[i].partition);
    std::map<std::string, std::map<std::int32_t, std::int64_t>> stored;
    for (const auto& [topic, partitions] : by_topic) stored[topic] = listener.on_assigned(topic, partitions);
    for (int i = 0; i < parts->cnt; ++i) {
      auto& e = parts->elems[i];
      e.offset = assigned_offset(stored[e.topic], e.partition);
      assigned.insert({e.topic, e.partition});
      at_end.erase({e.topic, e.partition});
      spdlog::info("assigned {}[{}], starting at {}", e.topic, e.partition,
                   e.offset >= 0 ? std::to_string(e.offset)
                                 : "the group's committed Kafka offset (else " + config.auto_offset_reset + ")");
    }
  }

  void on_revoke(rd_kafka_topic_partition_list_t* parts) {
    std::set<TopicPartition> revoked;
    for (int i = 0; i < parts->cnt; ++i) revoked.insert({parts->elems[i].topic, parts->elems[i].partition});
    for (const auto& tp : revoked) {
      assigned.erase(tp);
      at_end.erase(tp);
      spdlog::info("revoked {}[{}]", tp.first, tp.second);
    }
    listener.on_revoked(revoked);
  }

  // Direct assignment: every partition of the topic, at the stored offsets. False (and logged) while the topic's
  // metadata cannot be had; throws what the listener throws (the stored offsets could not be read).
  bool assign_all_partitions() {
    MetadataHandle md;
    rd_kafka_resp_err_t err;
    {
      TopicHandle rkt(rd_kafka_topic_new(rk.get(), config.topic.c_str(), nullptr));
      const rd_kafka_metadata_t* raw = nullptr;
      err = rd_kafka_metadata(rk.get(), 0, rkt.get(), &raw, kMetadataTimeoutMs);
      md.reset(raw);
    }
    std::string problem;
    PartitionList parts;
    if (err) {
      problem = std::string("no metadata: ") + rd_kafka_err2str(err);
    } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
      problem = md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err) : "no partitions";
    } else {
      parts = new_partition_list(md->topics[0].partition_cnt);
      for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
        rd_kafka_topic_partition_list_add(parts.get(), config.topic.c_str(), md->topics[0].partitions[i].id);
      }
    }
    md.reset();
    if (!parts) {
      if (problem != direct_problem) spdlog::warn("kafka: cannot assign {} yet ({}); trying again", config.topic, problem);
      direct_problem = problem;
      return false;
    }
    on_assign(parts.get());  // the stored offsets; throws when they cannot be read (tried again on the next poll)
    if (auto e = rd_kafka_assign(rk.get(), parts.get())) {
      assigned.clear();
      throw KafkaError(std::string("cannot assign the partitions of ") + config.topic + ": " + rd_kafka_err2str(e),
                       true, config.topic);
    }
    spdlog::info("assigned all {} partition(s) of {} directly (no group join; group id {} names the stored "
                 "offsets)", parts->cnt, config.topic, config.group_id);
    return true;
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      try {
        self->on_assign(parts);
      } catch (...) {
        // Without stored offsets the partitions cannot be read safely: take none, and let poll() report it.
        self->callback_error = std::current_exception();
        return;
      }
      if (cooperative) check(rd_kafka_error_destroy_wrap(rd_kafka_incremental_assign(rk, parts)), "assign");
      else check(rd_kafka_assign(rk, parts), "assign");
    } else {
      try {
        self->on_revoke(parts);
      } catch (...) {
        self->callback_error = std::current_exception();
      }
      if (cooperative) check(rd_kafka_error_destroy_wrap(rd_kafka_incremental_unassign(rk, parts)), "unassign");
      else check(rd_kafka_assign(rk, nullptr), "unassign");
    }
  }

  static int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
    try {
      static_cast<Impl*>(opaque)->listener.on_statistics(std::string_view(json, len));
    } catch (const std::exception& e) {
      spdlog::debug("kafka statistics: {}", e.what());
    }
    return 0;  // librdkafka frees the JSON
  }

  static rd_kafka_resp_err_t rd_kafka_error_destroy_wrap(rd_kafka_error_t* error) {
    if (!error) return RD_KAFKA_RESP_ERR_NO_ERROR;
    spdlog::error("kafka: {}", rd_kafka_error_string(error));
    auto code = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    return code;
  }

  static void check(rd_kafka_resp_err_t err, const char* what) {
    if (err) spdlog::error("kafka {} failed: {}", what, rd_kafka_err2str(err));
  }
};

KafkaSource::KafkaSource(const KafkaConfig& config, RebalanceListener& listener, bool direct)
    : impl_(std::make_unique<Impl>(config, listener)) {
  rd_kafka_conf_t* conf = make_kafka_conf(config.consumer_settings());
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_rebalance_cb(conf, &Impl::rebalance_cb);
  rd_kafka_conf_set_stats_cb(conf, &Impl::stats_cb);
  impl_->rk = new_kafka_handle(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(impl_->rk.get());
  if (direct) {
    // Assigned on the first poll: the listener is only ever called from inside poll().
    impl_->direct = impl_->direct_pending = true;
    spdlog::info("reading {} with direct assignment (no group join) at {}", config.topic, config.bootstrap_servers);
    return;
  }
  PartitionList topics = new_partition_list(1);
  rd_kafka_topic_partition_list_add(topics.get(), config.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(impl_->rk.get(), topics.get())) {
    impl_->rk.reset();
    throw KafkaError("cannot subscribe to " + config.topic + ": " + rd_kafka_err2str(err), false, config.topic);
  }
  spdlog::info("subscribed to {} as group {} at {}", config.topic, config.group_id, config.bootstrap_servers);
}

KafkaSource::~KafkaSource() {
  if (impl_->rk) {
    close();
  }
}

std::optional<KafkaMessage> KafkaSource::poll(std::chrono::milliseconds timeout) {
  if (impl_->direct_pending && impl_->assign_all_partitions()) impl_->direct_pending = false;
  MessageHandle message(rd_kafka_consumer_poll(impl_->rk.get(), static_cast<int>(timeout.count())));
  impl_->queue_empty = message == nullptr;
  if (impl_->callback_error) std::rethrow_exception(std::exchange(impl_->callback_error, nullptr));
  if (!message) return std::nullopt;
  const rd_kafka_message_t* m = message.get();
  const char* topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    impl_->at_end.insert({topic, m->partition});
    return std::nullopt;
  }
  if (m->err) {
    char reason[512];
    if (rd_kafka_fatal_error(impl_->rk.get(), reason, sizeof reason)) {
      throw KafkaError(std::string("fatal consumer error: ") + reason, false, topic, m->partition);
    }
    // Transient (broker down, topic not there yet): librdkafka keeps trying on its own.
    spdlog::warn("kafka consumer: {} ({}[{}])", rd_kafka_message_errstr(m), topic, m->partition);
    return std::nullopt;
  }
  impl_->at_end.erase({topic, m->partition});
  KafkaMessage out;
  out.source.topic = topic;
  out.source.partition = m->partition;
  out.source.offset = m->offset;
  rd_kafka_timestamp_type_t tstype;
  out.source.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
  if (m->payload) out.payload.assign(static_cast<const char*>(m->payload), m->len);
  return out;
}

bool KafkaSource::caught_up() const {
  if (impl_->assigned.empty()) return false;
  for (const auto& tp : impl_->assigned) {
    if (!impl_->at_end.count(tp)) return false;
  }
  return true;
}

bool KafkaSource::queue_empty() const { return impl_->queue_empty; }

bool KafkaSource::has_assignment() const { return !impl_->assigned.empty(); }

std::set<TopicPartition> KafkaSource::assignment() const { return impl_->assigned; }

void KafkaSource::commit(const std::vector<PartitionOffset>& offsets) {
  if (offsets.empty()) return;
  PartitionList list = new_partition_list(static_cast<int>(offsets.size()));
  for (const auto& o : offsets) {
    if (!impl_->assigned.count({o.topic, o.partition})) continue;
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset = o.next_offset;
  }
  if (list->cnt > 0) {
    auto err = rd_kafka_commit(impl_->rk.get(), list.get(), 1);
    if (err) spdlog::warn("kafka offset commit (for lag tools only) failed: {}", rd_kafka_err2str(err));
  }
}

void KafkaSource::seek(const std::vector<PartitionOffset>& positions) {
  if (positions.empty()) return;
  PartitionList list = new_partition_list(static_cast<int>(positions.size()));
  for (const auto& o : positions) {
    if (!impl_->assigned.count({o.topic, o.partition})) continue;
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset =
        o.next_offset >= 0 ? o.next_offset : impl_->start_offset({}, o.partition);
    impl_->at_end.erase({o.topic, o.partition});
  }
  // Every partition's own result counts: one whose seek failed would go on reading where it was, past messages
  // the stored offsets say are not committed, and they would never be stored. A failure (a timeout too) is
  // retried by the caller: seeking again to the same offsets is harmless.
  std::string failures;
  if (list->cnt > 0) {
    if (ErrorHandle error{rd_kafka_seek_partitions(impl_->rk.get(), list.get(), 10000)}) {
      failures = rd_kafka_error_string(error.get());
    }
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      if (!e.err || e.err == RD_KAFKA_RESP_ERR__IN_PROGRESS) continue;  // in progress: counted in the timeout
      failures += std::string(failures.empty() ? "" : "; ") + e.topic + "[" + std::to_string(e.partition) +
                  "]: " + rd_kafka_err2str(e.err);
    }
  }
  if (!failures.empty()) throw KafkaError("seek to the stored offsets failed: " + failures, true);
}

void KafkaSource::close() {
  if (!impl_->rk) return;
  if (impl_->direct && !impl_->assigned.empty()) {
    // No group to leave: the listener hears of the end of the assignment as a member leaving would make it.
    const auto partitions = impl_->assigned;
    impl_->assigned.clear();
    impl_->at_end.clear();
    try {
      impl_->listener.on_revoked(partitions);
    } catch (const std::exception& e) {
      spdlog::warn("kafka consumer close: revoking the assignment failed: {}", e.what());
    }
    rd_kafka_assign(impl_->rk.get(), nullptr);
  }
  // As rd_kafka_consumer_close(), which can wait for ever for a coordinator that is gone, but with a deadline:
  // revocation callbacks run, offsets stay as committed, and the group is left if a broker answers in time.
  QueueHandle queue(rd_kafka_queue_new(impl_->rk.get()));
  bool closed = false;
  if (ErrorHandle error{rd_kafka_consumer_close_queue(impl_->rk.get(), queue.get())}) {
    spdlog::warn("kafka consumer close: {}", rd_kafka_error_string(error.get()));
  } else {
    const auto until = std::chrono::steady_clock::now() + kCloseTimeout;
    while (!(closed = rd_kafka_consumer_closed(impl_->rk.get())) && std::chrono::steady_clock::now() < until) {
      // Served as events: the revocation is handed to our rebalance callback; everything else is dropped.
      EventHandle event(rd_kafka_queue_poll(queue.get(), 100));
      if (!event) continue;
      if (rd_kafka_event_type(event.get()) == RD_KAFKA_EVENT_REBALANCE) {
        Impl::rebalance_cb(impl_->rk.get(), rd_kafka_event_error(event.get()),
                           rd_kafka_event_topic_partition_list(event.get()), impl_.get());
      } else if (rd_kafka_event_error(event.get())) {
        spdlog::warn("kafka consumer close: {}", rd_kafka_event_error_string(event.get()));
      }
    }
    if (!closed) {
      spdlog::warn("kafka consumer did not close within {} s (no coordinator answering): leaving without it; the "
                   "group moves the partitions when the session times out",
                   std::chrono::duration_cast<std::chrono::seconds>(kCloseTimeout).count());
    }
  }
  queue.reset();
  if (auto error = std::exchange(impl_->callback_error, nullptr)) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::warn("kafka consumer close: revoking the assignment failed: {}", e.what());
    } catch (...) {
      spdlog::warn("kafka consumer close: revoking the assignment failed");
    }
  }
  rd_kafka_destroy_flags(impl_->rk.release(), closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  impl_->assigned.clear();
  impl_->at_end.clear();
}

}  // namespace strategy_consumer
