#include "strategy_consumer/python_json.hpp"

namespace py = pybind11;

namespace strategy_consumer {

py::object json_to_python(const nlohmann::json& v) {
  using t = nlohmann::json::value_t;
  switch (v.type()) {
    case t::boolean: return py::bool_(v.get<bool>());
    case t::number_integer: return py::int_(v.get<std::int64_t>());
    case t::number_unsigned: return py::int_(v.get<std::uint64_t>());
    case t::number_float: return py::float_(v.get<double>());
    case t::string: return py::str(v.get_ref<const std::string&>());
    case t::array: {
      py::list out(v.size());
      std::size_t i = 0;
      for (const auto& item : v) out[i++] = json_to_python(item);
      return out;
    }
    case t::object: {
      py::dict out;
      for (const auto& [k, item] : v.items()) out[py::str(k)] = json_to_python(item);
      return out;
    }
    default: return py::none();  // null, and the binary/discarded kinds the decoder never makes
  }
}

}  // namespace strategy_consumer
