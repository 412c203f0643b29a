#pragma once
// In-memory doubles of the pipeline's parts (message_source.hpp, batch_sink.hpp), for driving the pipeline's
// logic without a broker or a database:
//   - ScriptedSource: one topic's partitions as message logs, read in order, with a script of steps run on the
//     consumer thread from inside poll() (assign, revoke, publish, wait until something holds, act);
//   - MemorySink: a "database" of rows written (how many times each strategy_hash was written) and each
//     partition's stored next offset, fenced as PostgresSink fences; it can be told to fail retryably or to block;
//   - MemoryLetters: the dead letters sent, and how many were flushed (dead_letter_sink.hpp).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"
#include "strategy_consumer/pipeline/dead_letter_sink.hpp"
#include "strategy_consumer/pipeline/message_source.hpp"

namespace strategy_consumer::doubles {

class ScriptedSource;

// What the next poll does with a step: done (go on to the next), an event (the poll returns nothing), or not
// yet (messages are delivered meanwhile).
enum class Step { next, event, wait };
using ScriptStep = std::function<Step(ScriptedSource&)>;

// The topic and the script: owned by the test, read by the source the pipeline builds (consumer thread only).
struct Topic {
  std::string name = "strategies";
  std::map<std::int32_t, std::vector<std::string>> logs;  // partition -> payloads, by offset
  std::deque<ScriptStep> script;
  std::vector<PartitionOffset> kafka_commits;
};

class ScriptedSource : public MessageSource {
 public:
  ScriptedSource(Topic& topic, RebalanceListener& listener) : topic_(topic), listener_(listener) {}

  std::optional<SourceMessage> poll(std::chrono::milliseconds timeout) override {
    queue_empty_ = false;
    while (!topic_.script.empty()) {
      const Step step = topic_.script.front()(*this);
      if (step == Step::wait) break;
      topic_.script.pop_front();
      if (step == Step::event) return std::nullopt;
    }
    for (const auto& tp : assigned_) {
      auto& position = positions_[tp];
      const auto& log = topic_.logs[tp.second];
      if (position < static_cast<std::int64_t>(log.size())) {
        at_end_.erase(tp);
        SourceMessage m{{tp.first, tp.second, position, -1}, log[static_cast<std::size_t>(position)]};
        ++position;
        return m;
      }
    }
    for (const auto& tp : assigned_) {
      if (at_end_.insert(tp).second) return std::nullopt;  // the partition-end event, a poll of its own
    }
    queue_empty_ = true;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(2)));
    return std::nullopt;
  }

  bool caught_up() const override {
    if (assigned_.empty()) return false;
    for (const auto& tp : assigned_) {
      if (!at_end_.count(tp)) return false;
    }
    return true;
  }
  bool queue_empty() const override { return queue_empty_; }
  std::set<TopicPartition> assignment() const override { return assigned_; }
  void commit(const std::vector<PartitionOffset>& offsets) override {
    topic_.kafka_commits.insert(topic_.kafka_commits.end(), offsets.begin(), offsets.end());
  }
  void seek(const std::vector<PartitionOffset>& positions) override {
    for (const auto& o : positions) {
      const TopicPartition tp{o.topic, o.partition};
      if (!assigned_.count(tp)) continue;
      positions_[tp] = o.next_offset >= 0 ? o.next_offset : 0;
      at_end_.erase(tp);
    }
  }
  void close() override {
    if (!assigned_.empty()) revoke(assigned_);
  }

  void assign(const std::vector<std::int32_t>& partitions) {
    const auto stored = listener_.on_assigned(topic_.name, partitions);
    for (auto p : partitions) {
      const TopicPartition tp{topic_.name, p};
      auto it = stored.find(p);
      positions_[tp] = it == stored.end() ? 0 : it->second;
      assigned_.insert(tp);
      at_end_.erase(tp);
    }
  }
  void revoke(std::set<TopicPartition> partitions) {
    for (const auto& tp : partitions) {
      assigned_.erase(tp);
      at_end_.erase(tp);
    }
    listener_.on_revoked(partitions);
  }
  // Every assigned partition read to the end of its log (its partition-end event not seen yet).
  bool read_everything() {
    for (const auto& tp : assigned_) {
      if (positions_[tp] < static_cast<std::int64_t>(topic_.logs[tp.second].size())) return false;
    }
    return true;
  }
  const std::string& topic_name() const { return topic_.name; }

 private:
  Topic& topic_;
  RebalanceListener& listener_;
  std::set<TopicPartition> assigned_;
  std::set<TopicPartition> at_end_;
  std::map<TopicPartition, std::int64_t> positions_;
  bool queue_empty_ = false;
};

