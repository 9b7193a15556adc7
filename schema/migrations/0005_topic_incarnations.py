"""Rows keep the incarnation (Kafka's topic id) of the topic they were read from.

A topic deleted and created again starts at offset 0; without its id, the workers took its new
events for replays of stored ones (streams.incarnations). The DDL is written out here, not taken
from schema.tables, so that this migration keeps doing what it did when tables change later.
Rows written before it have an empty id.
"""

from schema.ddl import Target, local_name

WORKER_TABLES = (
    "events",
    "dead_letters",
    "handle_times",
    "task_agreement",
    "pair_agreement",
    "active_time",
    "review_rounds",
)
COLUMN = (
    "`kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\\'s id of the incarnation of the topic it was "
    "read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)'"
)


def _tables(target: Target) -> list[str]:
    """The tables holding rows, and on a cluster the Distributed ones in front of them too."""
    names = [local_name(table, target) for table in WORKER_TABLES]
    return names + list(WORKER_TABLES) if target.cluster else names


def forwards(target: Target) -> list[str]:
    return [
        f"ALTER TABLE {table}{target.on_cluster()} ADD COLUMN IF NOT EXISTS {COLUMN} AFTER kafka_topic"
        for table in _tables(target)
    ]


def backwards(target: Target) -> list[str]:
    return [
        f"ALTER TABLE {table}{target.on_cluster()} DROP COLUMN IF EXISTS kafka_topic_id" for table in _tables(target)
    ]
