// COPY text-format rows (copy_encoder.hpp): any string arrives byte for byte, NULL is \N and only NULL.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(sep, start);
    if (at == std::string::npos) {
      out.push_back(text.substr(start));
      return out;
    }
    out.push_back(text.substr(start, at - start));
    start = at + sep.size();
  }
}

// The inverse of COPY text escaping as PostgreSQL reads it (for the sequences the encoder writes).
std::string unescape_copy(const std::string& field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\' || i + 1 == field.size()) {
      out += field[i];
      continue;
    }
    const char c = field[++i];
    switch (c) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      default: out += c; break;  // "\\" -> "\"
    }
  }
  return out;
}

std::string field(std::string_view text) {
  std::string out;
  append_copy_field(out, text);
  return out;
}

TEST(AppendCopyField, EscapesExactlyBackslashTabNewlineAndCarriageReturn) {
  struct Case {
    const char* name;
    std::string input;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"empty", "", ""},
      {"plain", "BTCUSDT", "BTCUSDT"},
      {"backslash", "a\\b", "a\\\\b"},
      {"tab", "a\tb", "a\\tb"},
      {"newline", "a\nb", "a\\nb"},
      {"carriage return", "a\rb", "a\\rb"},
      {"only specials", "\\\t\n\r", "\\\\\\t\\n\\r"},
      {"repeated", "\t\t", "\\t\\t"},
      {"text that reads as NULL stays text", "\\N", "\\\\N"},
      {"quotes verbatim", "\"it's\"", "\"it's\""},
      {"non-ASCII verbatim", "€ 日本 ü", "€ 日本 ü"},
      {"JSON verbatim apart from its backslashes", R"({"a":"x\"y"})", R"({"a":"x\\"y"})"},
      {"other control characters verbatim", "\x01\x08\x0b\x0c\x1b", "\x01\x08\x0b\x0c\x1b"},
      {"a period alone", ".", "."},
      {"\\. is escaped like any backslash", "\\.", "\\\\."},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(field(c.input), c.expected) << c.name;
    EXPECT_EQ(unescape_copy(field(c.input)), c.input) << c.name << ": reads back byte for byte";
  }
}

TEST(AppendCopyField, AppendsWithoutClearing) {
  std::string out = "head\t";
  append_copy_field(out, "a\tb");
  EXPECT_EQ(out, "head\ta\\tb");
}

TEST(AppendCopyField, NoRawSeparatorSurvives) {
  // Every byte value, so a field never contains a raw tab, newline or CR that would split the row.
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  const std::string out = field(all);
  EXPECT_EQ(out.find('\t'), std::string::npos);
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.size(), all.size() + 4) << "four bytes escaped, one extra byte each";
  EXPECT_EQ(unescape_copy(out), all);
}

StrategyRecord full_record() {
  StrategyRecord r;
  r.symbol = "BTCUSDT";
  r.strategy_type = "SMA_RSI";
  r.parameters = json::parse(R"({"fast":10,"slow":30.5})");
  r.score = 0.8523;
  r.performance_metrics = json::parse(R"({"sharpe_ratio":1.8,"total_trades":120})");
  r.discovery_symbol = "ETHUSDT";
  r.discovery_start_us = 1705307400LL * 1000000;           // 2024-01-15 08:30:00 UTC
  r.discovery_end_us = 1705363200LL * 1000000 + 123456;     // 2024-01-16 00:00:00.123456 UTC
  r.strategy_hash = "abc123";
  r.message_timestamp_ms = 1705307400123LL;  // 2024-01-15 08:30:00.123 UTC
  return r;
}

std::map<std::string, std::string> by_column(const std::string& row) {
  const auto names = split(std::string(kCopyColumns), ", ");
  const auto values = split(row, "\t");
  EXPECT_EQ(names.size(), 10u);
  EXPECT_EQ(values.size(), names.size()) << row;
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) out[names[i]] = values[i];
  return out;
}

TEST(EncodeCopyRow, TenFieldsInColumnOrder) {
  EXPECT_EQ(std::string(kCopyColumns),
            "symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol, "
            "discovery_start_time, discovery_end_time, performance_metrics, message_timestamp");
  std::string row;
  encode_copy_row(row, full_record());
  EXPECT_EQ(row.find('\n'), std::string::npos) << "no trailing newline";
  const auto cols = by_column(row);
  EXPECT_EQ(cols.at("symbol"), "BTCUSDT");
  EXPECT_EQ(cols.at("strategy_type"), "SMA_RSI");
  EXPECT_EQ(json::parse(cols.at("parameters")), json::parse(R"({"fast":10,"slow":30.5})"));
  EXPECT_EQ(cols.at("current_score"), "0.8523");
  EXPECT_EQ(cols.at("strategy_hash"), "abc123");
  EXPECT_EQ(cols.at("discovery_symbol"), "ETHUSDT");
  EXPECT_EQ(cols.at("discovery_start_time"), "2024-01-15 08:30:00");
  EXPECT_EQ(cols.at("discovery_end_time"), "2024-01-16 00:00:00.123456");
  EXPECT_EQ(json::parse(cols.at("performance_metrics")), json::parse(R"({"sharpe_ratio":1.8,"total_trades":120})"));
  // The whole line, pinned.
  EXPECT_EQ(row,
            "BTCUSDT\tSMA_RSI\t{\"fast\":10,\"slow\":30.5}\t0.8523\tabc123\tETHUSDT\t2024-01-15 08:30:00\t"
            "2024-01-16 00:00:00.123456\t{\"sharpe_ratio\":1.8,\"total_trades\":120}\t2024-01-15 08:30:00.123000");
}

