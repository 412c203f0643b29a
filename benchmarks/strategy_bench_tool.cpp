// strategy-bench-tool: the C++ half of scripts/bench. It runs the consumer's own code (the core library) on a
// file of messages, without Kafka. The file holds each message as a 4-byte little-endian length, then its bytes:
// JSON or protobuf DiscoveredStrategy, told apart as --message_format=auto does.
//
//   rows     per batch of --batch_size messages, the COPY text the sink sends for that batch: inspect (decode,
//            validate), fold duplicates by strategy_hash (fold_by_hash), encode_copy_row, lines joined by
//            '\n' and each ended by one, as pqxx::tablewriter sends them. Byte for byte the rows strategy-consumer
//            writes (when its batches hold the same messages), for the "limit" measurement with psql \copy.
//            --hashes FILE also writes each message's strategy_hash, one a line ("-" for a refused message).
//   cpu      decode (incl. the canonical hash) + validate + encode_copy_row of every message on this thread,
//            repeated for at least --min_seconds; prints messages per second of thread CPU time and of wall time,
//            then each stage alone over all messages: its CPU time per message (hash_us is part of decode_us).
//   migrate  applies the consumer's schema migrations (PostgresSink::prepare_schema) to a database.
//   sql      the write path's statements (postgres/statements.hpp), by name: the SQL the sink runs, for the limit
//            and the ceiling of scripts/bench, which keep no copy of it.
// Every mode prints one JSON object on stdout.
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/fold.hpp"
#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/postgres/sink.hpp"
#include "strategy_consumer/postgres/statements.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace {

using namespace strategy_consumer;
using Clock = std::chrono::steady_clock;

std::vector<std::string> read_messages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> out;
  unsigned char len[4];
  while (in.read(reinterpret_cast<char*>(len), 4)) {
    const std::uint32_t n = len[0] | (len[1] << 8) | (len[2] << 16) | (std::uint32_t(len[3]) << 24);
    std::string m(n, '\0');
    if (!in.read(m.data(), n)) throw std::runtime_error(path + ": truncated message");
    out.push_back(std::move(m));
  }
  return out;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What the pipeline does with one message before the batch is written: StrategyInspector::inspect, i.e. decode
// (with the canonical hash), then validate against the built-in catalog, with the consumer's default options.
struct Checker {
  StrategyInspector inspector;
  std::int64_t now = now_us();

  bool check(std::string_view payload, StrategyRecord& record) const {
    Inspection inspection = inspector.inspect(payload, now);
    if (!inspection.ok()) return false;
    record = std::move(inspection.record);
    return true;
  }
};

int run_rows(const std::string& input, std::size_t batch_size, const std::string& out_dir,
             const std::string& hashes_path) {
  const auto messages = read_messages(input);
  std::filesystem::create_directories(out_dir);
  std::ofstream hashes;
  if (!hashes_path.empty()) hashes.open(hashes_path, std::ios::binary);
  Checker checker;
  Batch batch;
  std::size_t valid = 0, rows = 0, batches = 0, bytes = 0;
  auto write_batch = [&] {
    if (batch.empty()) return;
    std::string text;
    for (const auto& row : fold_by_hash(batch.entries())) {
      encode_copy_row(text, row.record(batch.entries()));
      text += '\n';
      ++rows;
    }
    char name[32];
    std::snprintf(name, sizeof name, "batch-%06zu.copy", ++batches);
    std::ofstream(std::filesystem::path(out_dir) / name, std::ios::binary) << text;
    bytes += text.size();
    batch.clear();
  };
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const SourcePosition source{"bench", 0, static_cast<std::int64_t>(i), -1};
    StrategyRecord record;
    if (checker.check(messages[i], record)) {
      ++valid;
      if (hashes.is_open()) hashes << record.strategy_hash << '\n';
      batch.add(std::move(record), source);
    } else {
      if (hashes.is_open()) hashes << "-\n";
      batch.skip(source);
    }
    if (batch.message_count() >= batch_size) write_batch();
  }
  write_batch();
  std::cout << nlohmann::json{{"messages", messages.size()}, {"valid", valid}, {"invalid", messages.size() - valid},
                              {"rows", rows},           {"batches", batches},  {"copy_bytes", bytes}}
                   .dump()
            << std::endl;
  return 0;
}

