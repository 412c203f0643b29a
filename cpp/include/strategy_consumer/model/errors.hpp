#pragma once
// Infrastructure failures are exceptions under one root, each saying whether a retry can help and what to do.
// A bad record is never an exception: it is a value (see model/reason.hpp).
#include <stdexcept>
#include <string>

namespace strategy_consumer {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, bool retryable, std::string remedy = {})
      : std::runtime_error(what), retryable_(retryable), remedy_(std::move(remedy)) {}
  bool retryable() const noexcept { return retryable_; }
  const std::string& remedy() const noexcept { return remedy_; }

 private:
  bool retryable_;
  std::string remedy_;
};

// A flag, variable or file the user gave is wrong. Never retryable; the binary exits 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what, false, "fix the configuration and start again") {}
};

// PostgreSQL failed. sqlstate() is the server's SQLSTATE when it sent one ("" for a lost connection).
class DatabaseError : public Error {
 public:
  DatabaseError(const std::string& what, std::string sqlstate, bool retryable)
      : Error(what, retryable, retryable ? "the operation is retried; check that PostgreSQL is reachable"
                                         : "the statement or the data is wrong"),
        sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// Another consumer owns the partition now: its stored offset is not the one this consumer resumed from or wrote.
// The transaction was rolled back; the batch for those partitions must be abandoned, never retried.
class FencedError : public Error {
 public:
  explicit FencedError(const std::string& what)
      : Error(what, false, "another consumer of the group owns the partition; the batch is abandoned") {}
};

class KafkaError : public Error {
 public:
  KafkaError(const std::string& what, bool retryable, std::string topic = {}, int partition = -1)
      : Error(what, retryable, retryable ? "the operation is retried; check that the brokers are reachable"
                                         : "check the Kafka configuration"),
        topic_(std::move(topic)), partition_(partition) {}
  const std::string& topic() const noexcept { return topic_; }
  int partition() const noexcept { return partition_; }

 private:
  std::string topic_;
  int partition_;
};

// Classifies a SQLSTATE: connection loss, shutdown, serialization and deadlock failures are worth a retry;
// data and constraint errors are not.
bool is_retryable_sqlstate(const std::string& sqlstate);

}  // namespace strategy_consumer
