"""The worker's own instrumentation: its Prometheus metrics, served on LABELPULSE_WORKER_METRICS_PORT by
`labelpulse worker`.

Names follow Prometheus conventions: `labelpulse_` prefix, base units, `_total` on counters,
and no unbounded label values (event types, refusal rules and source systems are fixed sets; partitions are few).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("labelpulse_worker_events", "Valid events stored, by type", ["event_type"])
EVENTS_BY_SOURCE = Counter(
    "labelpulse_worker_events_by_source",
    "Valid events stored, by the source_system they name (other: a name not listed here; unspecified: none)",
    ["source_system"],
)
# source_system is free text to the contract; as a label it is one of these, so producers cannot grow the series.
SOURCE_SYSTEMS = frozenset({"label-studio", "cvat", "labelbox", "api", "simulator", "import"})


def source_label(source_system: str) -> str:
    if not source_system:
        return "unspecified"
    return source_system if source_system in SOURCE_SYSTEMS else "other"


DEAD_LETTERS = Counter("labelpulse_worker_dead_letters", "Messages refused, by the rule they broke", ["rule"])
DUPLICATES = Counter("labelpulse_worker_duplicates_dropped", "Repeated event_ids dropped (producer retries)")
REPLAYED_ROWS = Counter(
    "labelpulse_worker_replayed_rows_skipped",
    "Rows not written again: their messages were read again after a restart and are stored already",
)
BATCH_SIZE = Histogram(
    "labelpulse_worker_batch_messages",
    "Messages per batch (one Kafka fetch)",
    buckets=(1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000),
)
INSERT_SECONDS = Histogram(
    "labelpulse_worker_insert_duration_seconds",
    "Time to make one batch durable in ClickHouse (every table)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG = Gauge(
    "labelpulse_worker_consumer_lag_messages", "Messages behind the end of each partition", ["topic", "partition"]
)
FRESHNESS = Gauge(
    "labelpulse_worker_freshness_seconds",
    "Age of the newest event of the last durable batch when it became durable (occurred_at to queryable)",
)
LAST_BATCH = Gauge("labelpulse_worker_last_batch_timestamp_seconds", "When the last batch became durable (Unix time)")
TOO_LATE = Counter(
    "labelpulse_worker_too_late_events",
    "Events more than the lateness bound behind their partition's newest: stored and counted in throughput, "
    "left out of derived metrics (handle times, gold, reviews, agreement, active time)",
    ["event_type"],
)
ACTIVITY_DROPPED = Counter(
    "labelpulse_worker_active_time_events_dropped",
    "Annotation events left out of active time: older than everything kept for their annotator, whose history "
    "had reached its limit",
)
TASK_STATES = Gauge("labelpulse_worker_task_states", "Tasks whose state the worker holds (within the lateness bound)")
TASK_STATES_RELEASED = Counter(
    "labelpulse_worker_task_states_released",
    "Task states released: completed more than the lateness bound ago, or idle past the open-task retention",
)
