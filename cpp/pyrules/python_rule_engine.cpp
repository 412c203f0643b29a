#include "strategy_consumer/python_rule_engine.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string_view>

#include <spdlog/spdlog.h>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/text.hpp"
#include "strategy_consumer/python_json.hpp"

namespace py = pybind11;

namespace strategy_consumer {
namespace pyrules {
std::string_view embedded_rules_source();  // embedded_rules_module.cpp, generated from rules.py
}  // namespace pyrules

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kFileCheckInterval = std::chrono::seconds(1);
// Per rule and batch, this many warnings are logged one by one; the rest are summed up in one line.
constexpr std::size_t kWarningsLoggedPerRule = 10;
constexpr const char* kModule = "strategy_consumer.rules";

template <class T>
py::object optional_to_python(const std::optional<T>& value) {
  return value ? py::cast(*value) : py::none();
}

// A file's identity and version: a rewrite (new inode), an edit (mtime, size) or a removal all change it.
struct FileVersion {
  bool exists = false;
  std::int64_t mtime_ns = 0;
  std::int64_t size = 0;
  std::uint64_t inode = 0;
  bool operator==(const FileVersion&) const = default;
};
using Fingerprint = std::vector<std::pair<std::string, FileVersion>>;

Fingerprint fingerprint(const std::vector<std::string>& files) {
  Fingerprint out;
  out.reserve(files.size());
  for (const auto& f : files) {
    struct stat st {};
    FileVersion v;
    if (::stat(f.c_str(), &st) == 0) {
      v = {true, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
           static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
    }
    out.emplace_back(f, v);
  }
  return out;
}

// The message of a failed load: RuleLoadError's own text ("FILE:LINE: SyntaxError: ..."), else the exception.
std::string load_error_text(py::error_already_set& e) {
  try {
    py::object error_type = py::module_::import(kModule).attr("RuleLoadError");
    if (e.matches(error_type)) return printable_utf8(py::str(e.value()).cast<std::string>());
  } catch (const py::error_already_set&) {
    // strategy_consumer.rules itself cannot be imported: the exception says why.
  }
  return printable_utf8(e.what());
}

}  // namespace

py::dict record_to_python(const StrategyRecord& r) {
  py::dict d;
  d["symbol"] = py::str(r.symbol);
  d["strategy_type"] = py::str(r.strategy_type);
  d["parameters"] = json_to_python(r.parameters);
  d["score"] = py::float_(r.score);
  d["performance_metrics"] = r.performance_metrics ? json_to_python(*r.performance_metrics) : py::none();
  d["discovery_symbol"] = optional_to_python(r.discovery_symbol);
  d["discovery_start_us"] = optional_to_python(r.discovery_start_us);
  d["discovery_end_us"] = optional_to_python(r.discovery_end_us);
  d["strategy_hash"] = py::str(r.strategy_hash);
  return d;
}

void install_embedded_rules_module() {
  py::module_ sys = py::module_::import("sys");
  py::dict modules = sys.attr("modules");
  py::object module_type = py::module_::import("types").attr("ModuleType");
  if (!modules.contains("strategy_consumer")) {
    py::object package = module_type("strategy_consumer",
                                     "strategy_consumer as the strategy-consumer binary embeds it: only .rules");
    package.attr("__path__") = py::list();
    modules["strategy_consumer"] = package;
  }
  const char* file = "<strategy-consumer>/strategy_consumer/rules.py";
  py::object module = module_type(kModule);
  module.attr("__file__") = file;
  modules[kModule] = module;
  const std::string source(pyrules::embedded_rules_source());
  py::object builtins = py::module_::import("builtins");
  py::object code = builtins.attr("compile")(py::bytes(source), file, "exec");
  builtins.attr("exec")(code, module.attr("__dict__"));
  modules["strategy_consumer"].attr("rules") = module;
}

struct PythonRuleEngine::Impl {
  bool log_outcomes = true;
  py::object sources;  // the Python list the rules are (re)loaded from
  py::object rule_set;  // strategy_consumer.rules.RuleSet now running
  std::vector<std::string> names;  // its rules, in order

  std::atomic<bool> reload_requested{false};
  Clock::time_point last_check = Clock::now();
  std::vector<std::string> files;  // watched: the rules' files (and directories)
  Fingerprint version;

  mutable std::mutex mutex;  // guards what stats() reads
  std::vector<RuleCounters> counters;
  std::map<std::string, std::size_t> counter_index;
  std::uint64_t batches = 0, reloads = 0, failed_reloads = 0, engine_failures = 0;
  std::string last_reload_error;
  std::vector<std::string> source_names;

