// Micro-benchmarks of the consumer's CPU path, one stage at a time: decoding (the one-pass fast path, and the
// strict DOM path that decides every message the fast path declines; protobuf against JSON of the same content), the canonical hash (canonical JSON +
// SHA-256), validation against the built-in catalog, COPY row encoding and the in-batch fold; BM_Reference*
// are floors of the JSON library alone (its DOM parser, and its parser feeding a SAX handler that keeps nothing).
// scripts/bench measures the whole path on realistic messages (strategy-bench-tool cpu); these say where its time
// goes. Run: build/benchmarks/micro_benchmarks
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/fold.hpp"
#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/json_decoder.hpp"
#include "strategy_consumer/message/protobuf_decoder.hpp"
#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/model/timestamp.hpp"
#include "strategy_consumer/message/validator.hpp"

namespace {

using namespace strategy_consumer;

// Messages as the discovery pipeline sends them (python/strategy_consumer/samples.py draws the same shape):
// 400-540 bytes, parameters within the catalog's ranges, no strategy_hash (so decoding computes it).
const std::vector<std::string>& messages() {
  static const std::vector<std::string> kMessages{
      R"({"symbol": "ETH/USD", "strategy_type": "CMF_ZERO_LINE", "parameters": {"period": 37}, "current_score": 0.4162, "performance_metrics": {"total_return": 0.0581, "sharpe_ratio": 0.345, "max_drawdown": -0.132, "win_rate": 0.523, "profit_factor": 1.453, "total_trades": 408, "avg_trade_duration": 40.2}, "discovery_symbol": "ETH/USD", "discovery_start_time": "2026-10-19T04:42:00Z", "discovery_end_time": "2026-10-26T04:42:00Z"})",
      R"({"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER", "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}, "current_score": 1.2264, "performance_metrics": {"total_return": 0.15, "sharpe_ratio": 1.2, "max_drawdown": -0.05, "win_rate": 0.65, "profit_factor": 1.8, "total_trades": 150, "avg_trade_duration": 2.5}, "discovery_symbol": "BTC/USD", "discovery_start_time": "2024-01-15T10:30:00Z", "discovery_end_time": "2024-02-15T10:30:00+02:00"})",
      R"({"symbol": "SOL/USD", "strategy_type": "SMA_RSI", "parameters": {"movingAveragePeriod": 14, "rsiPeriod": 21, "overboughtThreshold": 72.35, "oversoldThreshold": 27.9}, "current_score": 0.88731, "performance_metrics": {"total_return": 0.1112, "sharpe_ratio": 1.031, "max_drawdown": -0.0871, "win_rate": 0.571, "profit_factor": 1.377, "total_trades": 233, "avg_trade_duration": 11.75}, "discovery_symbol": "SOL/USD", "discovery_start_time": "2026-08-01T00:00:00Z", "discovery_end_time": "2026-10-30T00:00:00Z"})",
  };
  return kMessages;
}

std::vector<StrategyRecord> decoded_records() {
  std::vector<StrategyRecord> out;
  for (const auto& m : messages()) {
    auto d = decode_strategy(m);
    if (!d.ok()) throw std::runtime_error("benchmark message does not decode: " + reasons_to_text(d.reasons));
    out.push_back(std::move(d.record));
  }
  return out;
}

void set_rate(benchmark::State& state, std::size_t bytes_per_item = 0) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (bytes_per_item) state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes_per_item));
}

std::size_t average_message_bytes() {
  std::size_t total = 0;
  for (const auto& m : messages()) total += m.size();
  return total / messages().size();
}

// Decoding a message without strategy_hash: JSON parse + contract checks + canonical hash.
void BM_Decode(benchmark::State& state) {
  const auto& ms = messages();
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_strategy(ms[i++ % ms.size()]);
    benchmark::DoNotOptimize(d);
  }
  set_rate(state, average_message_bytes());
}
BENCHMARK(BM_Decode);

// The same three strategies without performance metrics (the protobuf message has none), as JSON and as the
// discovery pipeline's protobuf: decode by name + canonical hash, per message.
const std::vector<std::string>& lean_json_messages() {
  static const std::vector<std::string> kMessages = [] {
    std::vector<std::string> out;
    for (const auto& m : messages()) {
      auto doc = nlohmann::json::parse(m);
      doc.erase("performance_metrics");
      doc.erase("discovery_symbol");
      out.push_back(doc.dump());
    }
    return out;
  }();
  return kMessages;
}