int run_cpu(const std::string& input, double min_seconds) {
  const auto messages = read_messages(input);
  if (messages.empty()) throw std::runtime_error(input + ": no messages");
  Checker checker;
  std::string line;
  std::size_t sink = 0;  // keeps the work observable

  // Pass 1: the whole path, timed as a whole.
  std::size_t done = 0, valid = 0;
  const double cpu0 = thread_cpu_seconds();
  const auto wall0 = Clock::now();
  double cpu = 0;
  while (cpu < min_seconds) {
    for (const auto& m : messages) {
      StrategyRecord record;
      if (checker.check(m, record)) {
        ++valid;
        line.clear();
        encode_copy_row(line, record);
        sink += line.size();
      }
    }
    done += messages.size();
    cpu = thread_cpu_seconds() - cpu0;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();

  // Then each stage alone over all messages, for the breakdown (thread CPU time per message). Decoding is timed
  // as the pipeline runs it, each record freed before the next; keeping them all while timing would count the
  // page faults of a heap growing by every record's memory instead.
  double t = thread_cpu_seconds();
  const Catalog* catalog = &checker.inspector.validator().catalog();
  const DecodeOptions& options = checker.inspector.decode_options();
  for (const auto& m : messages) {
    Decoded d = decode_message(m, options, catalog);
    sink += d.ok();
  }
  const double t_decode = thread_cpu_seconds() - t;
  std::vector<StrategyRecord> records;  // for the other stages, untimed
  records.reserve(messages.size());
  for (const auto& m : messages) {
    Decoded d = decode_message(m, options, catalog);
    if (d.ok()) records.push_back(std::move(d.record));
  }
  t = thread_cpu_seconds();
  for (const auto& r : records) sink += canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters).size();
  const double t_hash = thread_cpu_seconds() - t;
  t = thread_cpu_seconds();
  for (const auto& r : records) sink += checker.inspector.validator().validate(r, checker.now).size();
  const double t_validate = thread_cpu_seconds() - t;
  t = thread_cpu_seconds();
  for (const auto& r : records) {
    line.clear();
    encode_copy_row(line, r);
    sink += line.size();
  }
  const double t_encode = thread_cpu_seconds() - t;

  const double n = static_cast<double>(messages.size());
  const double valid_n = static_cast<double>(records.empty() ? 1 : records.size());
  std::cout << nlohmann::json{{"messages", done},
                              {"valid", valid},
                              {"cpu_seconds", cpu},
                              {"wall_seconds", wall},
                              {"messages_per_cpu_second", static_cast<double>(done) / cpu},
                              {"messages_per_wall_second", static_cast<double>(done) / wall},
                              {"decode_us_per_message", t_decode / n * 1e6},
                              {"hash_us_per_message", t_hash / valid_n * 1e6},
                              {"validate_us_per_message", t_validate / valid_n * 1e6},
                              {"encode_us_per_message", t_encode / valid_n * 1e6},
                              {"checksum", sink}}
                   .dump()
            << std::endl;
  return 0;
}

int run_migrate(const PostgresConfig& config) {
  PostgresSink sink(config, "strategy-bench-tool");
  sink.prepare_schema(true);
  std::cout << nlohmann::json{{"migrated", config.describe()}}.dump() << std::endl;
  return 0;
}

int run_sql() {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, sql] : statements::kAll) out[std::string(name)] = std::string(sql);
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strategy-bench-tool: the consumer's CPU path and rows without Kafka, for scripts/bench"};
  app.require_subcommand(1);
  std::string input, out_dir, hashes;
  std::size_t batch_size = 1000;
  double min_seconds = 3;
  PostgresConfig pg;
  pg.application_name = "strategy-bench-tool";

  auto* rows = app.add_subcommand("rows", "COPY text of each batch, as the sink sends it");
  rows->add_option("--input", input, "message file (length-prefixed)")->required();
  rows->add_option("--batch_size", batch_size, "messages per batch, like strategy-consumer --batch_size")
      ->capture_default_str();
  rows->add_option("--out_dir", out_dir, "directory for batch-NNNNNN.copy")->required();
  rows->add_option("--hashes", hashes, "file for each message's strategy_hash");

  auto* cpu = app.add_subcommand("cpu", "decode + validate + hash + encode on one thread");
  cpu->add_option("--input", input, "message file (length-prefixed)")->required();
  cpu->add_option("--min_seconds", min_seconds, "CPU time to run for at least")->capture_default_str();

  auto* migrate = app.add_subcommand("migrate", "apply the consumer's schema migrations");
  migrate->add_option("--postgres_host", pg.host)->capture_default_str();
  migrate->add_option("--postgres_port", pg.port)->capture_default_str();
  migrate->add_option("--postgres_database", pg.database)->capture_default_str();
  migrate->add_option("--postgres_username", pg.user)->capture_default_str();

  auto* sql = app.add_subcommand("sql", "the write path's SQL (statements.hpp) as JSON, by name");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*rows) return run_rows(input, batch_size, out_dir, hashes);
    if (*cpu) return run_cpu(input, min_seconds);
    if (*migrate) return run_migrate(pg);
    if (*sql) return run_sql();
  } catch (const std::exception& e) {
    std::cerr << "strategy-bench-tool: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