  // GIL held. Throws py::error_already_set when a source fails to load.
  void load() {
    py::object fresh = py::module_::import(kModule).attr("load_rule_set")(sources);
    std::vector<std::string> fresh_names;
    std::vector<RuleCounters> described;
    for (py::handle r : fresh.attr("rules")) {
      RuleCounters c;
      c.name = r.attr("name").cast<std::string>();
      c.description = r.attr("description").cast<std::string>();
      c.severity = r.attr("severity").cast<std::string>();
      fresh_names.push_back(c.name);
      described.push_back(std::move(c));
    }
    std::vector<std::string> fresh_files;
    for (py::handle f : fresh.attr("files")) fresh_files.push_back(py::str(f).cast<std::string>());
    rule_set = std::move(fresh);
    names = std::move(fresh_names);
    files = std::move(fresh_files);
    version = fingerprint(files);

    std::lock_guard lock(mutex);
    for (auto& c : counters) c.loaded = false;
    std::vector<RuleCounters> ordered;
    for (auto& d : described) {
      auto it = counter_index.find(d.name);
      if (it != counter_index.end()) {  // same name as before: its counters go on
        RuleCounters kept = counters[it->second];
        kept.description = d.description;
        kept.severity = d.severity;
        kept.loaded = true;
        ordered.push_back(std::move(kept));
      } else {
        ordered.push_back(std::move(d));
      }
    }
    for (auto& c : counters) {
      if (!c.loaded && std::find(names.begin(), names.end(), c.name) == names.end()) ordered.push_back(c);
    }
    counters = std::move(ordered);
    counter_index.clear();
    for (std::size_t i = 0; i < counters.size(); ++i) counter_index[counters[i].name] = i;
  }