TEST(EncodeCopyRow, AbsentOptionalsAreNull) {
  StrategyRecord r = full_record();
  r.discovery_symbol.reset();
  r.discovery_start_us.reset();
  r.discovery_end_us.reset();
  r.performance_metrics.reset();
  r.message_timestamp_ms.reset();
  std::string row;
  encode_copy_row(row, r);
  const auto cols = by_column(row);
  for (const char* name : {"discovery_symbol", "discovery_start_time", "discovery_end_time", "performance_metrics",
                           "message_timestamp"}) {
    EXPECT_EQ(cols.at(name), "\\N") << name;
  }
  EXPECT_EQ(cols.at("symbol"), "BTCUSDT");
  EXPECT_EQ(cols.at("strategy_hash"), "abc123");
}

TEST(EncodeCopyRow, PreSeventiesTimestampsAndEmptyStrings) {
  StrategyRecord r = full_record();
  r.discovery_start_us = -1;  // 1969-12-31 23:59:59.999999 UTC
  r.discovery_symbol = "";    // an empty string is not NULL
  std::string row;
  encode_copy_row(row, r);
  const auto cols = by_column(row);
  EXPECT_EQ(cols.at("discovery_start_time"), "1969-12-31 23:59:59.999999");
  EXPECT_EQ(cols.at("discovery_symbol"), "");
}

TEST(EncodeCopyRow, StringsWithSeparatorsStayInTheirField) {
  StrategyRecord r = full_record();
  r.symbol = "BTC\tUSDT\n";
  r.strategy_type = "\\N";  // text, not NULL
  r.discovery_symbol = "a\\b\r";
  r.strategy_hash = "h\th";
  r.parameters = json::parse(R"({"note":"tab\there \"q\" back\\slash é"})");
  r.performance_metrics = json::parse(R"({"label":"line1\nline2"})");
  std::string row;
  encode_copy_row(row, r);
  EXPECT_EQ(row.find('\n'), std::string::npos);
  const auto cols = by_column(row);
  EXPECT_EQ(unescape_copy(cols.at("symbol")), "BTC\tUSDT\n");
  EXPECT_EQ(cols.at("strategy_type"), "\\\\N");
  EXPECT_EQ(unescape_copy(cols.at("strategy_type")), "\\N");
  EXPECT_EQ(unescape_copy(cols.at("discovery_symbol")), "a\\b\r");
  EXPECT_EQ(unescape_copy(cols.at("strategy_hash")), "h\th");
  EXPECT_EQ(json::parse(unescape_copy(cols.at("parameters"))), r.parameters);
  EXPECT_EQ(json::parse(unescape_copy(cols.at("performance_metrics"))), *r.performance_metrics);
}

TEST(EncodeCopyRow, ScoreUsesFormatDouble) {
  for (double score : {0.1, -2.5, 1e-300, 123456789.123, 0.0, 7.0}) {
    StrategyRecord r = full_record();
    r.score = score;
    std::string row;
    encode_copy_row(row, r);
    EXPECT_EQ(by_column(row).at("current_score"), format_double(score));
  }
}

TEST(EncodeCopyRow, AppendsToExistingText) {
  std::string out = "previous line\n";
  encode_copy_row(out, full_record());
  EXPECT_EQ(out.rfind("previous line\nBTCUSDT\t", 0), 0u) << out;
}

