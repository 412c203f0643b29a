// RFC 3339 in, UTC microseconds inside, TIMESTAMP text out (timestamp.hpp).
// Epoch seconds below come from `date -u -d <utc time> +%s`.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <optional>
#include <string>
#include <vector>

#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

constexpr std::int64_t kUs = 1000000;
constexpr std::int64_t k20240115T0830Z = 1705307400;  // 2024-01-15T08:30:00Z

TEST(ParseRfc3339, AcceptedForms) {
  struct Case {
    const char* text;
    std::int64_t expected_us;
  };
  const std::vector<Case> cases = {
      {"2024-01-15T08:30:00Z", k20240115T0830Z * kUs},
      {"2024-01-15T08:30:00z", k20240115T0830Z * kUs},
      {"2024-01-15t08:30:00Z", k20240115T0830Z * kUs},
      {"2024-01-15 08:30:00Z", k20240115T0830Z * kUs},  // RFC 3339 allows a space
      {"2024-01-15T10:30:00+02:00", k20240115T0830Z * kUs},
      {"2024-01-15T03:00:00-05:30", k20240115T0830Z * kUs},
      {"2024-01-15T08:30:00+00:00", k20240115T0830Z * kUs},
      {"2024-01-15T08:30:00-00:00", k20240115T0830Z * kUs},
      {"2024-01-15T23:45:00+15:15", k20240115T0830Z * kUs},
      {"2024-01-14T19:00:00-13:30", k20240115T0830Z * kUs},
      // Fractions: 3, 6 and 9 digits (beyond microseconds truncated, not rounded), and 1 digit.
      {"2024-01-15T08:30:00.123Z", k20240115T0830Z * kUs + 123000},
      {"2024-01-15T08:30:00.123456Z", k20240115T0830Z * kUs + 123456},
      {"2024-01-15T08:30:00.123456789Z", k20240115T0830Z * kUs + 123456},
      {"2024-01-15T08:30:00.999999999Z", k20240115T0830Z * kUs + 999999},
      {"2024-01-15T08:30:00.5Z", k20240115T0830Z * kUs + 500000},
      {"2024-01-15T08:30:00.000001Z", k20240115T0830Z * kUs + 1},
      {"2024-01-15T10:30:00.250+02:00", k20240115T0830Z * kUs + 250000},
      // Across a day, a month and a year boundary because of the offset.
      {"2024-01-01T01:00:00+02:00", (1704067200 - 3600) * kUs},  // 2023-12-31T23:00:00Z
      // Leap days.
      {"2024-02-29T00:00:00Z", 1709164800 * kUs},
      {"2000-02-29T12:00:00Z", 951825600 * kUs},
      // Before 1970.
      {"1970-01-01T00:00:00Z", 0},
      {"1969-07-20T20:17:40Z", -14182940 * kUs},
      {"1969-12-31T23:59:59.5Z", -500000},
      {"1900-01-01T00:00:00Z", -2208988800LL * kUs},
      {"0001-01-01T00:00:00Z", -62135596800LL * kUs},
      // A leap second is folded into the last microsecond of its minute.
      {"2016-12-31T23:59:60Z", 1483228799 * kUs + 999999},
  };
  for (const auto& c : cases) {
    const auto got = parse_rfc3339_us(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_EQ(*got, c.expected_us) << c.text;
  }
}

TEST(ParseRfc3339, Rejected) {
  const std::vector<const char*> cases = {
      "",
      "garbage",
      "2024-01-15",
      "2024-01-15T10:30:00",        // no zone: no UTC meaning
      "2024-01-15T10:30:00.123456",  // no zone, with a fraction
      "2024-13-01T00:00:00Z",        // month 13
      "2024-00-10T00:00:00Z",        // month 0
      "2024-01-00T00:00:00Z",        // day 0
      "2024-01-32T00:00:00Z",
      "2024-04-31T00:00:00Z",        // April has 30 days
      "2024-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",        // not a leap year
      "1900-02-29T00:00:00Z",        // century, not a leap year
      "2024-01-15T24:00:00Z",
      "2024-01-15T10:60:00Z",
      "2024-01-15T10:30:61Z",
      "2024-01-15T10:30:00Zjunk",    // trailing characters
      "2024-01-15T10:30:00Z ",
      "2024-01-15T10:30:00+02:00x",
      "2024-01-15T10:30:00+02:00Z",
      "2024-01-15T10:30:00+0200",    // RFC 3339 needs the colon
      "2024-01-15T10:30:00+02",
      "2024-01-15T10:30:00+24:00",
      "2024-01-15T10:30:00+02:60",
      "2024-01-15T10:30:00.Z",       // a dot with no digits
      "2024-01-15T10:30:00,5Z",
      "2024-01-15X10:30:00Z",
      "2024/01/15T10:30:00Z",
      "2024-1-15T10:30:00Z",
      "24-01-15T10:30:00Z",
      "2024-01-15T10:30Z",
      " 2024-01-15T10:30:00Z",
      "2024-01-15T1a:30:00Z",
      "+2024-01-15T10:30:00Z",
      "2024-01-15T10:30:00UTC",
  };
  for (const char* text : cases) {
    const auto got = parse_rfc3339_us(text);
    EXPECT_FALSE(got.has_value()) << "'" << text << "' parsed as " << got.value_or(0);
  }
}

TEST(FormatTimestamp, KnownValues) {
  struct Case {
    std::int64_t us;
    const char* text;
  };
  const std::vector<Case> cases = {
      {0, "1970-01-01 00:00:00"},
      {1, "1970-01-01 00:00:00.000001"},
      {-1, "1969-12-31 23:59:59.999999"},
      {-kUs, "1969-12-31 23:59:59"},
      {-500000, "1969-12-31 23:59:59.500000"},
      {k20240115T0830Z * kUs, "2024-01-15 08:30:00"},
      {k20240115T0830Z * kUs + 123456, "2024-01-15 08:30:00.123456"},
      {k20240115T0830Z * kUs + 120000, "2024-01-15 08:30:00.120000"},
      {1709164800 * kUs, "2024-02-29 00:00:00"},
      {-14182940 * kUs, "1969-07-20 20:17:40"},
      {-2208988800LL * kUs, "1900-01-01 00:00:00"},
      {-62135596800LL * kUs, "0001-01-01 00:00:00"},
      {253402300799LL * kUs + 999999, "9999-12-31 23:59:59.999999"},
  };
  for (const auto& c : cases) EXPECT_EQ(format_timestamp_us(c.us), c.text) << c.us;
}

// format -> (as RFC 3339 UTC) -> parse gives back the same microseconds.
TEST(FormatTimestamp, RoundTrips) {
  std::vector<std::int64_t> values = {0,
                                      1,
                                      -1,
                                      999999,
                                      -999999,
                                      -1000001,
                                      k20240115T0830Z * kUs + 123456,
                                      -14182940 * kUs + 7,
                                      -2208988800LL * kUs - 1,
                                      -62135596800LL * kUs,
                                      253402300799LL * kUs + 999999};
  // A sweep across 1600..2400 in uneven steps, covering leap years, month ends and negative values.
  for (std::int64_t us = -11676096000LL * kUs; us < 13569465600LL * kUs; us += 86399LL * kUs * 37 + 123457) {
    values.push_back(us);
  }
  for (std::int64_t us : values) {
    const std::string text = format_timestamp_us(us);
    ASSERT_GE(text.size(), 19u) << us;
    std::string rfc = text;
    rfc[10] = 'T';
    rfc += 'Z';
    const auto back = parse_rfc3339_us(rfc);
    ASSERT_TRUE(back.has_value()) << us << " formatted as " << text;
    EXPECT_EQ(*back, us) << text;
    // A zero fraction is left out; a non-zero one always has six digits.
    if (us % kUs == 0) EXPECT_EQ(text.size(), 19u) << text;
    else EXPECT_EQ(text.size(), 26u) << text;
  }
}

// format_timestamp_us writes its digits by hand; this is the printf spelling it replaced, for any time at all.
std::string printf_timestamp(std::int64_t us) {
  std::int64_t secs = us / 1000000;
  std::int64_t frac = us % 1000000;
  if (frac < 0) frac += 1000000, secs -= 1;
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) rem += 86400, days -= 1;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(y + (m <= 2)),
                        m, d, static_cast<long long>(rem / 3600), static_cast<long long>(rem % 3600 / 60),
                        static_cast<long long>(rem % 60));
  if (frac != 0) std::snprintf(buf + n, sizeof buf - n, ".%06lld", static_cast<long long>(frac));
  return buf;
}

