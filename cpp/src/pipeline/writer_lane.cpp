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
  return job_ != nullptr;
}

void WriterLane::hand(std::unique_ptr<Work> work) {
  {
    std::lock_guard lock(mutex_);
    in_flight_bytes_ = work->batch.bytes();
    job_ = std::move(work);
    done_ = false;
  }
  changed_.notify_all();
}

std::unique_ptr<Work> WriterLane::take_written(bool wait, const std::function<void()>& while_waiting) {
  std::unique_lock lock(mutex_);
  if (!job_) return nullptr;
  while (wait && !done_) {
    changed_.wait_for(lock, std::chrono::milliseconds(50));
    if (!done_ && while_waiting) while_waiting();
  }
  if (!done_) return nullptr;
  done_ = false;
  return std::move(job_);
}

void WriterLane::loop(const WriteFn& write, std::stop_token stop) {
  for (;;) {
    Work* work = nullptr;
    {
      std::unique_lock lock(mutex_);
      if (!changed_.wait(lock, stop, [&] { return job_ && !done_; })) return;
      work = job_.get();
    }
    try {
      write(*this, *work);
    } catch (const FencedError& e) {
      work->fenced = e.what();
    } catch (...) {
      work->error = std::current_exception();
    }
    // Written (or given up): no dead letter can need the payloads any more. Given back now, not when the
    // consumer thread gets round to finishing the batch.
    work->batch.release_entries();
    for (auto& row : work->rows) row.folded.reset();
    in_flight_bytes_ = 0;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
  }
}

}  // namespace strategy_consumer