// encode_copy_row and append_json write numbers and JSON straight into the row; these are the spellings they
// replaced (json::dump, then COPY escaping), compared on values of every kind.
nlohmann::json random_json(std::mt19937_64& rng, int depth) {
  static const std::vector<double> kDoubles = {0.0, -0.0, 1.0, 0.5, 1e-5, 1e15, 1e16, 1e21, 1e300, 123.456, 0.1,
                                               72.35, 9007199254740992.0, 1.7976931348623157e308, 5e-324};
  static const std::vector<std::string> kStrings = {"", "BTC/USD", "a\"b", "back\\slash", "tab\there", "ctl\x01\x1f",
                                                    "del\x7f", "€uro", "newline\n", "cr\r", "/slash", "\\N"};
  switch (rng() % (depth > 3 ? 7 : 9)) {
    case 0: return json(nullptr);
    case 1: return json(rng() % 2 == 0);
    case 2: return json(static_cast<std::int64_t>(rng()) >> (rng() % 64));
    case 3: return json(static_cast<std::uint64_t>(rng()) >> (rng() % 64));
    case 4: return json(kDoubles[rng() % kDoubles.size()] * ((rng() % 2) ? 1 : -1));
    case 5: return json(std::ldexp(static_cast<double>(rng() % 1000000), static_cast<int>(rng() % 100) - 50));
    case 6: return json(kStrings[rng() % kStrings.size()]);
    case 7: {
      json a = json::array();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) a.push_back(random_json(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = static_cast<int>(rng() % 6); i > 0; --i) {
        o[kStrings[rng() % kStrings.size()] + std::to_string(rng() % 3)] = random_json(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(AppendJson, SameBytesAsDump) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 5000; ++i) {
    const json v = random_json(rng, 0);
    std::string out = "prefix";
    append_json(out, v);
    ASSERT_EQ(out, "prefix" + v.dump());
  }
  std::string out = "kept";
  EXPECT_THROW(append_json(out, json(std::string("\xff"))), json::type_error) << "invalid UTF-8, as dump() refuses it";
}

std::string reference_row(const StrategyRecord& r) {
  std::string out;
  auto null_or = [&](bool has, auto&& write) {
    if (has) write();
    else out += "\\N";
  };
  append_copy_field(out, r.symbol);
  out += '\t';
  append_copy_field(out, r.strategy_type);
  out += '\t';
  append_copy_field(out, r.parameters.dump());
  out += '\t';
  out += format_double(r.score);
  out += '\t';
  append_copy_field(out, r.strategy_hash);
  out += '\t';
  null_or(r.discovery_symbol.has_value(), [&] { append_copy_field(out, *r.discovery_symbol); });
  out += '\t';
  null_or(r.discovery_start_us.has_value(), [&] { out += format_timestamp_us(*r.discovery_start_us); });
  out += '\t';
  null_or(r.discovery_end_us.has_value(), [&] { out += format_timestamp_us(*r.discovery_end_us); });
  out += '\t';
  null_or(r.performance_metrics.has_value(), [&] { append_copy_field(out, r.performance_metrics->dump()); });
  out += '\t';
  null_or(r.message_timestamp_ms.has_value(), [&] { out += format_timestamp_us(*r.message_timestamp_ms * 1000); });
  return out;
}

TEST(EncodeCopyRow, SameBytesAsDumpThenEscape) {
  std::mt19937_64 rng(5);
  static const std::vector<std::string> kStrings = {"", "BTCUSDT", "a\tb", "c\\d", "e\nf\r", "€", "\\N"};
  for (int i = 0; i < 3000; ++i) {
    StrategyRecord r;
    r.symbol = kStrings[rng() % kStrings.size()];
    r.strategy_type = kStrings[rng() % kStrings.size()];
    r.parameters = json::object();
    for (int k = static_cast<int>(rng() % 5); k > 0; --k) r.parameters[kStrings[rng() % kStrings.size()]] = random_json(rng, 1);
    r.score = std::ldexp(static_cast<double>(static_cast<std::int64_t>(rng() % 2000000) - 1000000), static_cast<int>(rng() % 60) - 40);
    r.strategy_hash = kStrings[rng() % kStrings.size()] + "0123456789abcdef";
    if (rng() % 2) r.discovery_symbol = kStrings[rng() % kStrings.size()];
    if (rng() % 2) r.discovery_start_us = static_cast<std::int64_t>(rng() >> 12) - (1LL << 51);
    if (rng() % 2) r.discovery_end_us = static_cast<std::int64_t>(rng() % 4000000000000000ULL);
    if (rng() % 2) r.performance_metrics = random_json(rng, 0);
    if (rng() % 2) r.message_timestamp_ms = static_cast<std::int64_t>(rng() % 4000000000000ULL);
    std::string row = "previous row\n";
    encode_copy_row(row, r);
    ASSERT_EQ(row, "previous row\n" + reference_row(r)) << r.parameters.dump();
  }
}

TEST(FormatDouble, ShortestTextThatRoundTrips) {
  struct Case {
    double value;
    const char* text;
  };
  const std::vector<Case> cases = {
      {0.1, "0.1"}, {-2.5, "-2.5"}, {1e-300, "1e-300"}, {123456789.123, "123456789.123"},
      {0.0, "0"},   {1.0, "1"},     {0.8523, "0.8523"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_double(c.value), c.text);
    EXPECT_EQ(std::strtod(format_double(c.value).c_str(), nullptr), c.value) << c.text;
  }
}

TEST(FormatDouble, RoundTripsExtremesAndRandomBitPatterns) {
  std::vector<double> values = {std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::min(), std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::epsilon(), 1.0 / 3.0, -1e308, 9007199254740993.0};
  std::mt19937_64 rng(20240115);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) values.push_back(d);
  }
  for (double v : values) {
    const std::string text = format_double(v);
    char* end = nullptr;
    const double back = std::strtod(text.c_str(), &end);
    EXPECT_EQ(*end, '\0') << text;
    EXPECT_EQ(back, v) << text;
    EXPECT_LE(text.size(), 24u) << text;
  }
}

}  // namespace
}  // namespace strategy_consumer
