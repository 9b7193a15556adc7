"""HTTP ingest: contract events and labeling-tool webhooks in, Kafka out (`labelpulse ingest`)."""
