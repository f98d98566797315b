"""Models: text in, scores out. Knows no Kafka and no ClickHouse."""