TEST(FormatTimestamp, SameTextAsPrintf) {
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> values = {0, -1, 1, INT64_MIN / 2, INT64_MAX / 2, -62167219200LL * kUs,
                                      -62167219200LL * kUs - 1, 253402300800LL * kUs, 253402300800LL * kUs - 1};
  for (int i = 0; i < 20000; ++i) values.push_back(static_cast<std::int64_t>(rng()) >> (rng() % 20));
  for (int i = 0; i < 20000; ++i) values.push_back(static_cast<std::int64_t>(rng() % (300000000000ULL * kUs)) - 60000000000LL * kUs);
  for (std::int64_t us : values) {
    ASSERT_EQ(format_timestamp_us(us), printf_timestamp(us)) << us;
    std::string appended = "x";
    append_timestamp_us(appended, us);
    ASSERT_EQ(appended, "x" + printf_timestamp(us)) << us;
  }
}

TEST(NowUs, IsMicrosecondsSinceEpoch) {
  const std::int64_t now = now_us();
  EXPECT_GT(now, 1704067200LL * kUs);   // after 2024-01-01
  EXPECT_LT(now, 4102444800LL * kUs);   // before 2100-01-01
  EXPECT_LE(now, now_us());
}

}  // namespace
}  // namespace strategy_consumer
