#include "strategy_consumer/kafka/dead_letters.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>

#include "kafka/handles.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

// What a record costs beyond its value and headers (record and batch framing), with room to spare.
constexpr std::size_t kRecordOverhead = 512;
// A letter whose producer failed fatally this often is treated as refused (a new producer did not help).
constexpr int kMaxFatalFailures = 2;

struct Letter {
  std::uint64_t seq = 0;  // the order of sending: flush(up_to) waits for the letters up to a number
  std::string payload;
  std::vector<std::pair<std::string, std::string>> headers;
  // What the minimal letter needs, should the topic refuse this one: the letter without its original.
  DeadLetter meta;
  std::size_t original_bytes = 0;
  bool minimal = false;
  int fatal_failures = 0;
};

std::vector<std::pair<std::string, std::string>> headers_of(const DeadLetter& letter, std::string error) {
  return {{"dlq.source.topic", letter.source.topic},
          {"dlq.source.partition", std::to_string(letter.source.partition)},
          {"dlq.source.offset", std::to_string(letter.source.offset)},
          {"dlq.stage", truncate_text(letter.stage, kMaxReasonRuleBytes)},
          {"dlq.error", std::move(error)}};
}

std::size_t size_of(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::size_t n = 0;
  for (const auto& [k, v] : headers) n += k.size() + v.size() + 16;
  return n;
}

// Errors after which the topic would refuse the same letter again: sending it again cannot help.
bool refused_for_good(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return true;
    default:
      return false;
  }
}

std::string describe(const SourcePosition& s) {
  return s.topic + "[" + std::to_string(s.partition) + "]@" + std::to_string(s.offset);
}

}  // namespace

// The longest wait at start for the dead-letter topic's metadata (warm_up).
constexpr int kWarmUpMs = 500;

struct DlqProducer::Impl {
  KafkaConfig config;
  std::function<void(const DeadLetterRefusal&)> on_refused;
  std::size_t max_message_bytes = 1000000;  // the producer's message.max.bytes

  // The handle: used under a shared lock, replaced under the exclusive one after a fatal error.
  std::shared_mutex handle_mutex;
  KafkaHandle rk;
  std::atomic<bool> fatal{false};  // the producer raised a fatal error: replaced by the next flush

  std::mutex mutex;  // guards the five below; never held while calling librdkafka
  std::deque<std::unique_ptr<Letter>> failed;  // delivery failed: sent again by the next flush
  std::deque<std::unique_ptr<Letter>> resend;  // minimal letters in place of refused ones: sent at once
  std::set<std::uint64_t> unacknowledged;      // every letter sent and not yet acknowledged, failed ones too
  std::uint64_t last_seq = 0;
  std::string last_error;

  std::size_t budget() const {
    return std::min(kMaxDeadLetterBytes, max_message_bytes > kRecordOverhead ? max_message_bytes - kRecordOverhead : 0);
  }

  bool acknowledged_up_to(std::uint64_t seq) {
    std::lock_guard lock(mutex);
    return unacknowledged.empty() || *unacknowledged.begin() > seq;
  }

