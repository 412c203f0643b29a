#include "strategy_consumer/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace strategy_consumer {

void configure_logging(int verbosity) {
  auto logger = spdlog::stderr_logger_mt("strategy-consumer");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::level::level_enum level = spdlog::level::info;
  if (verbosity >= 2) level = spdlog::level::trace;
  else if (verbosity == 1) level = spdlog::level::debug;
  else if (verbosity == -1) level = spdlog::level::warn;
  else if (verbosity <= -2) level = spdlog::level::err;
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace strategy_consumer