  std::string names_text() const {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }
};

PythonRuleEngine::PythonRuleEngine(py::object sources, bool log_outcomes) : impl_(std::make_unique<Impl>()) {
  impl_->log_outcomes = log_outcomes;
  impl_->sources = py::list(sources);
  for (py::handle s : impl_->sources) impl_->source_names.push_back(py::str(s).cast<std::string>());
  try {
    impl_->load();
  } catch (py::error_already_set& e) {
    const std::string why = load_error_text(e);
    impl_->rule_set = py::object();  // dropped here, with the GIL
    impl_->sources = py::object();
    throw ConfigError("rules: " + why);
  }
  spdlog::info("rules loaded: {} rule(s) from {}: {}", impl_->names.size(), py::str(impl_->sources).cast<std::string>(),
               impl_->names_text());
}

std::shared_ptr<PythonRuleEngine> PythonRuleEngine::from_sources(const std::vector<std::string>& sources) {
  py::list list;
  for (const auto& s : sources) list.append(py::str(s));
  return std::make_shared<PythonRuleEngine>(std::move(list));
}

PythonRuleEngine::~PythonRuleEngine() {
  if (!impl_) return;
  if (!Py_IsInitialized()) {
    // The interpreter is gone already: its objects went with it; do not touch them.
    impl_->sources.release();
    impl_->rule_set.release();
    return;
  }
  py::gil_scoped_acquire gil;
  impl_->rule_set = py::object();
  impl_->sources = py::object();
}

std::vector<RuleOutcome> PythonRuleEngine::evaluate(const std::vector<const StrategyRecord*>& records) {
  std::vector<RuleOutcome> out(records.size());
  if (records.empty()) return out;
  struct Counted {
    std::size_t warnings_logged = 0, warnings = 0, errors = 0;
    std::string first_error;
  };
  std::map<std::string, Counted> per_rule;  // for the log lines, written after the GIL is released
  std::vector<std::string> warning_lines;
  std::string engine_failure;
  {
    py::gil_scoped_acquire gil;
    try {
      py::list batch(records.size());
      for (std::size_t i = 0; i < records.size(); ++i) batch[i] = record_to_python(*records[i]);
      py::tuple result = impl_->rule_set.attr("evaluate")(batch);
      for (py::handle issue : result[0]) {
        py::tuple t = py::reinterpret_borrow<py::tuple>(issue);
        const auto index = t[0].cast<std::size_t>();
        if (index >= out.size()) continue;
        auto name = t[1].cast<std::string>();
        const bool reject = t[2].cast<std::string_view>() == "reject";
        auto message = printable_utf8(t[3].cast<std::string_view>());
        const bool error = t[4].cast<bool>();
        Counted& c = per_rule[name];
        if (error && c.errors++ == 0) c.first_error = message;
        if (reject) {
          out[index].rejections.push_back({kRuleStagePrefix + name, "", "", std::move(message)});
        } else {
          ++c.warnings;
          if (impl_->log_outcomes && c.warnings_logged < kWarningsLoggedPerRule) {
            ++c.warnings_logged;
            const StrategyRecord& r = *records[index];
            warning_lines.push_back(fmt::format("rule {} warns about strategy {} ({} {}): {}", name,
                                                r.strategy_hash, printable_utf8(r.symbol),
                                                printable_utf8(r.strategy_type), message));
          }
          out[index].warnings.push_back({std::move(name), std::move(message)});
        }
      }
      std::lock_guard lock(impl_->mutex);
      ++impl_->batches;
      for (py::handle stat : result[1]) {
        py::tuple s = py::reinterpret_borrow<py::tuple>(stat);
        auto it = impl_->counter_index.find(s[0].cast<std::string>());
        if (it == impl_->counter_index.end()) continue;
        RuleCounters& c = impl_->counters[it->second];
        c.evaluated += s[1].cast<std::uint64_t>();
        c.rejected += s[2].cast<std::uint64_t>();
        c.warned += s[3].cast<std::uint64_t>();
        c.errors += s[4].cast<std::uint64_t>();
        c.seconds += s[5].cast<double>();
      }
    } catch (py::error_already_set& e) {
      // Not a rule (rules.py catches those): the evaluation itself failed. The batch is refused rather than
      // stored unchecked, and the process goes on.
      engine_failure = printable_utf8(e.what());
    }
  }
  if (!engine_failure.empty()) {
    {
      std::lock_guard lock(impl_->mutex);
      ++impl_->engine_failures;
    }
    spdlog::error("the rule engine failed on a batch of {} strategies, refusing them: {}", records.size(),
                  engine_failure);
    for (auto& o : out) {
      o = RuleOutcome{};
      o.rejections.push_back({std::string(kRuleStagePrefix) + "engine", "", "",
                              "the rule engine failed: " + engine_failure.substr(0, 500)});
    }
    return out;
  }
  if (!impl_->log_outcomes) return out;
  for (const auto& line : warning_lines) spdlog::warn("{}", line);
  for (const auto& [name, c] : per_rule) {
    if (c.warnings > c.warnings_logged) {
      spdlog::warn("rule {}: {} more warning(s) in this batch", name, c.warnings - c.warnings_logged);
    }
    if (c.errors > 0) {
      spdlog::error("rule {} failed on {} of {} strategies in this batch: {}", name, c.errors, records.size(),
                    c.first_error);
    }
  }
  return out;
}

void PythonRuleEngine::request_reload() noexcept { impl_->reload_requested.store(true); }

void PythonRuleEngine::reload_if_changed() {
  Impl& s = *impl_;
  const char* why = "a reload was requested";
  if (!s.reload_requested.exchange(false)) {
    const auto now = Clock::now();
    if (now - s.last_check < kFileCheckInterval) return;
    s.last_check = now;
    Fingerprint current = fingerprint(s.files);
    if (current == s.version) return;
    // Remembered even if the reload fails: a broken version is not tried again until it changes.
    s.version = std::move(current);
    why = "a rules file changed";
  }
  std::string error;
  {
    py::gil_scoped_acquire gil;
    try {
      s.load();
    } catch (py::error_already_set& e) {
      error = load_error_text(e);
    }
  }
  std::lock_guard lock(s.mutex);
  if (error.empty()) {
    ++s.reloads;
    s.last_reload_error.clear();
    spdlog::info("rules reloaded ({}): {} rule(s): {}", why, s.names.size(), s.names_text());
  } else {
    ++s.failed_reloads;
    s.last_reload_error = error;
    spdlog::error("rules reload failed ({}), keeping the previous {} rule(s): {}", why, s.names.size(), error);
  }
}

RuleStats PythonRuleEngine::stats() const {
  std::lock_guard lock(impl_->mutex);
  RuleStats out;
  out.rules = impl_->counters;
  out.batches = impl_->batches;
  out.engine_failures = impl_->engine_failures;
  out.reloads = impl_->reloads;
  out.failed_reloads = impl_->failed_reloads;
  out.last_reload_error = impl_->last_reload_error;
  out.sources = impl_->source_names;
  return out;
}

std::vector<std::string> PythonRuleEngine::rule_names() const { return impl_->names; }

}  // namespace strategy_consumer
