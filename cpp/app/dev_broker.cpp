// strategy-kafka-dev: a Kafka-protocol broker for development, tests and benchmarks. Never for production.
//
// What runs underneath: librdkafka's mock cluster (librdkafka/rdkafka_mock.h), hosted on a producer handle that
// never produces. It speaks the real wire protocol (produce, idempotent producer, fetch, metadata, consumer groups,
// offset commits), keeps everything in memory, and every broker listens on 127.0.0.1 at a random port
// (INADDR_LOOPBACK, port 0). Broker ids are 1..N.
//
// Limits of that broker (librdkafka 2.0.2):
// - Each partition keeps 5 MiB of record batches (~70 bytes of overhead each) or 100,000 batches, whichever comes
//   first; beyond that the OLDEST data is dropped and the low watermark moves. Give topics enough partitions for
//   what is pre-filled, or produce while consuming.
// - The group coordinator rebalances only when a departed member's session expires, even after a clean leave:
//   consumers that reopen a group should use a short session.timeout.ms (e.g. 6000).
// - Any Metadata request naming an unknown topic creates it with 4 partitions (replication factor min(brokers, 3)):
//   a producer's, `kcat -L -t`, even a consumer's subscribe (allow.auto.create.topics is not honoured). Create
//   topics explicitly (--topic, or `topic` on stdin) to choose the partition count.
// - No CreateTopics/DeleteTopics admin API, no TLS/SASL, no persistence.
//
// Interface:
//   strategy-kafka-dev [--brokers N] [--topic NAME[:PARTITIONS]]... [--address-file PATH] [--debug CONTEXTS]
//   The first line of stdout is the bootstrap address (e.g. 127.0.0.1:34567); logs go to stderr.
//   Then one command per stdin line, each answered with one stdout line, `ok` or `error <reason>`:
//     down <broker_id> | up <broker_id> | down-all | up-all | topic <name> <partitions> | produce-errors <code>...
//   `down` closes the broker's connections and refuses new ones (no leader change); `up` reopens the same port.
//   `produce-errors` makes the next Produce requests (one per code, from any client) fail with those Kafka error
//   codes, e.g. `produce-errors 10 10` (MESSAGE_TOO_LARGE twice) or 29 (TOPIC_AUTHORIZATION_FAILED).
//   Blank lines are ignored. EOF on stdin is fine (the broker keeps running); SIGTERM or SIGINT stops it with
//   exit status 0.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <CLI/CLI.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int kMaxBrokers = 32;
constexpr int kMaxPartitions = 10000;
constexpr std::size_t kMaxCommandLine = 4096;

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

void log(const std::string& message) {
  std::fprintf(stderr, "strategy-kafka-dev: %s\n", message.c_str());
}

