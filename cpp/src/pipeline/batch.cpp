#include "strategy_consumer/pipeline/batch.hpp"

#include <algorithm>

#include "strategy_consumer/pipeline/memory_budget.hpp"

namespace strategy_consumer {

void Batch::advance(const SourcePosition& source) {
  if (message_count_ == 0) started_ = std::chrono::steady_clock::now();
  ++message_count_;
  ++messages_per_partition_[{source.topic, source.partition}];
  auto& next = next_offsets_[{source.topic, source.partition}];
  next = std::max(next, source.offset + 1);
  auto [first, added] = first_offsets_.try_emplace({source.topic, source.partition}, source.offset);
  if (!added) first->second = std::min(first->second, source.offset);
}

void Batch::add(StrategyRecord record, const SourcePosition& source, std::string payload) {
  advance(source);
  const std::size_t held = sizeof(BatchEntry) + record_bytes(record) + payload.capacity() + source.topic.capacity();
  bytes_ += held;
  bytes_per_partition_[{source.topic, source.partition}] += held;
  entries_.push_back({std::move(record), source, std::move(payload)});
}

void Batch::skip(const SourcePosition& source, std::size_t held_bytes) {
  advance(source);
  bytes_ += held_bytes;
  bytes_per_partition_[{source.topic, source.partition}] += held_bytes;
}

void Batch::drop_partitions(const std::set<TopicPartition>& partitions) {
  std::erase_if(entries_, [&](const BatchEntry& e) {
    return partitions.count({e.source.topic, e.source.partition}) > 0;
  });
  for (const auto& tp : partitions) {
    next_offsets_.erase(tp);
    first_offsets_.erase(tp);
    if (auto it = messages_per_partition_.find(tp); it != messages_per_partition_.end()) {
      message_count_ -= it->second;
      messages_per_partition_.erase(it);
    }
    if (auto it = bytes_per_partition_.find(tp); it != bytes_per_partition_.end()) {
      bytes_ -= it->second;
      bytes_per_partition_.erase(it);
    }
  }
}

void Batch::clear() {
  entries_.clear();
  next_offsets_.clear();
  first_offsets_.clear();
  messages_per_partition_.clear();
  bytes_per_partition_.clear();
  message_count_ = 0;
  bytes_ = 0;
}

}  // namespace strategy_consumer
