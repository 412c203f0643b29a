// Every core exception becomes its strategy_consumer.errors class, here and nowhere else.
#include <pybind11/pybind11.h>

#include "strategy_consumer/model/errors.hpp"

namespace py = pybind11;
using namespace strategy_consumer;

namespace {

void raise(const char* name, const Error& e, const py::dict& attributes) {
  py::object cls = py::module_::import("strategy_consumer.errors").attr(name);
  py::object exc = cls(e.what());
  exc.attr("retryable") = e.retryable();
  exc.attr("remedy") = e.remedy();
  for (auto [k, v] : attributes) exc.attr(k) = v;
  PyErr_SetObject(cls.ptr(), exc.ptr());
}

}  // namespace

void init_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ConfigError& e) {
      raise("ConfigError", e, {});
    } catch (const FencedError& e) {
      raise("FencedError", e, {});
    } catch (const DatabaseError& e) {
      py::dict a;
      a["sqlstate"] = e.sqlstate().empty() ? py::object(py::none()) : py::str(e.sqlstate());
      raise("DatabaseError", e, a);
    } catch (const KafkaError& e) {
      py::dict a;
      a["topic"] = e.topic().empty() ? py::object(py::none()) : py::str(e.topic());
      a["partition"] = e.partition() < 0 ? py::object(py::none()) : py::int_(e.partition());
      raise("KafkaError", e, a);
    } catch (const Error& e) {
      raise("StrategyConsumerError", e, {});
    }
  });
}