void answer(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

std::optional<int> parse_int(const std::string& text) {
  int value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

// Kafka's own rule for topic names, so that what works here also works against a real cluster.
std::string topic_name_error(const std::string& name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..")
    return "topic name must be 1-249 characters and not '.' or '..'";
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return "topic name may contain only letters, digits, '.', '_' and '-': " + name;
  return {};
}

std::string partitions_error(const std::optional<int>& partitions) {
  if (!partitions || *partitions < 1 || *partitions > kMaxPartitions)
    return "partitions must be an integer in 1.." + std::to_string(kMaxPartitions);
  return {};
}

// "NAME" or "NAME:PARTITIONS"; topic names cannot contain ':'.
TopicSpec parse_topic_spec(const std::string& spec) {
  TopicSpec topic;
  const auto colon = spec.rfind(':');
  topic.name = spec.substr(0, colon);
  if (auto error = topic_name_error(topic.name); !error.empty()) throw std::invalid_argument(error);
  if (colon != std::string::npos) {
    const auto partitions = parse_int(spec.substr(colon + 1));
    if (auto error = partitions_error(partitions); !error.empty()) throw std::invalid_argument(error);
    topic.partitions = *partitions;
  }
  return topic;
}

// Owns the hosting handle and the mock cluster; the cluster must go first.
class MockCluster {
 public:
  MockCluster(int broker_count, const std::string& debug) : broker_count_(broker_count) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The hosting handle never connects anywhere: hide its notice that bootstrap.servers is unset. Setting
    // debug afterwards raises the level again.
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        (!debug.empty() &&
         rd_kafka_conf_set(conf, "debug", debug.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(errstr);
    }
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("cannot create the hosting handle: ") + errstr);
    }
    mcluster_ = rd_kafka_mock_cluster_new(rk_, broker_count);
    if (mcluster_ == nullptr) {
      rd_kafka_destroy(rk_);
      throw std::runtime_error("cannot create the mock cluster (see the log above)");
    }
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mcluster_);
    rd_kafka_destroy(rk_);
  }

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(mcluster_); }
  int broker_count() const { return broker_count_; }

  rd_kafka_resp_err_t create_topic(const TopicSpec& topic) {
    // Replication is bookkeeping only in the mock; min(brokers, 3) is what a real cluster would typically have.
    return rd_kafka_mock_topic_create(mcluster_, topic.name.c_str(), topic.partitions,
                                      std::min(broker_count_, 3));
  }

  // The next errors.size() Produce requests, from any client, fail with these errors in turn.
  void fail_produce_requests(const std::vector<rd_kafka_resp_err_t>& errors) {
    rd_kafka_mock_push_request_errors_array(mcluster_, 0 /* ProduceRequest */, errors.size(), errors.data());
  }

  // broker_id -1 means every broker.
  rd_kafka_resp_err_t set_up(int broker_id, bool up) {
    return up ? rd_kafka_mock_broker_set_up(mcluster_, broker_id)
              : rd_kafka_mock_broker_set_down(mcluster_, broker_id);
  }

 private:
  int broker_count_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* mcluster_ = nullptr;
};

std::string result(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : std::string("error ") + rd_kafka_err2str(err);
}

// One control command; the answer is "ok" or "error <reason>". New fault injections go here.
std::string execute(MockCluster& cluster, const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  if (words.empty()) return "error empty command";
  const std::string& verb = words[0];

  if ((verb == "down" || verb == "up") && words.size() == 2) {
    const auto id = parse_int(words[1]);
    if (!id || *id < 1 || *id > cluster.broker_count())
      return "error broker id must be in 1.." + std::to_string(cluster.broker_count());
    return result(cluster.set_up(*id, verb == "up"));
  }
  if ((verb == "down-all" || verb == "up-all") && words.size() == 1)
    return result(cluster.set_up(-1, verb == "up-all"));
  if (verb == "topic" && words.size() == 3) {
    if (auto error = topic_name_error(words[1]); !error.empty()) return "error " + error;
    const auto partitions = parse_int(words[2]);
    if (auto error = partitions_error(partitions); !error.empty()) return "error " + error;
    return result(cluster.create_topic({words[1], *partitions}));
  }
  if (verb == "produce-errors" && words.size() >= 2) {
    std::vector<rd_kafka_resp_err_t> errors;
    for (std::size_t i = 1; i < words.size(); ++i) {
      const auto code = parse_int(words[i]);
      if (!code || *code <= 0) return "error produce-errors takes Kafka error codes (e.g. 10: message too large)";
      errors.push_back(static_cast<rd_kafka_resp_err_t>(*code));
    }
    cluster.fail_produce_requests(errors);
    return "ok";
  }
  return "error unknown command (expected: down ID | up ID | down-all | up-all | topic NAME PARTITIONS | "
         "produce-errors CODE...): " + line;
}