const std::vector<std::string>& protobuf_messages() {
  // MACD_CROSSOVER {12, 26, 9} and SMA_RSI {14, 21, 72.35, 27.9} and CMF_ZERO_LINE {37}, as the producer packs
  // them (hand-encoded: the benchmark does not depend on the generated classes).
  static const std::vector<std::string> kMessages = [] {
    auto field = [](int number, int wire, const std::string& body) {
      std::string out(1, static_cast<char>((number << 3) | wire));
      if (wire == 2) out += static_cast<char>(body.size());
      return out + body;
    };
    auto varint_field = [](int number, int v) { return std::string{static_cast<char>(number << 3), static_cast<char>(v)}; };
    auto double_field = [](int number, double d) {
      std::string out(1, static_cast<char>((number << 3) | 1));
      out.append(reinterpret_cast<const char*>(&d), 8);
      return out;
    };
    auto message = [&](const std::string& type, const std::string& name, const std::string& params, double score,
                       const std::string& symbol, int start, int end) {
      const std::string any = field(1, 2, "type.googleapis.com/strategies." + type) + field(2, 2, params);
      const std::string strategy = field(2, 2, any) + field(3, 2, name);
      auto ts = [&](int seconds) {
        std::string v;
        for (unsigned u = static_cast<unsigned>(seconds); ; u >>= 7) {
          if (u < 0x80) { v += static_cast<char>(u); break; }
          v += static_cast<char>((u & 0x7F) | 0x80);
        }
        return std::string(1, '\x08') + v;
      };
      return field(1, 2, strategy) + double_field(2, score) + field(3, 2, symbol) + field(4, 2, ts(start)) +
             field(5, 2, ts(end));
    };
    return std::vector<std::string>{
        message("CmfZeroLineParameters", "CMF_ZERO_LINE", varint_field(1, 37), 0.4162, "ETH/USD", 1792384920,
                1792989720),
        message("MacdCrossoverParameters", "MACD_CROSSOVER", varint_field(1, 12) + varint_field(2, 26) + varint_field(3, 9),
                1.2264, "BTC/USD", 1705314600, 1707985800),
        message("SmaRsiParameters", "SMA_RSI",
                varint_field(1, 14) + varint_field(2, 21) + double_field(3, 72.35) + double_field(4, 27.9), 0.88731,
                "SOL/USD", 1785542400, 1793318400),
    };
  }();
  return kMessages;
}

void BM_DecodeJsonWithoutMetrics(benchmark::State& state) {
  const auto& ms = lean_json_messages();
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_strategy(ms[i++ % ms.size()]);
    benchmark::DoNotOptimize(d);
  }
  set_rate(state);
}
BENCHMARK(BM_DecodeJsonWithoutMetrics);

void BM_DecodeProtobuf(benchmark::State& state) {
  const auto& ms = protobuf_messages();
  const Catalog* catalog = Catalog::builtin().get();
  for (const auto& m : ms) {
    auto d = decode_discovered_strategy(m, {}, catalog);
    if (!d.ok()) throw std::runtime_error("benchmark message does not decode: " + reasons_to_text(d.reasons));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_discovered_strategy(ms[i++ % ms.size()], {}, catalog);
    benchmark::DoNotOptimize(d);
  }
  set_rate(state);
}
BENCHMARK(BM_DecodeProtobuf);

// The DOM path (nlohmann SAX into a strict DOM, then the contract checks): what a message the fast path declines
// costs, and what every message cost before the fast path.
void BM_DecodeDom(benchmark::State& state) {
  const auto& ms = messages();
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_strategy_dom(ms[i++ % ms.size()]);
    benchmark::DoNotOptimize(d);
  }
  set_rate(state, average_message_bytes());
}
BENCHMARK(BM_DecodeDom);

// Reference floors of the JSON library alone, to read BM_Decode against: nlohmann's own DOM parser, and its
// lexer/parser feeding a SAX handler that keeps nothing.
void BM_ReferenceNlohmannDomParse(benchmark::State& state) {
  const auto& ms = messages();
  std::size_t i = 0;
  for (auto _ : state) {
    auto doc = nlohmann::json::parse(ms[i++ % ms.size()]);
    benchmark::DoNotOptimize(doc);
  }
  set_rate(state, average_message_bytes());
}
BENCHMARK(BM_ReferenceNlohmannDomParse);

