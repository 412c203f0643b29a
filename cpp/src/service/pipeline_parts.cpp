#include "strategy_consumer/service/pipeline_parts.hpp"

#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/kafka/source.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/postgres/sink.hpp"

namespace strategy_consumer {

PipelineParts kafka_postgres_parts(const Config& config) {
  return {
      .make_sink = [postgres = config.postgres, group = config.kafka.group_id]() -> std::unique_ptr<BatchSink> {
        return std::make_unique<PostgresSink>(postgres, group);
      },
      .make_source = [kafka = config.kafka, direct = config.direct_assignment()](
                         RebalanceListener& listener) -> std::unique_ptr<MessageSource> {
        return std::make_unique<KafkaSource>(kafka, listener, direct);
      },
      .make_dead_letters = [kafka = config.kafka](PipelineObserver& observer) -> std::unique_ptr<DeadLetterSink> {
        return std::make_unique<DlqProducer>(
            kafka, [&observer](const DeadLetterRefusal& r) { observer.dead_letter_refused(r.delivered_minimal); });
      },
  };
}

// The pipeline's own constructor for the real parts lives here, with the wiring: pipeline/ knows only the
// interfaces.
Pipeline::Pipeline(Config config, PipelineObserver* observer)
    : Pipeline(config, kafka_postgres_parts(config), observer) {}

}  // namespace strategy_consumer
