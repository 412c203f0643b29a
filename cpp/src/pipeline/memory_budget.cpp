#include "strategy_consumer/pipeline/memory_budget.hpp"

namespace strategy_consumer {
namespace {

// What one heap allocation costs beyond what it holds (glibc: a 16-byte header, 16-byte granularity).
constexpr std::size_t kAllocationOverhead = 16;
// A std::map node: the red-black tree links and colour, before the key and value.
constexpr std::size_t kMapNodeOverhead = 32;
// Strings up to this length live inside the std::string (no heap).
constexpr std::size_t kShortString = 15;

std::size_t string_heap_bytes(const std::string& s) {
  return s.size() > kShortString ? s.capacity() + 1 + kAllocationOverhead : 0;
}

}  // namespace

std::size_t json_heap_bytes(const nlohmann::json& value) {
  std::size_t bytes = sizeof(nlohmann::json);
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      bytes += sizeof(nlohmann::json::object_t) + kAllocationOverhead;
      for (auto it = value.begin(); it != value.end(); ++it) {
        bytes += kMapNodeOverhead + kAllocationOverhead + sizeof(std::string) + string_heap_bytes(it.key()) +
                 json_heap_bytes(it.value());
      }
      break;
    case nlohmann::json::value_t::array:
      bytes += sizeof(nlohmann::json::array_t) + kAllocationOverhead;
      for (const auto& item : value) bytes += json_heap_bytes(item);
      break;
    case nlohmann::json::value_t::string:
      bytes += sizeof(std::string) + kAllocationOverhead + string_heap_bytes(value.get_ref<const std::string&>());
      break;
    default:
      break;
  }
  return bytes;
}

std::size_t record_bytes(const StrategyRecord& r) {
  std::size_t bytes = sizeof(StrategyRecord) + string_heap_bytes(r.symbol) + string_heap_bytes(r.strategy_type) +
                      string_heap_bytes(r.strategy_hash) + json_heap_bytes(r.parameters) - sizeof(nlohmann::json);
  if (r.performance_metrics) bytes += json_heap_bytes(*r.performance_metrics) - sizeof(nlohmann::json);
  if (r.discovery_symbol) bytes += string_heap_bytes(*r.discovery_symbol);
  return bytes;
}

}  // namespace strategy_consumer