  KafkaHandle create_handle() {
    rd_kafka_conf_t* conf = make_kafka_conf(config.producer_settings());
    char value[64];
    std::size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "message.max.bytes", value, &size) == RD_KAFKA_CONF_OK) {
      max_message_bytes = std::strtoull(value, nullptr, 10);
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &Impl::delivery_cb);
    KafkaHandle handle = new_kafka_handle(RD_KAFKA_PRODUCER, conf);
    warm_up(handle.get());
    return handle;
  }

  // Asks for the dead-letter topic's metadata now: librdkafka looks up a topic it has not seen on its one-second
  // topic scan, so without this the first letter waits about a second before it is sent, and with it the batch
  // that holds it (measured with the dev broker: 0.95 s, 0 after this). A few milliseconds when the brokers answer;
  // when they do not, at most kWarmUpMs and nothing lost (the letters wait for the brokers anyway).
  void warm_up(rd_kafka_t* handle) const {
    TopicHandle rkt(rd_kafka_topic_new(handle, config.dlq_topic.c_str(), nullptr));
    const rd_kafka_metadata_t* raw = nullptr;
    const auto err = rd_kafka_metadata(handle, 0, rkt.get(), &raw, kWarmUpMs);
    MetadataHandle md(raw);
    if (err) spdlog::debug("dead-letter topic {}: no metadata yet ({})", config.dlq_topic, rd_kafka_err2str(err));
  }

  // After a fatal error (librdkafka: the instance must be replaced): what the old producer still held comes
  // back through its delivery reports as purged, and is sent again by the new one.
  void replace_handle() {
    std::unique_lock lock(handle_mutex);
    if (!fatal.exchange(false)) return;
    char reason[512] = "";
    const auto err = rd_kafka_fatal_error(rk.get(), reason, sizeof reason);
    spdlog::error("the dead-letter producer failed fatally ({}: {}); replacing it and sending its unacknowledged "
                  "letters again",
                  rd_kafka_err2name(err), reason);
    rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Every letter's delivery report must be served before the handle goes: a letter whose report were lost
    // would stay unacknowledged, and its batch would wait for it for ever.
    for (int i = 0; i < 500 && rd_kafka_outq_len(rk.get()) > 0; ++i) rd_kafka_poll(rk.get(), 10);
    rd_kafka_poll(rk.get(), 0);
    if (const int left = rd_kafka_outq_len(rk.get()); left > 0) {
      spdlog::error("the failed dead-letter producer still holds {} letter(s) after 5 s; they are lost with it", left);
    }
    rk.reset();  // the failed one goes before its replacement comes
    rk = create_handle();
  }

  void poll(int timeout_ms) {
    std::shared_lock lock(handle_mutex);
    rd_kafka_poll(rk.get(), timeout_ms);
  }

  void produce(std::unique_ptr<Letter> letter) {
    std::shared_lock handle_lock(handle_mutex);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(letter->headers.size());
    for (const auto& [k, v] : letter->headers) rd_kafka_header_add(headers, k.c_str(), -1, v.data(), v.size());
    Letter* raw = letter.get();
    auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(config.dlq_topic.c_str()),
                                 RD_KAFKA_V_VALUE(raw->payload.data(), raw->payload.size()),
                                 RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(raw), RD_KAFKA_V_END);
    if (err) {
      rd_kafka_headers_destroy(headers);
      handle_lock.unlock();
      failed_delivery(std::move(letter), err);
      return;
    }
    letter.release();  // owned by librdkafka's opaque until the delivery report
  }

  // Produces the minimal letters waiting (not from a delivery report: those only queue them).
  void send_resends() {
    std::deque<std::unique_ptr<Letter>> now;
    {
      std::lock_guard lock(mutex);
      now.swap(resend);
    }
    for (auto& l : now) produce(std::move(l));
  }

  void failed_delivery(std::unique_ptr<Letter> letter, rd_kafka_resp_err_t err) {
    std::optional<DeadLetterRefusal> refusal;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      fatal = true;
      if (++letter->fatal_failures >= kMaxFatalFailures) err = RD_KAFKA_RESP_ERR_INVALID_RECORD;  // for good
    }
    if (err != RD_KAFKA_RESP_ERR__FATAL && refused_for_good(err)) {
      const std::string why = std::string(rd_kafka_err2name(err)) + ": " + rd_kafka_err2str(err);
      const std::string where = describe(letter->meta.source);
      if (!letter->minimal) {
        spdlog::warn("the dead-letter topic {} refused the letter of {} (stage {}, {} bytes) for good ({}); sending "
                     "a minimal letter in its place",
                     config.dlq_topic, where, letter->meta.stage, letter->payload.size(), why);
        letter->payload = encode_minimal_dead_letter(letter->meta, why, now_us(), letter->original_bytes);
        letter->headers = headers_of(letter->meta, truncate_text(why, 200));
        letter->minimal = true;
        letter->fatal_failures = 0;
        std::lock_guard lock(mutex);
        resend.push_back(std::move(letter));
        return;
      }
      spdlog::error("the dead-letter topic {} refused even the minimal letter of {} (stage {}) ({}): the letter is "
                    "undeliverable; the message's offset is committed without it",
                    config.dlq_topic, where, letter->meta.stage, why);
      refusal = DeadLetterRefusal{false, letter->meta.stage, letter->meta.source, why};
      std::lock_guard lock(mutex);
      unacknowledged.erase(letter->seq);
    } else {
      std::lock_guard lock(mutex);
      last_error = rd_kafka_err2str(err);
      failed.push_back(std::move(letter));  // still unacknowledged
    }
    if (refusal && on_refused) on_refused(*refusal);
  }

  static void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    std::unique_ptr<Letter> letter(static_cast<Letter*>(m->_private));
    if (m->err) {
      self->failed_delivery(std::move(letter), m->err);
      return;
    }
    {
      std::lock_guard lock(self->mutex);
      self->unacknowledged.erase(letter->seq);
    }
    if (letter->minimal && self->on_refused) {
      self->on_refused({true, letter->meta.stage, letter->meta.source,
                        letter->headers.empty() ? std::string() : letter->headers.back().second});
    }
  }
};

