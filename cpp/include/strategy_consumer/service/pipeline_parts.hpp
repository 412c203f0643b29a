#pragma once
// The pipeline's real parts: a kafka/KafkaSource (group or direct assignment, as `config` says) and one
// postgres/PostgresSink (one connection) per sink the pipeline asks for.
#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"

namespace strategy_consumer {

PipelineParts kafka_postgres_parts(const Config& config);

}  // namespace strategy_consumer
