#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "convert.hpp"
#include "strategy_consumer/postgres/client.hpp"

namespace py = pybind11;
using namespace strategy_consumer;
using bindings::to_python;

namespace {

StrategyQuery make_query(std::optional<std::string> id_or_hash, std::optional<std::string> symbol,
                         std::optional<std::string> type, std::optional<double> min_score, bool active_only,
                         std::optional<std::int64_t> limit) {
  return StrategyQuery{std::move(id_or_hash), std::move(symbol), std::move(type), min_score, active_only, limit};
}

py::list rows(std::vector<StoredStrategy> found) {
  py::list out;
  for (const auto& row : found) out.append(to_python(row));
  return out;
}

}  // namespace

void init_postgres(py::module_& m) {
  py::class_<PostgresConfig>(m, "PostgresConfig")
      .def(py::init<>())
      .def_static("from_dsn", &postgres_config_from_dsn, py::arg("dsn"))
      .def_readwrite("host", &PostgresConfig::host)
      .def_readwrite("port", &PostgresConfig::port)
      .def_readwrite("database", &PostgresConfig::database)
      .def_readwrite("user", &PostgresConfig::user)
      .def_readwrite("password", &PostgresConfig::password)
      .def_readwrite("min_connections", &PostgresConfig::min_connections)
      .def_readwrite("max_connections", &PostgresConfig::max_connections)
      .def_readwrite("connect_timeout_seconds", &PostgresConfig::connect_timeout_seconds)
      .def_readwrite("score_history", &PostgresConfig::score_history,
                     R"doc(Append every applied discovery to strategy_score_history (the service's --score_history).)doc")
      .def_readwrite("score_history_retention_days", &PostgresConfig::score_history_retention_days,
                     R"doc(Drop history month partitions wholly older than this many days; 0 keeps them.)doc")
      .def("describe", &PostgresConfig::describe)
      .def("__repr__", [](const PostgresConfig& c) { return "<PostgresConfig " + c.describe() + ">"; });

  py::class_<PostgresClient>(m, "PostgresClient", R"doc(A pool of connections; every call releases the GIL.)doc")
      .def(py::init([](const PostgresConfig& config, const std::string& catalog, bool allow_unknown, bool migrate,
                       const std::string& message_format, const std::string& parameters_layout,
                       const std::string& strategy_hash_scheme) {
             return std::make_unique<PostgresClient>(
                 config, Catalog::with_overrides(catalog),
                 ValidatorOptions{.allow_unknown_strategy_types = allow_unknown}, migrate,
                 bindings::decode_options(message_format, parameters_layout, strategy_hash_scheme));
           }),
           py::arg("config"), py::arg("catalog") = "", py::arg("allow_unknown_strategy_types") = false,
           py::arg("migrate") = true, py::arg("message_format") = "auto", py::arg("parameters_layout") = "named",
           py::arg("strategy_hash_scheme") = "canonical", py::call_guard<py::gil_scoped_release>())
      .def(
          "bulk_insert",
          [](PostgresClient& self, const std::vector<std::string>& messages) {
            BulkInsertResult r;
            {
              py::gil_scoped_release release;
              r = self.bulk_insert(messages);
            }
            py::list failures;
            for (const auto& f : r.failures) {
              py::dict d;
              d["index"] = f.index;
              d["stage"] = f.stage;
              d["reasons"] = to_python(f.reasons);
              failures.append(d);
            }
            py::dict out;
            out["success_count"] = r.success_count;
            out["failure_count"] = r.failure_count;
            out["inserted"] = r.inserted;
            out["updated"] = r.updated;
            out["failures"] = failures;
            return out;
          },
          py::arg("messages"), R"doc(Stores messages (JSON text or protobuf bytes) through the service's COPY + upsert path.)doc")
      .def(
          "find",
          [](PostgresClient& self, std::optional<std::string> id_or_hash, std::optional<std::string> symbol,
             std::optional<std::string> strategy_type, std::optional<double> min_score, bool active_only,
             std::optional<std::int64_t> limit) {
            std::vector<StoredStrategy> found;
            {
              py::gil_scoped_release release;
              found = self.find(make_query(id_or_hash, symbol, strategy_type, min_score, active_only, limit));
            }
            return rows(std::move(found));
          },
          py::arg("id_or_hash") = py::none(), py::arg("symbol") = py::none(), py::arg("strategy_type") = py::none(),
          py::arg("min_score") = py::none(), py::arg("active_only") = false, py::arg("limit") = py::none())
      .def(
          "count",
          [](PostgresClient& self, std::optional<std::string> symbol, std::optional<std::string> strategy_type,
             std::optional<double> min_score, bool active_only) {
            return self.count(make_query(std::nullopt, symbol, strategy_type, min_score, active_only, std::nullopt));
          },
          py::arg("symbol") = py::none(), py::arg("strategy_type") = py::none(), py::arg("min_score") = py::none(),
          py::arg("active_only") = false, py::call_guard<py::gil_scoped_release>())
      .def(
          "score_history",
          [](PostgresClient& self, std::optional<std::string> strategy_hash, std::optional<std::string> strategy_type,
             std::optional<std::string> symbol, std::optional<std::int64_t> since_us,
             std::optional<std::int64_t> until_us, std::optional<std::int64_t> limit) {
            std::vector<ScoreHistoryEntry> found;
            {
              py::gil_scoped_release release;
              found = self.score_history(
                  ScoreHistoryQuery{std::move(strategy_hash), std::move(strategy_type), std::move(symbol), since_us,
                                    until_us, limit});
            }
            py::list out;
            for (const auto& row : found) out.append(to_python(row));
            return out;
          },
          py::arg("strategy_hash") = py::none(), py::arg("strategy_type") = py::none(), py::arg("symbol") = py::none(),
          py::arg("since_us") = py::none(), py::arg("until_us") = py::none(), py::arg("limit") = py::none(),
          R"doc(Rows of strategy_score_history (oldest first) with their strategy's type and symbol, as dicts.)doc")
      .def("migrate", &PostgresClient::migrate, py::call_guard<py::gil_scoped_release>());
}
