"""Faust stream processors: Kafka events -> validated, deduplicated rows in ClickHouse."""

from streams import compiled

compiled.install()  # before any of the per-event modules is imported: their compiled build, if there is one
