#include "strategy_consumer/pipeline/writer_lane.hpp"

#include <algorithm>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {

std::map<std::string, std::size_t> BatchLetters::by_stage() const {
  std::map<std::string, std::size_t> out;
  for (const auto& [_, stage] : stage_of) ++out[stage];
  return out;
}

void Work::drop_partitions(const std::set<TopicPartition>& partitions) {
  batch.drop_partitions(partitions);
  std::erase_if(letters.stage_of, [&](const auto& letter) { return partitions.count(letter.first.first) > 0; });
}

WriterLane::WriterLane(std::size_t index, std::unique_ptr<BatchSink> sink) : index_(index), sink_(std::move(sink)) {}

WriterLane::~WriterLane() { stop(); }

void WriterLane::start(WriteFn write) {
  thread_ = std::jthread([this, write = std::move(write)](std::stop_token stop) { loop(write, stop); });
}

void WriterLane::stop() {
  if (!thread_.joinable()) return;
  sink_->interrupt();  // a write blocked in the database fails (retryably): the retry sees the stop
  thread_.request_stop();
  thread_.join();
}

bool WriterLane::busy() const {
  std::lock_guard lock(mutex_);
  return !jobs_.empty();
}

bool WriterLane::has_room() const {
  std::lock_guard lock(mutex_);
  return jobs_.size() < kDepth;
}

void WriterLane::hand(std::unique_ptr<Work> work) {
  {
    std::lock_guard lock(mutex_);
    in_flight_bytes_ += work->batch.bytes();
    work->lane_seq = ++handed_seq_;
    jobs_.push_back(std::move(work));
  }
  changed_.notify_all();
}

std::unique_ptr<Work> WriterLane::take_written(bool wait, const std::function<void()>& while_waiting) {
  std::unique_lock lock(mutex_);
  if (jobs_.empty()) return nullptr;
  while (wait && written_ == 0) {
    changed_.wait_for(lock, std::chrono::milliseconds(50));
    if (written_ == 0 && while_waiting) while_waiting();
  }
  if (written_ == 0) return nullptr;
  std::unique_ptr<Work> work = std::move(jobs_.front());
  jobs_.pop_front();
  --written_;
  // Not committed: the batches handed off until now expect the offsets it would have written. The consumer
  // thread reads its partitions again from the stored offsets; what it hands off from now on follows those.
  if (work->fenced || work->error) skip_through_ = handed_seq_;
  in_flight_bytes_ -= work->batch.bytes();
  return work;
}

bool WriterLane::behind_uncommitted(std::size_t position) const {
  for (std::size_t i = 0; i < position; ++i) {
    const Work& before = *jobs_[i];
    if ((before.fenced || before.error) && before.lane_seq > skip_through_) return true;
  }
  return false;
}

void WriterLane::loop(const WriteFn& write, std::stop_token stop) {
  for (;;) {
    Work* work = nullptr;
    bool skip = false;
    {
      std::unique_lock lock(mutex_);
      if (!changed_.wait(lock, stop, [&] { return written_ < jobs_.size(); })) return;
      work = jobs_[written_].get();
      skip = work->lane_seq <= skip_through_ || behind_uncommitted(written_);
    }
    if (skip) {
      work->skipped = true;
      work->fenced = "not written: a batch before it in this lane was not committed";
    } else {
      try {
        write(*this, *work);
      } catch (const FencedError& e) {
        work->fenced = e.what();
      } catch (...) {
        work->error = std::current_exception();
      }
    }
    {
      std::lock_guard lock(mutex_);
      ++written_;
    }
    changed_.notify_all();
  }
}

}  // namespace strategy_consumer
