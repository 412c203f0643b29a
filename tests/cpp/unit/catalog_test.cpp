// Catalog: the compiled-in catalog (data/strategy_catalog.tsv), the file format's errors, and the overrides
// --strategy_catalog FILE brings.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {
namespace {

const char* const kHeader = "strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\tfamily\n";

// The repository's data file, found from this source file: tests/cpp/unit/ -> data/.
std::string read_repository_catalog() {
  std::string here = __FILE__;
  const std::string root = here.substr(0, here.rfind("/tests/cpp/unit/"));
  std::ifstream in(root + "/data/strategy_catalog.tsv", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The what() of the ConfigError that parsing `text` throws; a failure when it throws nothing or something else.
std::string parse_error(const std::string& text, const std::string& source = "my.tsv") {
  try {
    Catalog::parse(text, source);
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected ConfigError, parsing succeeded:\n" << text;
  return {};
}

// A temporary file removed when the object goes.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char path[] = "/tmp/strategy_consumer_catalog_test_XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    if (fd >= 0) close(fd);
    path_ = path;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(CatalogBuiltin, HasTheSixtyTypesOfTheDiscoveryPipeline) {
  const auto catalog = Catalog::builtin();
  ASSERT_NE(catalog, nullptr);
  EXPECT_EQ(catalog->types().size(), 60u);
  std::size_t parameters = 0;
  for (const auto& [name, type] : catalog->types()) parameters += type.parameters.size();
  // 127 data rows in data/strategy_catalog.tsv, one of them RAINBOW_OSCILLATOR's row without a parameter.
  EXPECT_EQ(parameters, 126u);
}

TEST(CatalogBuiltin, IsOneSharedInstance) { EXPECT_EQ(Catalog::builtin().get(), Catalog::builtin().get()); }

TEST(CatalogBuiltin, CompiledInTextIsTheDataFile) {
  const std::string file = read_repository_catalog();
  ASSERT_FALSE(file.empty()) << "cannot read data/strategy_catalog.tsv next to " << __FILE__;
  EXPECT_EQ(std::string(builtin_catalog_tsv()), file);
}

TEST(CatalogBuiltin, RainbowOscillatorHasNoParameters) {
  const StrategyTypeSpec* rainbow = Catalog::builtin()->find("RAINBOW_OSCILLATOR");
  ASSERT_NE(rainbow, nullptr);
  EXPECT_TRUE(rainbow->parameters.empty());
  EXPECT_EQ(rainbow->parameter_message, "RainbowOscillatorParameters");
  EXPECT_EQ(rainbow->family, "trend");
}

TEST(CatalogBuiltin, EveryTypeIsConsistent) {
  const std::set<std::string> families{"trend", "momentum", "volatility", "volume", "price_action"};
  for (const auto& [name, type] : Catalog::builtin()->types()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(type.name, name);
    EXPECT_FALSE(type.parameter_message.empty());
    EXPECT_TRUE(families.count(type.family)) << "family '" << type.family << "'";
    EXPECT_EQ(Catalog::builtin()->find(name), &type);
    if (name != "RAINBOW_OSCILLATOR") EXPECT_FALSE(type.parameters.empty());
    for (const auto& p : type.parameters) {
      SCOPED_TRACE(p.name);
      EXPECT_FALSE(p.name.empty());
      EXPECT_LT(p.min, p.max);
      EXPECT_GE(p.default_value, p.min);
      EXPECT_LE(p.default_value, p.max);
      EXPECT_EQ(type.find(p.name), &p);
    }
  }
}

TEST(CatalogBuiltin, RowsAreReadColumnByColumn) {
  const auto catalog = Catalog::builtin();
  const StrategyTypeSpec* adx = catalog->find("ADX_DMI");
  ASSERT_NE(adx, nullptr);
  EXPECT_EQ(adx->parameter_message, "AdxDmiParameters");
  EXPECT_EQ(adx->family, "trend");
  ASSERT_EQ(adx->parameters.size(), 2u);
  EXPECT_EQ(adx->parameters[0].name, "adxPeriod");  // file order is kept
  EXPECT_EQ(adx->parameters[1].name, "diPeriod");
  EXPECT_EQ(adx->parameters[0].type, ParameterType::integer);
  EXPECT_EQ(adx->parameters[0].min, 10);
  EXPECT_EQ(adx->parameters[0].max, 30);
  EXPECT_EQ(adx->parameters[0].default_value, 14);

  const StrategyTypeSpec* sar = catalog->find("PARABOLIC_SAR");
  ASSERT_NE(sar, nullptr);
  const ParameterSpec* max = sar->find("accelerationFactorMax");
  ASSERT_NE(max, nullptr);
  EXPECT_EQ(max->type, ParameterType::real);
  EXPECT_DOUBLE_EQ(max->min, 0.15);
  EXPECT_DOUBLE_EQ(max->max, 0.25);
  EXPECT_DOUBLE_EQ(max->default_value, 0.2);

  const StrategyTypeSpec* macd = catalog->find("MACD_CROSSOVER");
  ASSERT_NE(macd, nullptr);
  EXPECT_EQ(macd->family, "trend");
  EXPECT_EQ(catalog->find("SMA_RSI")->family, "momentum");
  EXPECT_EQ(catalog->find("ATR_CCI")->family, "volatility");
  EXPECT_EQ(catalog->find("OBV_EMA")->family, "volume");
  EXPECT_EQ(catalog->find("PIVOT")->family, "price_action");
}

TEST(CatalogBuiltin, FindIsExactAndCaseSensitive) {
  const auto catalog = Catalog::builtin();
  EXPECT_EQ(catalog->find("NOT_A_TYPE"), nullptr);
  EXPECT_EQ(catalog->find("macd_crossover"), nullptr);
  EXPECT_EQ(catalog->find(""), nullptr);
  EXPECT_EQ(catalog->find("ADX_DMI")->find("adxperiod"), nullptr);
}

TEST(CatalogParse, ReadsCommentsBlankLinesCrLfAndAnOptionalFamily) {
  const std::string text = std::string("# a comment before the header\n\n") +
                           "strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\r\n"
                           "# a comment\n"
                           "MY_TYPE\tMyParameters\tperiod\tINTEGER\t5\t50\t20\r\n"
                           "\n"
                           "MY_TYPE\tMyParameters\tfactor\tDOUBLE\t0.5\t2.5\t1.5\r\n"
                           "EMPTY_TYPE\tEmptyParameters\t\t\t\t\t\tvolume\n";
  const Catalog c = Catalog::parse(text, "mine.tsv");
  ASSERT_EQ(c.types().size(), 2u);
  const StrategyTypeSpec* t = c.find("MY_TYPE");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->family, "");
  ASSERT_EQ(t->parameters.size(), 2u);
  EXPECT_EQ(t->parameters[0].name, "period");
  EXPECT_EQ(t->parameters[0].type, ParameterType::integer);
  EXPECT_EQ(t->parameters[1].name, "factor");
  EXPECT_EQ(t->parameters[1].type, ParameterType::real);
  EXPECT_DOUBLE_EQ(t->parameters[1].min, 0.5);
  EXPECT_DOUBLE_EQ(t->parameters[1].max, 2.5);
  EXPECT_DOUBLE_EQ(t->parameters[1].default_value, 1.5);
  const StrategyTypeSpec* e = c.find("EMPTY_TYPE");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->parameters.empty());
  EXPECT_EQ(e->family, "volume");
}

TEST(CatalogParse, HeaderAloneIsAnEmptyCatalog) {
  EXPECT_TRUE(Catalog::parse(kHeader, "h.tsv").types().empty());
}

TEST(CatalogParse, MissingHeaderNamesSourceAndLine) {
  const std::string msg = parse_error("# comment\nMY_TYPE\tMyParameters\tperiod\tINTEGER\t5\t50\t20\n");
  EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("header"), std::string::npos) << msg;
}

TEST(CatalogParse, WrongHeaderColumnIsAnError) {
  const std::string msg = parse_error("strategy_type\tparameter_message\tparameter\tkind\tmin\tmax\tdefault\n");
  EXPECT_NE(msg.find("my.tsv:1"), std::string::npos) << msg;
}

TEST(CatalogParse, EmptyTextIsAnError) {
  EXPECT_NE(parse_error("").find("my.tsv"), std::string::npos);
  EXPECT_NE(parse_error("# only a comment\n\n").find("my.tsv"), std::string::npos);
}

TEST(CatalogParse, SixColumnsNamesSourceAndLine) {
  const std::string msg = parse_error(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\n");
  EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("6"), std::string::npos) << "says how many columns it found: " << msg;
}

TEST(CatalogParse, NineColumnsIsAnError) {
  const std::string msg = parse_error(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\t3\ttrend\textra\n");
  EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
}

TEST(CatalogParse, TypeFloatNamesSourceAndLine) {
  const std::string msg = parse_error(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\t3\n" +
                                      "A\tAParameters\tq\tFLOAT\t1\t5\t3\n");
  EXPECT_NE(msg.find("my.tsv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("FLOAT"), std::string::npos) << msg;
}

TEST(CatalogParse, MinGreaterThanMaxNamesSourceAndLine) {
  const std::string msg = parse_error(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t50\t5\t20\n");
  EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("min"), std::string::npos) << msg;
}

TEST(CatalogParse, DefaultOutsideRangeNamesSourceAndLine) {
  for (const char* row : {"A\tAParameters\tp\tINTEGER\t5\t50\t51\n", "A\tAParameters\tp\tDOUBLE\t0.5\t1.5\t0.4\n"}) {
    SCOPED_TRACE(row);
    const std::string msg = parse_error(std::string(kHeader) + row);
    EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("default"), std::string::npos) << msg;
  }
}

TEST(CatalogParse, NonNumericBoundsNameSourceAndLine) {
  for (const char* row : {"A\tAParameters\tp\tINTEGER\tabc\t50\t20\n", "A\tAParameters\tp\tINTEGER\t\t50\t20\n",
                          "A\tAParameters\tp\tINTEGER\t5x\t50\t20\n", "A\tAParameters\tp\tINTEGER\t5\tmany\t20\n",
                          "A\tAParameters\tp\tINTEGER\t5\t50\ttwenty\n"}) {
    SCOPED_TRACE(row);
    const std::string msg = parse_error(std::string(kHeader) + row);
    EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a number"), std::string::npos) << msg;
  }
}

TEST(CatalogParse, NanAndInfinityAreNotBounds) {
  for (const char* row : {"A\tAParameters\tp\tDOUBLE\tnan\t50\t20\n", "A\tAParameters\tp\tDOUBLE\t5\tinf\t20\n",
                          "A\tAParameters\tp\tDOUBLE\t-inf\t50\t20\n"}) {
    SCOPED_TRACE(row);
    const std::string msg = parse_error(std::string(kHeader) + row);
    EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
  }
}

TEST(CatalogParse, LineNumbersCountCommentsAndBlankLines) {
  const std::string msg = parse_error(std::string(kHeader) + "# one\n\n# three\nA\tAParameters\tp\tLONG\t1\t5\t3\n");
  EXPECT_NE(msg.find("my.tsv:5"), std::string::npos) << msg;
}

TEST(CatalogParse, ParameterGivenTwiceIsAnError) {
  const std::string msg = parse_error(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\t3\n" +
                                      "A\tAParameters\tp\tINTEGER\t1\t9\t3\n");
  EXPECT_NE(msg.find("my.tsv:3"), std::string::npos) << msg;
}

TEST(CatalogParse, EmptyStrategyTypeIsAnError) {
  const std::string msg = parse_error(std::string(kHeader) + "\tAParameters\tp\tINTEGER\t1\t5\t3\n");
  EXPECT_NE(msg.find("my.tsv:2"), std::string::npos) << msg;
}

TEST(CatalogLoad, ReadsAFileAndNamesItInErrors) {
  TempFile good(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\t3\tvolume\n");
  const Catalog c = Catalog::load(good.path());
  ASSERT_NE(c.find("A"), nullptr);
  EXPECT_EQ(c.find("A")->family, "volume");

  TempFile bad(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t9\t5\t3\n");
  try {
    Catalog::load(bad.path());
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.path() + ":2"), std::string::npos) << e.what();
    EXPECT_FALSE(e.retryable());
  }
}

TEST(CatalogLoad, MissingFileIsAConfigError) {
  const std::string path = "/nonexistent/strategy_catalog_test.tsv";
  try {
    Catalog::load(path);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(CatalogOverrides, EmptyPathIsTheBuiltinCatalog) {
  EXPECT_EQ(Catalog::with_overrides("").get(), Catalog::builtin().get());
}

TEST(CatalogOverrides, FileReplacesATypeWholeAndAddsNewOnes) {
  TempFile file(std::string(kHeader) + "ADX_DMI\tMyAdxParameters\tadxPeriod\tINTEGER\t2\t100\t50\tmomentum\n" +
                "NEW_TYPE\tNewParameters\tlength\tDOUBLE\t0.1\t0.9\t0.5\tvolatility\n");
  const auto merged = Catalog::with_overrides(file.path());
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->types().size(), 61u);

  const StrategyTypeSpec* adx = merged->find("ADX_DMI");
  ASSERT_NE(adx, nullptr);
  EXPECT_EQ(adx->parameter_message, "MyAdxParameters");
  EXPECT_EQ(adx->family, "momentum");
  ASSERT_EQ(adx->parameters.size(), 1u) << "the type is replaced whole: diPeriod is gone";
  EXPECT_EQ(adx->parameters[0].name, "adxPeriod");
  EXPECT_EQ(adx->parameters[0].min, 2);
  EXPECT_EQ(adx->parameters[0].max, 100);
  EXPECT_EQ(adx->find("diPeriod"), nullptr);

  const StrategyTypeSpec* added = merged->find("NEW_TYPE");
  ASSERT_NE(added, nullptr);
  ASSERT_EQ(added->parameters.size(), 1u);
  EXPECT_EQ(added->parameters[0].type, ParameterType::real);

  // The other types are the builtin ones, and the builtin catalog itself is untouched.
  ASSERT_NE(merged->find("MACD_CROSSOVER"), nullptr);
  EXPECT_EQ(merged->find("MACD_CROSSOVER")->parameters.size(), 3u);
  EXPECT_EQ(Catalog::builtin()->types().size(), 60u);
  EXPECT_EQ(Catalog::builtin()->find("ADX_DMI")->parameters.size(), 2u);
  EXPECT_EQ(Catalog::builtin()->find("NEW_TYPE"), nullptr);
}

TEST(CatalogOverrides, BadFileIsAConfigErrorNamingIt) {
  TempFile file(std::string(kHeader) + "NEW_TYPE\tNewParameters\tlength\tFLOAT\t0.1\t0.9\t0.5\n");
  try {
    Catalog::with_overrides(file.path());
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(file.path() + ":2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Catalog::with_overrides("/nonexistent/overrides.tsv"), ConfigError);
}

TEST(CatalogMerge, OtherCatalogsTypesWin) {
  Catalog base = Catalog::parse(std::string(kHeader) + "A\tAParameters\tp\tINTEGER\t1\t5\t3\n" +
                                    "A\tAParameters\tq\tINTEGER\t1\t5\t3\n" + "B\tBParameters\tp\tINTEGER\t1\t5\t3\n",
                                "base");
  const Catalog other = Catalog::parse(std::string(kHeader) + "A\tAParametersV2\tr\tDOUBLE\t0\t1\t0.5\n" +
                                           "C\tCParameters\t\t\t\t\t\n",
                                       "other");
  base.merge(other);
  ASSERT_EQ(base.types().size(), 3u);
  ASSERT_EQ(base.find("A")->parameters.size(), 1u);
  EXPECT_EQ(base.find("A")->parameters[0].name, "r");
  EXPECT_EQ(base.find("A")->parameter_message, "AParametersV2");
  EXPECT_EQ(base.find("B")->parameters.size(), 1u);
  ASSERT_NE(base.find("C"), nullptr);
  EXPECT_TRUE(base.find("C")->parameters.empty());
}

}  // namespace
}  // namespace strategy_consumer
