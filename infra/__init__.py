"""Infrastructure: settings, the exception tree, ClickHouse access and the local Kafka broker."""