struct NullSax {
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(json::string_t&) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

void BM_ReferenceNlohmannSaxOnly(benchmark::State& state) {
  const auto& ms = messages();
  NullSax sax;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& m = ms[i++ % ms.size()];
    bool ok = nlohmann::json::sax_parse(m.begin(), m.end(), &sax);
    benchmark::DoNotOptimize(ok);
  }
  set_rate(state, average_message_bytes());
}
BENCHMARK(BM_ReferenceNlohmannSaxOnly);

// The same messages carrying their strategy_hash: decoding without hashing.
void BM_DecodeWithGivenHash(benchmark::State& state) {
  std::vector<std::string> ms;
  for (const auto& m : messages()) {
    ms.push_back(m.substr(0, m.size() - 1) + R"(, "strategy_hash": ")" + std::string(64, 'a') + "\"}");
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_strategy(ms[i++ % ms.size()]);
    benchmark::DoNotOptimize(d);
  }
  set_rate(state, average_message_bytes() + 86);
}
BENCHMARK(BM_DecodeWithGivenHash);

void BM_CanonicalHash(benchmark::State& state) {
  const auto records = decoded_records();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& r = records[i++ % records.size()];
    auto h = canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
    benchmark::DoNotOptimize(h);
  }
  set_rate(state);
}
BENCHMARK(BM_CanonicalHash);

void BM_CanonicalJson(benchmark::State& state) {
  const auto records = decoded_records();
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = canonical_json(records[i++ % records.size()].parameters);
    benchmark::DoNotOptimize(s);
  }
  set_rate(state);
}
BENCHMARK(BM_CanonicalJson);

void BM_Sha256(benchmark::State& state) {
  const std::string text(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    auto h = sha256_hex(text);
    benchmark::DoNotOptimize(h);
  }
  set_rate(state, text.size());
}
BENCHMARK(BM_Sha256)->Arg(128);

void BM_Validate(benchmark::State& state) {
  const auto records = decoded_records();
  const Validator validator;
  const auto now = now_us();
  std::size_t i = 0;
  for (auto _ : state) {
    auto reasons = validator.validate(records[i++ % records.size()], now);
    benchmark::DoNotOptimize(reasons);
  }
  set_rate(state);
}
BENCHMARK(BM_Validate);

void BM_EncodeCopyRow(benchmark::State& state) {
  const auto records = decoded_records();
  std::string line;
  std::size_t i = 0;
  for (auto _ : state) {
    line.clear();
    encode_copy_row(line, records[i++ % records.size()]);
    benchmark::DoNotOptimize(line.data());
  }
  set_rate(state, line.size());
}
BENCHMARK(BM_EncodeCopyRow);

// fold_by_hash over a batch of 1,000 records with 10% repeats, per record.
void BM_FoldByHash(benchmark::State& state) {
  const auto records = decoded_records();
  std::vector<BatchEntry> entries;
  for (int i = 0; i < 1000; ++i) {
    BatchEntry e;
    e.record = records[static_cast<std::size_t>(i) % records.size()];
    e.record.strategy_hash = sha256_hex(std::to_string(i % 10 == 9 ? i - 5 : i));
    entries.push_back(std::move(e));
  }
  for (auto _ : state) {
    auto rows = fold_by_hash(entries);
    benchmark::DoNotOptimize(rows);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * entries.size()));
}
BENCHMARK(BM_FoldByHash);

// The whole per-message path of strategy-bench-tool cpu: decode (with hash) + validate + encode.
void BM_FullPath(benchmark::State& state) {
  const auto& ms = messages();
  const Validator validator;
  const auto now = now_us();
  std::string line;
  std::size_t i = 0;
  for (auto _ : state) {
    auto d = decode_strategy(ms[i++ % ms.size()]);
    if (d.ok() && validator.validate(d.record, now).empty()) {
      line.clear();
      encode_copy_row(line, d.record);
    }
    benchmark::DoNotOptimize(line.data());
  }
  set_rate(state, average_message_bytes());
}
BENCHMARK(BM_FullPath);

}  // namespace

BENCHMARK_MAIN();
