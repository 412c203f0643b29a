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

#include "strategy_consumer/copy_encoder.hpp"

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
  return r;
}

std::map<std::string, std::string> by_column(const std::string& row) {
  const auto names = split(std::string(kCopyColumns), ", ");
  const auto values = split(row, "\t");
  EXPECT_EQ(names.size(), 9u);
  EXPECT_EQ(values.size(), names.size()) << row;
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) out[names[i]] = values[i];
  return out;
}

TEST(EncodeCopyRow, NineFieldsInColumnOrder) {
  EXPECT_EQ(std::string(kCopyColumns),
            "symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol, "
            "discovery_start_time, discovery_end_time, performance_metrics");
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
            "2024-01-16 00:00:00.123456\t{\"sharpe_ratio\":1.8,\"total_trades\":120}");
}

TEST(EncodeCopyRow, AbsentOptionalsAreNull) {
  StrategyRecord r = full_record();
  r.discovery_symbol.reset();
  r.discovery_start_us.reset();
  r.discovery_end_us.reset();
  r.performance_metrics.reset();
  std::string row;
  encode_copy_row(row, r);
  const auto cols = by_column(row);
  for (const char* name : {"discovery_symbol", "discovery_start_time", "discovery_end_time", "performance_metrics"}) {
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