void write_atomically(const std::filesystem::path& path, const std::string& content) {
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

// Splits what arrives on a file descriptor into lines without ever blocking the loop.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // Call when poll() reports the fd; returns false once the input is finished (EOF, error, closed fd).
  bool read_lines(short revents, std::vector<std::string>& lines) {
    if (revents & POLLNVAL) return false;
    char chunk[1024];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) {
      if (!pending_.empty()) lines.push_back(std::move(pending_));
      return false;
    }
    pending_.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t eol; (eol = pending_.find('\n')) != std::string::npos;) {
      std::string line = pending_.substr(0, eol);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
      pending_.erase(0, eol + 1);
    }
    if (pending_.size() > kMaxCommandLine) {
      lines.push_back(std::move(pending_));  // answered with an error, never grows without bound
      pending_.clear();
    }
    return true;
  }

 private:
  int fd_;
  std::string pending_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strategy-kafka-dev: a Kafka-protocol broker for development and tests (librdkafka mock cluster).\n"
               "Prints its bootstrap address as the first line of stdout, then answers stdin commands\n"
               "(down ID, up ID, down-all, up-all, topic NAME PARTITIONS, produce-errors CODE...) with 'ok' or\n"
               "'error ...'.\n"
               "Stops on SIGTERM or SIGINT."};
  int brokers = 1;
  std::vector<std::string> topic_specs;
  std::string address_file;
  std::string debug;
  app.add_option("--brokers", brokers, "Number of brokers (ids 1..N), each on its own 127.0.0.1 port")
      ->check(CLI::Range(1, kMaxBrokers))
      ->capture_default_str();
  app.add_option("--topic", topic_specs, "Topic to create, NAME[:PARTITIONS] (default 1 partition); repeatable")
      ->check([](const std::string& spec) {
        try {
          parse_topic_spec(spec);
          return std::string{};
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
      });
  app.add_option("--address-file", address_file,
                 "Also write the bootstrap address to this file (atomically; removed on clean exit)");
  app.add_option("--debug", debug, "librdkafka debug contexts for the broker's log, e.g. mock or all");
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals before librdkafka starts its threads so that they all arrive on the signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    log(std::string("signalfd: ") + std::strerror(errno));
    return 1;
  }
  // A reader that goes away must not kill the broker in the middle of a test.
  ::signal(SIGPIPE, SIG_IGN);

  int status = 0;
  try {
    MockCluster cluster(brokers, debug);
    for (const auto& spec : topic_specs) {
      const auto topic = parse_topic_spec(spec);
      if (const auto err = cluster.create_topic(topic))
        throw std::runtime_error("cannot create topic " + topic.name + ": " + rd_kafka_err2str(err));
    }
    const std::string address = cluster.bootstraps();
    if (!address_file.empty()) write_atomically(address_file, address + "\n");
    answer(address);
    log(std::to_string(brokers) + " broker(s) at " + address + ", " + std::to_string(topic_specs.size()) +
        " topic(s) created; waiting for SIGTERM/SIGINT");

    LineReader commands(STDIN_FILENO);
    bool stdin_open = true;
    while (true) {
      pollfd fds[2] = {{signal_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
      if (::poll(fds, stdin_open ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      }
      if (fds[0].revents) {
        signalfd_siginfo info{};
        if (::read(signal_fd, &info, sizeof info) == sizeof info)
          log(std::string("stopping on ") + (info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"));
        break;
      }
      if (stdin_open && fds[1].revents) {
        std::vector<std::string> lines;
        stdin_open = commands.read_lines(fds[1].revents, lines);
        for (const auto& line : lines)
          if (line.find_first_not_of(" \t") != std::string::npos) answer(execute(cluster, line));
        if (!stdin_open) log("stdin closed; still running until SIGTERM/SIGINT");
      }
    }
    if (!address_file.empty()) {
      std::error_code ignored;
      std::filesystem::remove(address_file, ignored);
    }
  } catch (const std::exception& e) {
    log(std::string("error: ") + e.what());
    status = 1;
  }
  ::close(signal_fd);
  return status;
}
