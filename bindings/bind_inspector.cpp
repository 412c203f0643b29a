#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "convert.hpp"
#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/protobuf_decoder.hpp"
#include "strategy_consumer/python_rule_engine.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace py = pybind11;
using namespace strategy_consumer;
using bindings::to_python;

void init_inspector(py::module_& m) {
  py::class_<StrategyInspector>(m, "StrategyInspector", R"doc(Decoding and validation, as the service runs them.

Messages are JSON text or protobuf DiscoveredStrategy bytes (message_format: auto, json, protobuf). catalog: a
catalog file whose types are added to or replace the built-in ones. parameters_layout and strategy_hash_scheme
as the service's flags.)doc")
      .def(py::init([](const std::string& catalog, bool allow_unknown, const std::string& message_format,
                       const std::string& parameters_layout, const std::string& strategy_hash_scheme) {
             return StrategyInspector(Catalog::with_overrides(catalog),
                                      ValidatorOptions{.allow_unknown_strategy_types = allow_unknown},
                                      bindings::decode_options(message_format, parameters_layout,
                                                               strategy_hash_scheme));
           }),
           py::arg("catalog") = "", py::arg("allow_unknown_strategy_types") = false,
           py::arg("message_format") = "auto", py::arg("parameters_layout") = "named",
           py::arg("strategy_hash_scheme") = "canonical")
      .def(
          "decode",
          [](const StrategyInspector& self, const std::string& message) {
            Inspection inspection = self.inspect(message, now_us());
            py::dict out;
            out["stage"] = inspection.stage;
            out["reasons"] = to_python(inspection.reasons);
            out["message_format"] = inspection.message_format;
            out["record"] = inspection.stage == "decode" ? py::object(py::none())
                                                         : py::object(bindings::to_python(inspection.record));
            return out;
          },
          py::arg("message"),
          R"doc({stage, reasons, message_format, record}: decode and validate; record (None when decoding failed) is
the row as it would be stored.)doc")
      .def("validate",
           [](const StrategyInspector& self, const std::string& message) { return to_python(self.validate(message)); },
           py::arg("message"), R"doc(The reasons the message would be refused (empty: it would be stored).)doc")
      .def("inspect",
           [](const StrategyInspector& self, const std::string& message, PythonRuleEngine* rules) {
             auto inspection = inspect_with_rules(self, rules, message, now_us());
             py::list warnings;
             for (const auto& w : inspection.warnings) warnings.append(py::dict(py::arg("rule") = w.rule,
                                                                                 py::arg("message") = w.message));
             return py::make_tuple(inspection.stage, to_python(inspection.reasons), inspection.strategy_hash,
                                   warnings);
           },
           py::arg("message"), py::arg("rules") = nullptr,
           R"doc((stage, reasons, strategy_hash, rule_warnings): decode, validate, then the rules (a RuleEngine)
if given, as the pipeline does. stage is "" when the message would be stored, "rule:<name>" when a rule refused it.)doc")
      .def("validate_parameters",
           [](const StrategyInspector& self, const std::string& parameters, std::optional<std::string> type) {
             return to_python(self.validate_parameters(nlohmann::json::parse(parameters), type));
           },
           py::arg("parameters"), py::arg("strategy_type") = py::none())
      .def("analyze_strategy",
           [](const StrategyInspector& self, const std::string& message) {
             return to_python(self.analyze_strategy(message));
           },
           py::arg("message"))
      .def("extract_performance_metrics",
           [](const StrategyInspector& self, const std::string& message) {
             return to_python(self.extract_performance_metrics(message));
           },
           py::arg("message"))
      .def_property_readonly("strategy_types", [](const StrategyInspector& self) {
        py::dict out;
        for (const auto& [name, spec] : self.validator().catalog().types()) {
          py::list params;
          for (const auto& p : spec.parameters) {
            py::dict d;
            d["name"] = p.name;
            d["type"] = p.type == ParameterType::integer ? "INTEGER" : "DOUBLE";
            d["min"] = p.min;
            d["max"] = p.max;
            d["default"] = p.default_value;
            params.append(d);
          }
          py::dict t;
          t["family"] = spec.family;
          t["parameter_message"] = spec.parameter_message;
          t["parameters"] = params;
          out[py::str(name)] = t;
        }
        return out;
      });

  m.def(
      "strategy_hash",
      [](const std::string& symbol, const std::string& type, const std::string& parameters) {
        return canonical_strategy_hash(symbol, type, nlohmann::json::parse(parameters));
      },
      py::arg("symbol"), py::arg("strategy_type"), py::arg("parameters_json"),
      R"doc(The canonical strategy hash (SHA-256 hex) of symbol, type and parameters (JSON text).)doc");

  m.def(
      "protobuf_schema",
      [] {
        py::list out;
        for (const auto& file : schema_file_descriptors()) out.append(py::bytes(file));
        return out;
      },
      R"doc(The wire schema the core decodes (strategies.proto, discovery.proto) as serialized FileDescriptorProto
bytes, in dependency order.)doc");
  m.def("parameter_messages", &parameter_message_names,
        R"doc(The names of the 62 parameter messages of strategies.proto, in schema order.)doc");
}