DlqProducer::DlqProducer(const KafkaConfig& config, std::function<void(const DeadLetterRefusal&)> on_refused)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->on_refused = std::move(on_refused);
  impl_->rk = impl_->create_handle();
}

DlqProducer::~DlqProducer() {
  if (!impl_->rk) return;
  rd_kafka_flush(impl_->rk.get(), 5000);
  if (const auto n = pending(); n > 0) {
    spdlog::warn("{} dead letters were not acknowledged at shutdown; their offsets were not committed", n);
    rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(impl_->rk.get(), 0);  // runs the purged messages' delivery reports, freeing them
  }
  impl_->rk.reset();
}

std::uint64_t DlqProducer::send(const DeadLetter& letter) {
  auto l = std::make_unique<Letter>();
  {
    std::lock_guard lock(impl_->mutex);
    l->seq = ++impl_->last_seq;
    impl_->unacknowledged.insert(l->seq);
  }
  const auto seq = l->seq;
  l->headers = headers_of(letter, truncate_text(reasons_to_text(letter.reasons), 1000));
  const std::size_t headers = size_of(l->headers);
  const std::size_t budget = impl_->budget();
  l->payload = encode_dead_letter(letter, now_us(), budget > headers ? budget - headers : 0);
  l->meta.stage = letter.stage;
  l->meta.source = letter.source;
  l->meta.reasons = bounded_reasons(letter.reasons, 1);
  l->original_bytes = letter.original_message.size();
  impl_->produce(std::move(l));
  impl_->poll(0);
  impl_->send_resends();
  return seq;
}

void DlqProducer::flush(std::chrono::milliseconds timeout, std::uint64_t up_to) {
  if (impl_->fatal) impl_->replace_handle();
  if (impl_->acknowledged_up_to(up_to)) return;
  std::deque<std::unique_ptr<Letter>> retry;
  {
    std::lock_guard lock(impl_->mutex);
    retry.swap(impl_->failed);
  }
  for (auto& l : retry) impl_->produce(std::move(l));
  impl_->send_resends();
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!impl_->acknowledged_up_to(up_to) && std::chrono::steady_clock::now() < until) {
    impl_->poll(10);  // delivery reports
    impl_->send_resends();  // a refused letter's minimal one, within this same wait
    if (impl_->fatal) break;  // the next flush replaces the producer
  }
  if (impl_->acknowledged_up_to(up_to)) return;
  std::lock_guard lock(impl_->mutex);
  const auto waiting = std::count_if(impl_->unacknowledged.begin(), impl_->unacknowledged.end(),
                                     [&](std::uint64_t seq) { return seq <= up_to; });
  throw KafkaError("dead-letter topic " + impl_->config.dlq_topic + ": " + std::to_string(waiting) +
                       " letter(s) not acknowledged" +
                       (impl_->last_error.empty() ? std::string() : " (" + impl_->last_error + ")"),
                   true, impl_->config.dlq_topic);
}

std::size_t DlqProducer::pending() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->unacknowledged.size();
}

std::size_t DlqProducer::letter_budget() const { return impl_->budget(); }

}  // namespace strategy_consumer
