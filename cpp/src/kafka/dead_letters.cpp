#include "strategy_consumer/kafka/dead_letters.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>

#include "kafka/handles.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/text.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

// Real brokers refuse records over message.max.bytes (1 MB by default): a letter stays below that, cutting
// the original message (and saying so) when it must.
constexpr std::size_t kMaxLetterBytes = 900 * 1024;

std::string base64(std::string_view in) {
  static constexpr char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                            static_cast<unsigned char>(in[i + 2]);
    out += kTable[v >> 18], out += kTable[(v >> 12) & 63], out += kTable[(v >> 6) & 63], out += kTable[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kTable[v >> 18], out += kTable[(v >> 12) & 63];
    out += i + 1 < in.size() ? kTable[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

struct Letter {
  std::uint64_t seq = 0;  // the order of sending: flush(up_to) waits for the letters up to a number
  std::string payload;
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace

std::string encode_dead_letter(const DeadLetter& letter, std::int64_t now) {
  nlohmann::json j;
  // Bytes read as protobuf are binary whatever they happen to look like: always base64.
  const bool utf8 = letter.message_format != "protobuf" && is_valid_utf8(letter.original_message);
  j["original_message"] = utf8 ? letter.original_message : base64(letter.original_message);
  if (!utf8) j["original_message_encoding"] = "base64";
  j["error"] = reasons_to_text(letter.reasons);
  j["timestamp"] = format_timestamp_us(now).replace(10, 1, "T") + "Z";
  j["stage"] = letter.stage;
  j["reasons"] = reasons_to_json(letter.reasons);
  j["source_topic"] = letter.source.topic;
  j["source_partition"] = letter.source.partition;
  j["source_offset"] = letter.source.offset;
  if (!letter.message_format.empty()) j["message_format"] = letter.message_format;
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (out.size() > kMaxLetterBytes) {
    // Keep as much of the original as fits. Escaping can make text longer in JSON than raw, so the first cut
    // is scaled by how much this original grows when escaped; shrink by a tenth until the letter fits.
    const std::string& original = j["original_message"].get_ref<const std::string&>();
    const std::size_t overhead = out.size() - nlohmann::json(original).dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace).size();
    const double growth = static_cast<double>(out.size() - overhead) / std::max<std::size_t>(original.size(), 1);
    const std::size_t budget = kMaxLetterBytes > overhead + 256 ? kMaxLetterBytes - overhead - 256 : 0;
    std::size_t keep = static_cast<std::size_t>(static_cast<double>(budget) / std::max(growth, 1.0));
    nlohmann::json cut_letter = j;
    cut_letter["original_message_truncated"] = true;
    cut_letter["original_message_bytes"] = letter.original_message.size();
    for (;;) {
      std::string cut = original.substr(0, keep);
      // Never end inside a UTF-8 character (base64 text is ASCII).
      while (!cut.empty() && (static_cast<unsigned char>(cut.back()) & 0xC0) == 0x80) cut.pop_back();
      if (!cut.empty() && static_cast<unsigned char>(cut.back()) >= 0xC0) cut.pop_back();
      cut_letter["original_message"] = std::move(cut);
      out = cut_letter.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      if (out.size() <= kMaxLetterBytes || keep == 0) break;
      keep -= std::max<std::size_t>(keep / 10, 1);
    }
  }
  return out;
}

struct DlqProducer::Impl {
  KafkaConfig config;
  rd_kafka_t* rk = nullptr;
  std::mutex mutex;  // guards the four below; never held while calling librdkafka
  std::deque<std::unique_ptr<Letter>> failed;  // delivery failed: sent again by the next flush
  std::set<std::uint64_t> unacknowledged;      // every letter sent and not yet acknowledged, failed ones too
  std::uint64_t last_seq = 0;
  std::string last_error;

  bool acknowledged_up_to(std::uint64_t seq) {
    std::lock_guard lock(mutex);
    return unacknowledged.empty() || *unacknowledged.begin() > seq;
  }

  void produce(std::unique_ptr<Letter> letter) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(letter->headers.size());
    for (const auto& [k, v] : letter->headers) rd_kafka_header_add(headers, k.c_str(), -1, v.data(), v.size());
    Letter* raw = letter.get();
    auto err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(config.dlq_topic.c_str()),
                                 RD_KAFKA_V_VALUE(raw->payload.data(), raw->payload.size()),
                                 RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(raw), RD_KAFKA_V_END);
    if (err) {
      rd_kafka_headers_destroy(headers);
      std::lock_guard lock(mutex);
      last_error = rd_kafka_err2str(err);
      failed.push_back(std::move(letter));
      return;
    }
    letter.release();  // owned by librdkafka's opaque until the delivery report
  }

  static void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    std::unique_ptr<Letter> letter(static_cast<Letter*>(m->_private));
    std::lock_guard lock(self->mutex);
    if (m->err) {
      self->last_error = rd_kafka_err2str(m->err);
      self->failed.push_back(std::move(letter));  // still unacknowledged
    } else {
      self->unacknowledged.erase(letter->seq);
    }
  }
};

DlqProducer::DlqProducer(const KafkaConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  rd_kafka_conf_t* conf = make_kafka_conf(config.producer_settings());
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &Impl::delivery_cb);
  impl_->rk = new_kafka_handle(RD_KAFKA_PRODUCER, conf);
}

DlqProducer::~DlqProducer() {
  if (!impl_->rk) return;
  rd_kafka_flush(impl_->rk, 5000);
  if (const auto n = pending(); n > 0) {
    spdlog::warn("{} dead letters were not acknowledged at shutdown; their offsets were not committed", n);
    rd_kafka_purge(impl_->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(impl_->rk, 0);  // runs the purged messages' delivery reports, freeing them
  }
  rd_kafka_destroy(impl_->rk);
}

std::uint64_t DlqProducer::send(const DeadLetter& letter) {
  auto l = std::make_unique<Letter>();
  {
    std::lock_guard lock(impl_->mutex);
    l->seq = ++impl_->last_seq;
    impl_->unacknowledged.insert(l->seq);
  }
  const auto seq = l->seq;
  l->payload = encode_dead_letter(letter, now_us());
  l->headers = {{"dlq.source.topic", letter.source.topic},
                {"dlq.source.partition", std::to_string(letter.source.partition)},
                {"dlq.source.offset", std::to_string(letter.source.offset)},
                {"dlq.stage", letter.stage},
                {"dlq.error", reasons_to_text(letter.reasons).substr(0, 1000)}};
  impl_->produce(std::move(l));
  rd_kafka_poll(impl_->rk, 0);
  return seq;
}

void DlqProducer::flush(std::chrono::milliseconds timeout, std::uint64_t up_to) {
  if (impl_->acknowledged_up_to(up_to)) return;
  std::deque<std::unique_ptr<Letter>> retry;
  {
    std::lock_guard lock(impl_->mutex);
    retry.swap(impl_->failed);
  }
  for (auto& l : retry) impl_->produce(std::move(l));
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!impl_->acknowledged_up_to(up_to) && std::chrono::steady_clock::now() < until) {
    rd_kafka_poll(impl_->rk, 10);  // delivery reports
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

}  // namespace strategy_consumer
