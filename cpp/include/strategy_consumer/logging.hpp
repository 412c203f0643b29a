#pragma once
// spdlog set-up for the binary: verbosity as absl's (0 info, 1 debug, 2 trace, -1 warning, -2 error).
namespace strategy_consumer {
void configure_logging(int verbosity);
}