// The database all the pipeline's sinks share.
struct MemoryDb {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<TopicPartition, std::int64_t> offsets;  // stored next offsets
  std::map<std::string, int> written;               // strategy_hash -> times a committed write held it
  int commits = 0;
  int fenced = 0;
  int failures = 0;      // write attempts failed as told
  int fail_writes = 0;   // the next so many attempts fail (retryably)
  bool fail_always = false;
  bool block = false;    // attempts wait until released (or interrupted)
  int blocked = 0;       // attempts waiting
  std::vector<DeadLetter> letters;  // sent, in order
  std::size_t letters_flushed = 0;  // of them, how many a flush has waited for

  template <class F>
  auto with(F&& f) {
    std::lock_guard lock(mutex);
    return f();
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      block = false;
    }
    changed.notify_all();
  }
};

class MemorySink : public BatchSink {
 public:
  explicit MemorySink(MemoryDb& db) : db_(db) {}

  void ensure_connected() override {}
  void prepare_schema(bool) override {}
  std::map<std::int32_t, std::int64_t> load_offsets(const std::string& topic,
                                                    const std::vector<std::int32_t>& partitions) override {
    std::lock_guard lock(db_.mutex);
    std::map<std::int32_t, std::int64_t> out;
    for (auto p : partitions) {
      if (auto it = db_.offsets.find({topic, p}); it != db_.offsets.end()) out[p] = it->second;
    }
    return out;
  }

  WriteResult write_batch(const std::vector<const StrategyRecord*>& records, const std::vector<PartitionOffset>& offsets,
                          const BeforeCommit&, const std::vector<RowMessage>&) override {
    std::unique_lock lock(db_.mutex);
    if (db_.block) {
      ++db_.blocked;
      waiting_ = true;
      db_.changed.notify_all();
      db_.changed.wait(lock, [&] { return !db_.block || interrupted_; });
      --db_.blocked;
      waiting_ = false;
      if (std::exchange(interrupted_, false)) throw DatabaseError("interrupted (connection shut down)", "", true);
    }
    if (db_.fail_always || db_.fail_writes > 0) {
      if (db_.fail_writes > 0) --db_.fail_writes;
      ++db_.failures;
      db_.changed.notify_all();
      throw DatabaseError("server closed the connection unexpectedly", "", true);
    }
    for (const auto& o : offsets) {
      auto it = db_.offsets.find({o.topic, o.partition});
      const std::optional<std::int64_t> stored =
          it == db_.offsets.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
      if (stored != o.expected) {
        ++db_.fenced;
        throw FencedError("the stored offset of " + o.topic + "[" + std::to_string(o.partition) + "] moved");
      }
    }
    WriteResult result;
    for (const auto& o : offsets) db_.offsets[{o.topic, o.partition}] = o.next_offset;
    for (const auto* r : records) {
      (db_.written[r->strategy_hash]++ == 0 ? result.inserted : result.updated) += 1;
    }
    result.row_statements = 1;
    ++db_.commits;
    db_.changed.notify_all();
    return result;
  }

  void interrupt() noexcept override {
    {
      std::lock_guard lock(db_.mutex);
      if (!waiting_) return;
      interrupted_ = true;
    }
    db_.changed.notify_all();
  }

 private:
  MemoryDb& db_;
  bool waiting_ = false;      // under db_.mutex
  bool interrupted_ = false;  // under db_.mutex
};

class MemoryLetters : public DeadLetterSink {
 public:
  explicit MemoryLetters(MemoryDb& db) : db_(db) {}
  std::uint64_t send(const DeadLetter& letter) override {
    std::lock_guard lock(db_.mutex);
    db_.letters.push_back(letter);
    return db_.letters.size();
  }
  void flush(std::chrono::milliseconds, std::uint64_t up_to) override {
    std::lock_guard lock(db_.mutex);
    db_.letters_flushed = std::max<std::size_t>(db_.letters_flushed, std::min<std::uint64_t>(up_to, db_.letters.size()));
  }

 private:
  MemoryDb& db_;
};

}  // namespace strategy_consumer::doubles
