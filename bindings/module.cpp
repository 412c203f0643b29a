// strategy_consumer._core: the C++ core for Python. One init_* per bind_*.cpp.
#include <pybind11/pybind11.h>

#include "strategy_consumer/ops/logging.hpp"

namespace py = pybind11;

void init_errors(py::module_& m);
void init_inspector(py::module_& m);
void init_postgres(py::module_& m);
void init_consumer(py::module_& m);
void init_rules(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = R"doc(The C++ core of strategy_consumer. Use the package's modules, not this one, directly.)doc";
  m.attr("__version__") = STRATEGY_CONSUMER_VERSION;
  // A library should be quiet: only warnings and errors, on stderr, until a Consumer sets its verbosity.
  strategy_consumer::configure_logging(-1);
  init_errors(m);
  init_rules(m);
  init_inspector(m);
  init_postgres(m);
  init_consumer(m);
}
