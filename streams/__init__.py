"""Faust stream processors: Kafka events -> validated, deduplicated rows in ClickHouse."""
