"""strategy_consumer: stores the trading strategies of the discovery pipeline from Kafka into PostgreSQL."""

__all__: list[str] = []
