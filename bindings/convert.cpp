#include "convert.hpp"

#include "strategy_consumer/message/tradestream_compat.hpp"
#include "strategy_consumer/python_json.hpp"

namespace py = pybind11;

namespace strategy_consumer::bindings {

py::object to_python(const nlohmann::json& v) { return json_to_python(v); }

py::list to_python(const Reasons& reasons) {
  py::list out;
  for (const auto& r : reasons) {
    py::dict d;
    d["rule"] = r.rule;
    d["field"] = r.field;
    d["value"] = r.value;
    d["message"] = r.message;
    out.append(d);
  }
  return out;
}

py::object utc_datetime(std::int64_t micros) {
  // Looked up per call (a dict lookup in sys.modules): a static py::object would outlive the interpreter.
  py::object datetime = py::module_::import("datetime");
  py::object epoch = datetime.attr("datetime")(1970, 1, 1, 0, 0, 0, 0, datetime.attr("timezone").attr("utc"));
  return epoch + datetime.attr("timedelta")(py::arg("microseconds") = micros);
}

py::dict to_python(const StrategyRecord& r) {
  auto optional_time = [](const std::optional<std::int64_t>& t) { return t ? utc_datetime(*t) : py::none(); };
  py::dict d;
  d["symbol"] = r.symbol;
  d["strategy_type"] = r.strategy_type;
  d["parameters"] = to_python(r.parameters_layout == ParametersLayout::tradestream && r.parameters_any
                                  ? tradestream_parameters(*r.parameters_any, r.parameters)
                                  : r.parameters);
  d["current_score"] = r.score;
  d["strategy_hash"] = r.strategy_hash;
  d["discovery_symbol"] = r.discovery_symbol ? py::object(py::str(*r.discovery_symbol)) : py::none();
  d["discovery_start_time"] = optional_time(r.discovery_start_us);
  d["discovery_end_time"] = optional_time(r.discovery_end_us);
  d["performance_metrics"] = r.performance_metrics ? to_python(*r.performance_metrics) : py::object(py::none());
  d["message_format"] = r.message_format;
  return d;
}

DecodeOptions decode_options(const std::string& message_format, const std::string& parameters_layout,
                             const std::string& strategy_hash_scheme) {
  DecodeOptions o;
  o.format = parse_message_format(message_format);
  o.parameters_layout = parse_parameters_layout(parameters_layout);
  o.hash_scheme = parse_hash_scheme(strategy_hash_scheme);
  return o;
}

py::dict to_python(const StoredStrategy& s) {
  py::object uuid = py::module_::import("uuid").attr("UUID");
  auto optional_time = [](const std::optional<std::int64_t>& t) { return t ? utc_datetime(*t) : py::none(); };
  py::dict d;
  d["strategy_id"] = uuid(s.strategy_id);
  d["symbol"] = s.record.symbol;
  d["strategy_type"] = s.record.strategy_type;
  d["parameters"] = to_python(s.record.parameters);
  d["current_score"] = s.record.score;
  d["first_discovered_at"] = utc_datetime(s.first_discovered_at_us);
  d["last_evaluated_at"] = utc_datetime(s.last_evaluated_at_us);
  d["is_active"] = s.is_active;
  d["strategy_hash"] = s.record.strategy_hash;
  d["discovery_symbol"] = s.record.discovery_symbol ? py::object(py::str(*s.record.discovery_symbol)) : py::none();
  d["discovery_start_time"] = optional_time(s.record.discovery_start_us);
  d["discovery_end_time"] = optional_time(s.record.discovery_end_us);
  d["created_at"] = utc_datetime(s.created_at_us);
  d["updated_at"] = utc_datetime(s.updated_at_us);
  d["performance_metrics"] =
      s.record.performance_metrics ? to_python(*s.record.performance_metrics) : py::object(py::none());
  return d;
}

py::dict to_python(const ScoreHistoryEntry& h) {
  auto optional_time = [](const std::optional<std::int64_t>& t) { return t ? utc_datetime(*t) : py::none(); };
  auto optional = [](const auto& v) { return v ? py::cast(*v) : py::object(py::none()); };
  py::dict d;
  d["strategy_hash"] = h.strategy_hash;
  d["strategy_type"] = h.strategy_type.empty() ? py::object(py::none()) : py::str(h.strategy_type);
  d["symbol"] = h.symbol.empty() ? py::object(py::none()) : py::str(h.symbol);
  d["score"] = h.score;
  d["performance_metrics"] = h.performance_metrics ? to_python(*h.performance_metrics) : py::object(py::none());
  d["discovery_symbol"] = optional(h.discovery_symbol);
  d["discovery_start_time"] = optional_time(h.discovery_start_us);
  d["discovery_end_time"] = optional_time(h.discovery_end_us);
  d["message_timestamp"] = optional_time(h.message_timestamp_us);
  d["source_topic"] = optional(h.source_topic);
  d["source_partition"] = optional(h.source_partition);
  d["source_offset"] = optional(h.source_offset);
  d["stored_at"] = utc_datetime(h.stored_at_us);
  return d;
}

}  // namespace strategy_consumer::bindings
