"""Every ClickHouse object LabelPulse owns, in one place, in dependency order.

Three layers:
- raw tables: `events` (every valid event, kept), `dead_letters`, `alert_history`;
- rollups: AggregatingMergeTree tables fed by materialized views, holding mergeable states
  (counts as sums, quantiles as t-digest states, distinct counts as uniq states) so any time
  range and grouping is answered without scanning raw events;
- analyst views: the rollups finalized per bucket, with a comment on every column. Their metric columns
  are the metrics' one definition (schema.metric_definitions); a view's comment says who reads it (these are
  for analysts, and for the Superset and Grafana provisioning under deploy/).

Sort keys follow the questions people ask — project first, then annotator, then time —
not time alone.
"""

from __future__ import annotations

from dataclasses import replace

from schema import metric_definitions as metric
from schema.ddl import Column, MaterializedView, SchemaObject, Table, View

UTC_MS = "DateTime64(3, 'UTC')"
COUNT = "SimpleAggregateFunction(sum, UInt64)"
QUANTILES_MS = "AggregateFunction(quantileTDigest, UInt32)"
DISTINCT = "AggregateFunction(uniq, String)"
# Counts that derived changes can take back: they sum signed.
SIGNED_COUNT = "SimpleAggregateFunction(sum, Int64)"
# Exact quantiles that changes can take back: how many times each value occurred (value -> signed count).
VALUE_COUNTS = "SimpleAggregateFunction(sumMap, Map(UInt32, Int64))"

# Lets a replayed batch carrying the same insert_deduplication_token be dropped by ClickHouse
# itself (the stream sink relies on it); replicated engines have their own window.
DEDUP_SETTINGS: dict[str, str | int] = {"non_replicated_deduplication_window": 10_000}


# Rows written by the workers keep the Kafka position they came from, the topic's incarnation included:
# a topic deleted and created again starts at offset 0 (streams.incarnations).
KAFKA_TOPIC_ID = Column(
    "kafka_topic_id",
    "LowCardinality(String)",
    "Kafka's id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; "
    "empty from brokers without topic ids)",
    "''",
)


def _counts(*names_and_comments: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, COUNT, comment) for name, comment in names_and_comments)


def _signed_counts(*names_and_comments: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, SIGNED_COUNT, comment) for name, comment in names_and_comments)


# Derived rows are changes: a late event can change an answer written before (streams.task_state).
SIGN = Column(
    "sign",
    "Int8",
    "+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed "
    "the answer. Sum it: a row stands while its signs sum to 1",
)


def _position(what: str) -> tuple[Column, ...]:
    return (
        Column("kafka_topic", "LowCardinality(String)", f"Topic of {what}"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Its partition"),
        Column("kafka_offset", "UInt64", "Its offset"),
    )


POSITION_COLUMNS = tuple(column.name for column in _position(""))


def as_it_stands(changes: Table, name: str, comment: str, **column_comments: str) -> View:
    """The rows of a `*_changes` table as they stand: those whose signs sum to 1, without their sign and
    Kafka position. `column_comments` words a column's comment for the view where the table's would mislead."""
    columns = tuple(
        replace(column, comment=column_comments.get(column.name, column.comment))
        for column in changes.columns
        if column is not SIGN and column.name not in POSITION_COLUMNS
    )
    names = ", ".join(column.name for column in columns)
    select = f"\nSELECT {names}\nFROM {changes.name}\nGROUP BY {names}\nHAVING sum(sign) > 0\n"
    return View(name=name, columns=columns, select=select, comment=comment)


# ---------------------------------------------------------------- raw tables

EVENTS = Table(
    name="events",
    comment="Every valid labeling event (contract v1), as received. Unknown fields are kept in `extra`.",
    columns=(
        Column("event_id", "String", "Producer-assigned unique id; the dedup key"),
        Column("event_type", "LowCardinality(String)", "task_created, annotation_submitted, ..."),
        Column("schema_version", "UInt8", "Contract version the producer spoke"),
        Column("occurred_at", UTC_MS, "Producer clock, UTC"),
        Column("received_at", UTC_MS, "When a worker validated the event, UTC", "now64(3)"),
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task (item being labeled)"),
        Column("annotation_id", "String", "The tool's id of the annotation an edit or deletion is about (v1.1)", "''"),
        Column("annotator_id", "String", "Pseudonymous annotator; for reviews, whose work was reviewed"),
        Column("reviewer_id", "String", "Pseudonymous reviewer; empty outside reviews"),
        Column("session_id", "String", "Labeling-tool session"),
        Column("stage", "LowCardinality(String)", "annotate or review; empty when not given"),
        Column("source", "LowCardinality(String)", "manual, model_assisted or imported"),
        Column(
            "source_system",
            "LowCardinality(String)",
            "Tool or producer that sent the event: label-studio, cvat, labelbox, api, ...; empty when not given (v1.1)",
            "''",
        ),
        Column("label", "String", "Class name, or canonical JSON of a structured label"),
        Column("duration_ms", "Nullable(UInt32)", "Active time the tool measured, ms"),
        Column("is_gold", "Bool", "Honeypot task with a known answer"),
        Column("gold_label", "String", "The known answer of a honeypot task"),
        Column("verdict", "LowCardinality(String)", "accepted, fixed or rejected (reviews)"),
        Column("reason", "String", "Rejection or skip reason"),
        Column("model_label", "String", "Model pre-label offered to the annotator"),
        Column("model_confidence", "Nullable(Float32)", "Model confidence in model_label, 0..1"),
        Column("extra", "String", "JSON object of fields the contract does not know"),
        Column(
            "too_late",
            "Bool",
            "Arrived more than the lateness bound behind the newest event of its partition: counted here and in "
            "throughput, left out of derived metrics (handle times, gold, reviews, agreement, active time)",
            "false",
        ),
        Column("kafka_topic", "LowCardinality(String)", "Topic the event was read from"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Partition the event was read from"),
        Column("kafka_offset", "UInt64", "Offset the event was read from"),
    ),
    partition_by="toYYYYMM(occurred_at)",
    order_by="project_id, annotator_id, occurred_at",
    # One task's events on one shard, like one task's events in one Kafka partition.
    shard_by="cityHash64(task_id)",
    settings=DEDUP_SETTINGS,
)

DEAD_LETTERS = Table(
    name="dead_letters",
    comment="Events refused by the workers, with the reason; nothing is dropped silently.",
    columns=(
        Column("received_at", UTC_MS, "When a worker refused the message, UTC", "now64(3)"),
        Column("kafka_topic", "LowCardinality(String)", "Topic the message was read from"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Partition the message was read from"),
        Column("kafka_offset", "UInt64", "Offset the message was read from"),
        Column("kafka_key", "String", "Message key as sent"),
        Column("raw", "String", "Message value as sent (bytes)"),
        Column("rule", "LowCardinality(String)", "Broken rule: malformed_json, missing_field, ..."),
        Column("field", "String", "Offending field; empty when the whole message is bad"),
        Column("reason", "String", "Human-readable explanation"),
        Column("event_id", "String", "event_id when it could be read"),
    ),
    partition_by="toYYYYMM(received_at)",
    order_by="rule, received_at",
    settings=DEDUP_SETTINGS,
)

ALERT_HISTORY = Table(
    name="alert_history",
    comment="Every state transition of every alert instance (rule x label set).",
    columns=(
        Column("at", UTC_MS, "When the transition happened, UTC"),
        Column("rule", "LowCardinality(String)", "Alert rule name"),
        Column("fingerprint", "String", "Stable hash of the instance's label set"),
        Column("labels", "Map(String, String)", "Labels of the instance (severity, project, ...)"),
        Column(
            "state",
            "Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3)",
            "State entered",
        ),
        Column("previous_state", "Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3)", ""),
        Column("value", "Float64", "Value of the rule expression at the transition"),
        Column("active_since", "Nullable(DateTime64(3, 'UTC'))", "Start of the pending/firing episode"),
        Column("summary", "String", "Rendered summary annotation"),
        Column("description", "String", "Rendered description annotation"),
        Column("runbook_url", "String", "Where on-call finds what to do"),
    ),
    partition_by="toYYYYMM(at)",
    order_by="rule, fingerprint, at",
)

# ---------------------------------------------------------------- rollups

PROJECT_MINUTE = Table(
    name="rollup_project_minute",
    engine="AggregatingMergeTree",
    comment="Per project and minute: event counts by type, active annotators, ingest lag.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("minute", "DateTime('UTC')", "Start of the minute of occurred_at"),
        *_counts(
            ("tasks_created", "task_created events"),
            ("tasks_assigned", "task_assigned events"),
            ("annotations_started", "annotation_started events"),
            ("annotations_submitted", "annotation_submitted events"),
            ("annotations_skipped", "annotation_skipped events"),
            ("reviews_completed", "review_completed events"),
            ("tasks_completed", "task_completed events"),
            ("annotations_updated", "annotation_updated events: edits of submitted work (rework)"),
            ("annotations_deleted", "annotation_deleted events (the deleted work stays counted)"),
        ),
        Column("annotators", DISTINCT, "Distinct annotators active"),
        Column("late_events", COUNT, "Events too late for derived metrics (events.too_late)"),
        Column("ingest_lag_ms", QUANTILES_MS, "received_at - occurred_at, ms"),
        Column("last_occurred_at", f"SimpleAggregateFunction(max, {UTC_MS})", "Latest occurred_at"),
        Column("last_received_at", f"SimpleAggregateFunction(max, {UTC_MS})", "Latest received_at"),
    ),
    partition_by="toYYYYMM(minute)",
    order_by="project_id, minute",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

PROJECT_MINUTE_MV = MaterializedView(
    name="mv_rollup_project_minute",
    source=EVENTS,
    target=PROJECT_MINUTE,
    select="""
SELECT
    project_id,
    toStartOfMinute(occurred_at) AS minute,
    countIf(event_type = 'task_created') AS tasks_created,
    countIf(event_type = 'task_assigned') AS tasks_assigned,
    countIf(event_type = 'annotation_started') AS annotations_started,
    countIf(event_type = 'annotation_submitted') AS annotations_submitted,
    countIf(event_type = 'annotation_skipped') AS annotations_skipped,
    countIf(event_type = 'review_completed') AS reviews_completed,
    countIf(event_type = 'task_completed') AS tasks_completed,
    countIf(event_type = 'annotation_updated') AS annotations_updated,
    countIf(event_type = 'annotation_deleted') AS annotations_deleted,
    -- reviews, edits and deletions name whose work it was, not who was at work
    uniqStateIf(
        annotator_id,
        annotator_id != '' AND event_type NOT IN ('review_completed', 'annotation_updated', 'annotation_deleted')
    ) AS annotators,
    countIf(too_late) AS late_events,
    quantileTDigestState(toUInt32(greatest(0, dateDiff('millisecond', occurred_at, received_at))))
        AS ingest_lag_ms,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM {source}
GROUP BY project_id, minute
""",
)

SOURCE_MINUTE = Table(
    name="rollup_source_minute",
    engine="AggregatingMergeTree",
    comment=(
        "Per project, source system and minute: events and the newest of them, so every source is visible as its "
        f"own stream. Events that name no source_system count as '{metric.UNSPECIFIED_SOURCE}'."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column(
            "source_system",
            "LowCardinality(String)",
            f"Tool or producer that sent the events (events.source_system); '{metric.UNSPECIFIED_SOURCE}' when none",
        ),
        Column("minute", "DateTime('UTC')", "Start of the minute of occurred_at"),
        *_counts(("events", "Valid events of every type")),
        Column("last_occurred_at", f"SimpleAggregateFunction(max, {UTC_MS})", "Latest occurred_at"),
        Column("last_received_at", f"SimpleAggregateFunction(max, {UTC_MS})", "Latest received_at"),
    ),
    partition_by="toYYYYMM(minute)",
    order_by="project_id, source_system, minute",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

SOURCE_MINUTE_MV = MaterializedView(
    name="mv_rollup_source_minute",
    source=EVENTS,
    target=SOURCE_MINUTE,
    select=f"""
SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', '{metric.UNSPECIFIED_SOURCE}', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM {{source}} AS e
GROUP BY project_id, source_system, minute
""",
)

ANNOTATOR_HOUR = Table(
    name="rollup_annotator_hour",
    engine="AggregatingMergeTree",
    comment="Per project, annotator and hour: output, skips and handle time of annotation work.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("hour", "DateTime('UTC')", "Start of the hour of occurred_at"),
        *_counts(
            ("annotations_started", "annotation_started events"),
            ("annotations_submitted", "annotation_submitted events"),
            ("annotations_manual", "Submissions with source = manual"),
            ("annotations_model_assisted", "Submissions with source = model_assisted"),
            ("annotations_skipped", "annotation_skipped events"),
        ),
        *_signed_counts(
            ("handle_time_ms_sum", "Sum of the handle times of submissions (handle_times), ms"),
            ("handle_time_count", "Submissions with a known handle time"),
        ),
        Column("handle_time_ms_counts", VALUE_COUNTS, "How many submissions took each handle time, ms -> count"),
        Column("tasks", DISTINCT, "Distinct tasks touched"),
        Column("first_event_at", f"SimpleAggregateFunction(min, {UTC_MS})", "Earliest event"),
        Column("last_event_at", f"SimpleAggregateFunction(max, {UTC_MS})", "Latest event"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

ANNOTATOR_HOUR_MV = MaterializedView(
    name="mv_rollup_annotator_hour",
    source=EVENTS,
    target=ANNOTATOR_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(occurred_at) AS hour,
    countIf(event_type = 'annotation_started') AS annotations_started,
    countIf(event_type = 'annotation_submitted') AS annotations_submitted,
    countIf(event_type = 'annotation_submitted' AND source = 'manual') AS annotations_manual,
    countIf(event_type = 'annotation_submitted' AND source = 'model_assisted') AS annotations_model_assisted,
    countIf(event_type = 'annotation_skipped') AS annotations_skipped,
    -- handle time arrives through mv_rollup_annotator_hour_handle_times (tool-measured or derived)
    toInt64(0) AS handle_time_ms_sum,
    toInt64(0) AS handle_time_count,
    map() :: Map(UInt32, Int64) AS handle_time_ms_counts,
    uniqState(task_id) AS tasks,
    min(occurred_at) AS first_event_at,
    max(occurred_at) AS last_event_at
FROM {source}
-- reviews carry the reviewed annotator's id but are the reviewer's work: they live in the
-- review rollup
WHERE annotator_id != ''
  AND event_type IN ('annotation_started', 'annotation_submitted', 'annotation_skipped')
GROUP BY project_id, annotator_id, hour
""",
)

HANDLE_TIME_CHANGES = Table(
    name="handle_time_changes",
    comment=(
        "Changes to the handle time of submissions, as the workers derive it from each task's events "
        "sorted by time: the tool's duration_ms, else the time since the annotator's latest "
        "annotation_started before the submission. A start that arrives late can change an answer: the "
        "old row is taken back (sign -1) and the new one added. Read handle_times for the current rows."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("task_id", "String", "Task"),
        Column("submission_id", "String", "event_id of the submission"),
        Column("submitted_at", UTC_MS, "occurred_at of the submission, UTC"),
        Column("handle_time_ms", "UInt32", "Active time on the item, ms"),
        Column("measured_by", "LowCardinality(String)", "tool, or start_to_submit when derived"),
        SIGN,
        *_position("the event that changed it"),
    ),
    partition_by="toYYYYMM(submitted_at)",
    order_by="project_id, annotator_id, submitted_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

HANDLE_TIME_MV = MaterializedView(
    name="mv_rollup_annotator_hour_handle_times",
    source=HANDLE_TIME_CHANGES,
    target=ANNOTATOR_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(submitted_at) AS hour,
    toUInt64(0) AS annotations_started,
    toUInt64(0) AS annotations_submitted,
    toUInt64(0) AS annotations_manual,
    toUInt64(0) AS annotations_model_assisted,
    toUInt64(0) AS annotations_skipped,
    -- qualified: the output aliases would otherwise shadow the source columns
    sum(h.sign * toInt64(h.handle_time_ms)) AS handle_time_ms_sum,
    sum(toInt64(h.sign)) AS handle_time_count,
    sumMap(map(h.handle_time_ms, toInt64(h.sign))) AS handle_time_ms_counts,
    uniqStateIf(task_id, false) AS tasks,
    min(submitted_at) AS first_event_at,
    max(submitted_at) AS last_event_at
FROM {source} AS h
GROUP BY project_id, annotator_id, hour
""",
)

HANDLE_TIMES = as_it_stands(
    HANDLE_TIME_CHANGES,
    "handle_times",
    (
        "The handle time of every submission whose handle time is known, as it stands: measured by the tool "
        "(duration_ms), or the time from the annotator's latest annotation_started before the submission — "
        "whatever order the two arrived in (handle_time_changes, netted)."
    ),
)

LABEL_HOUR = Table(
    name="rollup_label_hour",
    engine="AggregatingMergeTree",
    comment="Per project, label class, source and hour: submissions and model pre-label agreement.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("label", "String", "Submitted label (class name or canonical JSON)"),
        Column("source", "LowCardinality(String)", "manual, model_assisted or imported"),
        Column("hour", "DateTime('UTC')", "Start of the hour of occurred_at"),
        *_counts(
            ("annotations", "annotation_submitted events"),
            ("prelabeled", "Submissions that were offered a model pre-label"),
            ("prelabel_kept", "Submissions whose label equals the model pre-label"),
        ),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, label, source, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

LABEL_HOUR_MV = MaterializedView(
    name="mv_rollup_label_hour",
    source=EVENTS,
    target=LABEL_HOUR,
    select="""
SELECT
    project_id,
    label,
    source,
    toStartOfHour(occurred_at) AS hour,
    count() AS annotations,
    countIf(model_label != '') AS prelabeled,
    countIf(model_label != '' AND label = model_label) AS prelabel_kept
FROM {source}
WHERE event_type = 'annotation_submitted'
GROUP BY project_id, label, source, hour
""",
)

REVIEW_HOUR = Table(
    name="rollup_review_hour",
    engine="AggregatingMergeTree",
    comment="Per project, reviewed annotator, reviewer, hour, verdict and reason: review outcomes.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Whose annotation was reviewed"),
        Column("reviewer_id", "String", "Who reviewed"),
        Column("hour", "DateTime('UTC')", "Start of the hour of occurred_at"),
        Column("verdict", "LowCardinality(String)", "accepted, fixed or rejected"),
        Column("reason", "String", "Reason given with the verdict"),
        *_counts(
            ("reviews", "review_completed events"),
            ("review_time_ms_sum", "Sum of duration_ms over reviews that carry it"),
            ("review_time_count", "Reviews that carry duration_ms"),
        ),
        Column("review_time_ms", QUANTILES_MS, "duration_ms of reviews"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, reviewer_id, hour, verdict, reason",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

REVIEW_HOUR_MV = MaterializedView(
    name="mv_rollup_review_hour",
    source=EVENTS,
    target=REVIEW_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    reviewer_id,
    toStartOfHour(occurred_at) AS hour,
    verdict,
    reason,
    count() AS reviews,
    toUInt64(sumIf(assumeNotNull(duration_ms), duration_ms IS NOT NULL)) AS review_time_ms_sum,
    countIf(duration_ms IS NOT NULL) AS review_time_count,
    quantileTDigestStateIf(assumeNotNull(duration_ms), duration_ms IS NOT NULL) AS review_time_ms
FROM {source}
WHERE event_type = 'review_completed'
GROUP BY project_id, annotator_id, reviewer_id, hour, verdict, reason
""",
)

GOLD_ANSWER_CHANGES = Table(
    name="gold_answer_changes",
    comment=(
        "Changes to the answers on honeypot (gold) tasks, as the workers derive them from each task's events: "
        "every submission on a task whose gold label is known — from the submission itself, else from the "
        "task's task_created, whichever arrived first. Read gold_answers for the current rows."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("task_id", "String", "Task"),
        Column("submission_id", "String", "event_id of the submission"),
        Column("answered_at", UTC_MS, "occurred_at of the submission, UTC"),
        Column("label", "String", "The submitted label"),
        Column("gold_label", "String", "The known answer"),
        Column("correct", "Bool", "label = gold_label"),
        SIGN,
        *_position("the event that changed it"),
    ),
    partition_by="toYYYYMM(answered_at)",
    order_by="project_id, annotator_id, answered_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

GOLD_HOUR = Table(
    name="rollup_gold_hour",
    engine="AggregatingMergeTree",
    comment="Per project, annotator and hour: answers on honeypot (gold) tasks and how many were right.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("hour", "DateTime('UTC')", "Start of the hour of the submission"),
        *_signed_counts(
            ("gold_answers", "Submissions on gold tasks"),
            ("gold_correct", "Submissions on gold tasks equal to the gold label"),
        ),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

GOLD_HOUR_MV = MaterializedView(
    name="mv_rollup_gold_hour",
    source=GOLD_ANSWER_CHANGES,
    target=GOLD_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(answered_at) AS hour,
    sum(toInt64(g.sign)) AS gold_answers,
    sum(g.sign * toInt64(g.correct)) AS gold_correct
FROM {source} AS g
GROUP BY project_id, annotator_id, hour
""",
)

# ---------------------------------------------------------------- analyst views

_PROJECT = Column("project_id", "LowCardinality(String)", "Project")
_ANNOTATOR = Column("annotator_id", "String", "Pseudonymous annotator")
_HOUR = Column("hour", "DateTime('UTC')", "Start of the hour, UTC")

PROJECT_THROUGHPUT_MINUTE = View(
    name="project_throughput_minute",
    comment=(
        "Throughput per project and minute, for analysts (and Superset and Grafana, see deploy/). For other buckets, "
        "sum these columns."
    ),
    columns=(
        _PROJECT,
        Column("minute", "DateTime('UTC')", "Start of the minute, UTC"),
        Column("tasks_created", "UInt64", "Tasks created"),
        Column("annotations_submitted", "UInt64", "Annotations submitted"),
        Column("annotations_skipped", "UInt64", "Annotations skipped"),
        Column("reviews_completed", "UInt64", "Reviews completed"),
        Column("tasks_completed", "UInt64", "Tasks completed"),
        Column("annotations_updated", "UInt64", "Annotations edited (rework; the edited submissions stay counted)"),
        Column("annotations_deleted", "UInt64", "Annotations deleted (the deleted submissions stay counted)"),
        Column("active_annotators", "UInt64", "Distinct annotators with annotation events (approximate)"),
        Column("late_events", "UInt64", "Events too late for derived metrics (see events.too_late)"),
        Column("ingest_lag_p50_ms", "Float64", "Median received_at - occurred_at, ms"),
        Column("ingest_lag_p95_ms", "Float64", "95th percentile of received_at - occurred_at, ms"),
        Column("last_occurred_at", UTC_MS, "Latest occurred_at in the minute"),
    ),
    select=f"""
SELECT
    project_id,
    minute,
    sum(tasks_created) AS tasks_created,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_skipped) AS annotations_skipped,
    sum(reviews_completed) AS reviews_completed,
    sum(tasks_completed) AS tasks_completed,
    sum(annotations_updated) AS annotations_updated,
    sum(annotations_deleted) AS annotations_deleted,
    uniqMerge(annotators) AS active_annotators,
    sum(late_events) AS late_events,
    {metric.ingest_lag_ms(0.5)} AS ingest_lag_p50_ms,
    {metric.ingest_lag_ms(0.95)} AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
""",
)

ANNOTATOR_PRODUCTIVITY_HOUR = View(
    name="annotator_productivity_hour",
    comment=(
        "Output and handle time per annotator and hour, for analysts (and Superset and Grafana, see deploy/). "
        "Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with "
        "sumMap and take quantileExactInclusive of the values repeated by their counts "
        "(schema.metric_definitions.exact_quantile)."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("annotations_submitted", "UInt64", "Annotations submitted"),
        Column("annotations_manual", "UInt64", "Submitted without a model pre-label (source = manual)"),
        Column("annotations_model_assisted", "UInt64", "Submitted with source = model_assisted"),
        Column("annotations_skipped", "UInt64", "Items skipped"),
        Column("skip_rate", "Nullable(Float64)", "skipped / (submitted + skipped); NULL with no work"),
        Column("handle_time_p50_ms", "Nullable(Float64)", "Median handle time per submission, ms (exact)"),
        Column("handle_time_p90_ms", "Nullable(Float64)", "90th percentile handle time per submission, ms (exact)"),
        Column("handle_time_mean_ms", "Nullable(Float64)", "Mean active time per submission, ms"),
        Column("tasks", "UInt64", "Distinct tasks touched (approximate)"),
    ),
    select=f"""
SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    {metric.SKIP_RATE.sql()} AS skip_rate,
    {metric.exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.5)} AS handle_time_p50_ms,
    {metric.exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.9)} AS handle_time_p90_ms,
    {metric.HANDLE_TIME_MEAN_MS} AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
""",
)

LABEL_THROUGHPUT_HOUR = View(
    name="label_throughput_hour",
    comment=(
        "Submissions per label class, source and hour, with model pre-label acceptance, for analysts (and Superset "
        "and Grafana, see deploy/)."
    ),
    columns=(
        _PROJECT,
        Column("label", "String", "Submitted label"),
        Column("source", "LowCardinality(String)", "manual, model_assisted or imported"),
        _HOUR,
        Column("annotations", "UInt64", "Submissions"),
        Column("prelabeled", "UInt64", "Submissions offered a model pre-label"),
        Column("prelabel_acceptance", "Nullable(Float64)", "Share of pre-labels kept unchanged"),
    ),
    select=f"""
SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    {metric.PRELABEL_ACCEPTANCE.sql()} AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
""",
)

REVIEW_OUTCOMES_HOUR = View(
    name="review_outcomes_hour",
    comment=(
        "Review verdicts per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). "
        "acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("reviewed", "UInt64", "Reviews of this annotator's work"),
        Column("accepted", "UInt64", "Verdict accepted"),
        Column("fixed", "UInt64", "Verdict fixed (accepted after the reviewer corrected it)"),
        Column("rejected", "UInt64", "Verdict rejected"),
        Column("acceptance_score", "Nullable(Float64)", "(accepted + fixed) / reviewed"),
        Column("rejection_rate", "Nullable(Float64)", "rejected / reviewed"),
        Column("review_time_p50_ms", "Nullable(Float64)", "Median review time, ms (t-digest)"),
        Column("review_time_mean_ms", "Nullable(Float64)", "Mean review time, ms"),
    ),
    select=f"""
SELECT
    project_id,
    annotator_id,
    hour,
    {metric.REVIEWED.sql()} AS reviewed,
    {metric.ACCEPTED.sql()} AS accepted,
    {metric.FIXED.sql()} AS fixed,
    {metric.REJECTED.sql()} AS rejected,
    {metric.ACCEPTANCE_SCORE.sql()} AS acceptance_score,
    {metric.REJECTION_RATE.sql()} AS rejection_rate,
    if(sum(review_time_count) = 0, NULL, quantileTDigestMerge(0.5)(review_time_ms)) AS review_time_p50_ms,
    if(sum(review_time_count) = 0, NULL, sum(review_time_ms_sum) / sum(review_time_count))
        AS review_time_mean_ms
FROM rollup_review_hour
GROUP BY project_id, annotator_id, hour
""",
)

GOLD_ACCURACY_HOUR = View(
    name="gold_accuracy_hour",
    comment=(
        "Honeypot answers per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Judge "
        "accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("gold_answers", "Int64", "Answers on gold tasks"),
        Column("gold_correct", "Int64", "Answers equal to the gold label"),
        Column("gold_accuracy", "Nullable(Float64)", "gold_correct / gold_answers"),
    ),
    select=f"""
SELECT
    project_id,
    annotator_id,
    hour,
    {metric.GOLD_ACCURACY.trials.sql()} AS gold_answers,
    {metric.GOLD_ACCURACY.successes.sql()} AS gold_correct,
    {metric.GOLD_ACCURACY.sql()} AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
""",
)

GOLD_ANSWERS = as_it_stands(
    GOLD_ANSWER_CHANGES,
    "gold_answers",
    "Every answer on a honeypot task as it stands, with the gold label and whether it was right.",
)

# ---------------------------------------------------------------- agreement (derived by the workers)

TASK_AGREEMENT_CHANGES = Table(
    name="task_agreement_changes",
    comment=(
        "Changes to the agreement statistics of tasks two or more annotators answered, from each "
        "annotator's first answer (earliest submission): label counts and agreeing pairs, from which percent "
        "agreement, Fleiss' kappa, Krippendorff's alpha and Gwet's AC1 are summed over any window. An answer "
        "that arrives later takes back the task's row (sign -1) and adds the new one. Read task_agreement "
        "for the current rows."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("labeled_at", UTC_MS, "occurred_at of the latest first answer: when the task counts, UTC"),
        Column("raters", "UInt16", "Annotators who answered the task (first answer each)"),
        Column("label_counts", "Map(String, UInt32)", "How many annotators chose each label"),
        Column("agreeing_pairs", "UInt32", "Ordered pairs of annotators with the same label: sum n(n-1)"),
        SIGN,
        *_position("the event that changed it"),
    ),
    partition_by="toYYYYMM(labeled_at)",
    order_by="project_id, labeled_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

PAIR_AGREEMENT_CHANGES = Table(
    name="pair_agreement_changes",
    comment=(
        "Changes to the first answers of every annotator pair on tasks both answered: the confusion counts "
        "of Cohen's kappa. Read pair_agreement for the current rows."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("labeled_at", UTC_MS, "occurred_at of the later of the two first answers, UTC"),
        Column("annotator_a", "String", "First annotator of the pair (a < b)"),
        Column("annotator_b", "String", "Second annotator of the pair"),
        Column("label_a", "String", "First answer of annotator_a"),
        Column("label_b", "String", "First answer of annotator_b"),
        SIGN,
        *_position("the event that changed it"),
    ),
    partition_by="toYYYYMM(labeled_at)",
    order_by="project_id, annotator_a, annotator_b, labeled_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

TASK_AGREEMENT = as_it_stands(
    TASK_AGREEMENT_CHANGES,
    "task_agreement",
    "Agreement statistics of every task two or more annotators answered, as they stand.",
    labeled_at="occurred_at of the latest first answer, UTC",
)

PAIR_AGREEMENT = as_it_stands(
    PAIR_AGREEMENT_CHANGES,
    "pair_agreement",
    "First answers of every annotator pair on tasks both answered, as they stand.",
)

_WINDOW = "labeled_at >= {from:DateTime64(3, 'UTC')} AND labeled_at < {to:DateTime64(3, 'UTC')}"

AGREEMENT_SUMMARY = View(
    name="agreement_summary",
    comment=(
        "Inter-annotator agreement per project over a window of labeled_at, from task_agreement_changes. "
        "Parameterized: SELECT * FROM agreement_summary(from='2026-11-01 00:00:00', to='2026-12-01 00:00:00'). "
        "Kappa-type values are NULL when chance agreement is 1 (a single label in the window)."
    ),
    columns=(
        _PROJECT,
        Column("tasks", "Int64", "Tasks two or more annotators answered, counted in the window"),
        Column("ratings", "Int64", "First answers on them"),
        Column("percent_agreement", "Float64", "Share of annotator pairs that agree"),
        Column("fleiss_kappa", "Nullable(Float64)", "Fleiss' kappa (generalised to varying raters per task)"),
        Column("krippendorff_alpha", "Nullable(Float64)", "Krippendorff's alpha, nominal"),
        Column("gwet_ac1", "Nullable(Float64)", "Gwet's AC1 over the labels seen in the window"),
    ),
    select=f"""
SELECT project_id, tasks, ratings, percent_agreement, fleiss_kappa, krippendorff_alpha, gwet_ac1
FROM
(
    SELECT
        project_id,
        sum(toInt64(sign)) AS tasks,
        sum(sign * toInt64(raters)) AS ratings,
        sum(sign * toInt64(agreeing_pairs)) / sum(sign * toInt64(raters) * (raters - 1)) AS percent_agreement,
        -- observed agreement: the mean over tasks of the share of agreeing pairs
        sum(sign * agreeing_pairs / (raters * (raters - 1))) / tasks AS observed,
        sumMap(mapApply((label, n) -> (label, sign * toInt64(n)), label_counts)) AS label_totals,
        arraySum(n -> n * n, mapValues(label_totals)) AS squared_label_totals,
        squared_label_totals / (ratings * ratings) AS fleiss_chance,
        if(fleiss_chance >= 1, NULL, (observed - fleiss_chance) / (1 - fleiss_chance)) AS fleiss_kappa,
        -- nominal alpha from the coincidence matrix: disagreeing pairable values over expected ones
        sum(sign * (raters * (raters - 1) - agreeing_pairs) / (raters - 1)) AS disagreement,
        if(ratings * ratings = squared_label_totals, NULL,
           1 - (ratings - 1) * disagreement / (ratings * ratings - squared_label_totals)) AS krippendorff_alpha,
        -- AC1: chance from each label's mean share per task, over the labels seen (taken-back ones are not)
        mapKeys(mapFilter((label, n) -> n != 0, label_totals)) AS labels_seen,
        sumMap(mapApply((label, n) -> (label, sign * n / raters), label_counts)) AS label_share_sums,
        arraySum(label -> (label_share_sums[label] / tasks) * (1 - label_share_sums[label] / tasks), labels_seen)
            / (length(labels_seen) - 1) AS gwet_chance,
        if(length(labels_seen) < 2 OR gwet_chance >= 1, NULL,
           (observed - gwet_chance) / (1 - gwet_chance)) AS gwet_ac1
    FROM task_agreement_changes
    WHERE {_WINDOW}
    GROUP BY project_id
    HAVING tasks > 0
)
""",
)

PAIR_KAPPA = View(
    name="pair_kappa",
    comment=(
        "Cohen's kappa per annotator pair over a window of labeled_at, from pair_agreement_changes. "
        "Parameterized like agreement_summary: SELECT * FROM pair_kappa(from='…', to='…')."
    ),
    columns=(
        _PROJECT,
        Column("annotator_a", "String", "First annotator of the pair"),
        Column("annotator_b", "String", "Second annotator of the pair"),
        Column("items", "Int64", "Tasks both answered"),
        Column("percent_agreement", "Float64", "Share of those tasks with the same first answer"),
        Column("cohen_kappa", "Nullable(Float64)", "Cohen's kappa; NULL when chance agreement is 1"),
    ),
    select=f"""
SELECT project_id, annotator_a, annotator_b, items, percent_agreement, cohen_kappa
FROM
(
    SELECT
        project_id,
        annotator_a,
        annotator_b,
        sum(toInt64(sign)) AS items,
        sumIf(toInt64(sign), label_a = label_b) / items AS percent_agreement,
        sumMap(map(label_a, toInt64(sign))) AS labels_a,
        sumMap(map(label_b, toInt64(sign))) AS labels_b,
        arraySum(label -> labels_a[label] * labels_b[label], mapKeys(labels_a)) / (items * items) AS chance,
        if(chance >= 1, NULL, (percent_agreement - chance) / (1 - chance)) AS cohen_kappa
    FROM pair_agreement_changes
    WHERE {_WINDOW}
    GROUP BY project_id, annotator_a, annotator_b
    HAVING items > 0
)
""",
)

# Dependency order: a view comes after everything it reads.

# ---------------------------------------------------------------- active time (workers' annotator state)

ACTIVE_TIME = Table(
    name="active_time",
    comment=(
        "Active time of annotators, as the workers derive it from each annotator's stream of "
        "annotation events: the gap from one event to the next counts when shorter than the idle "
        "threshold, and a longer gap (or the first event) starts a session. Rows are changes, summed "
        "per project, annotator and hour of the later event: an event that arrives late replaces one "
        "gap by two, so a row may be negative. Sum them; see annotator_active_hour."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project of the later event of each gap"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("hour", "DateTime('UTC')", "Start of the hour of the later event of each gap"),
        Column("active_ms", "Int64", "Change of active time, ms"),
        Column("sessions", "Int64", "Change of the number of sessions started"),
        Column("kafka_topic", "LowCardinality(String)", "Topic of the activity message"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Its partition"),
        Column("kafka_offset", "UInt64", "Its offset"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

ACTIVE_HOUR = Table(
    name="rollup_active_hour",
    engine="AggregatingMergeTree",
    comment="Per project, annotator and hour: active time and sessions started (sums of active_time).",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("hour", "DateTime('UTC')", "Start of the hour"),
        Column("active_ms", "SimpleAggregateFunction(sum, Int64)", "Active time, ms"),
        Column("sessions", "SimpleAggregateFunction(sum, Int64)", "Sessions started"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

ACTIVE_HOUR_MV = MaterializedView(
    name="mv_rollup_active_hour",
    source=ACTIVE_TIME,
    target=ACTIVE_HOUR,
    select="""
SELECT project_id, annotator_id, hour, sum(a.active_ms) AS active_ms, sum(a.sessions) AS sessions
FROM {source} AS a
GROUP BY project_id, annotator_id, hour
""",
)

ANNOTATOR_ACTIVE_HOUR = View(
    name="annotator_active_hour",
    comment=(
        "Active time per annotator and hour, for analysts (and Superset and Grafana, see deploy/): gaps between an "
        "annotator's annotation events shorter than the workers' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, "
        "default 100 s)."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("active_hours", "Float64", "Active time, hours"),
        Column("sessions", "Int64", "Sessions started (first event after an idle gap)"),
    ),
    select=f"""
SELECT project_id, annotator_id, hour, {metric.ACTIVE_HOURS} AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
""",
)


# ---------------------------------------------------------------- review rounds (workers' task state)

REVIEW_ROUND_CHANGES = Table(
    name="review_round_changes",
    comment=(
        "Changes to what only a task's history tells about each review, as the workers derive it from the "
        "task's reviews sorted by time. A review judges one annotator's work on the task: its round is 1 + the "
        "earlier reviews of that (task, annotator); it is first-pass accepted when accepted with no earlier "
        "rejection of that work, and a rework review when it comes after a rejection of it. A review that "
        "arrives late takes back the rows of the later ones it renumbers. Read review_rounds for the current rows."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("annotator_id", "String", "Whose work was reviewed"),
        Column("reviewer_id", "String", "Who reviewed"),
        Column("review_id", "String", "event_id of the review"),
        Column("reviewed_at", UTC_MS, "occurred_at of the review, UTC"),
        Column("round", "UInt16", "1 for the first review of this annotator's work on the task, 2 for the next, ..."),
        Column("verdict", "LowCardinality(String)", "accepted, fixed or rejected"),
        Column("first_pass_accepted", "Bool", "Accepted, and this work was never rejected before"),
        Column("rework", "Bool", "This work was rejected before: the review judges reworked work"),
        SIGN,
        *_position("the event that changed it"),
    ),
    partition_by="toYYYYMM(reviewed_at)",
    order_by="project_id, annotator_id, reviewed_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

REVIEW_ROUNDS_HOUR = Table(
    name="rollup_review_rounds_hour",
    engine="AggregatingMergeTree",
    comment="Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Whose work was reviewed"),
        Column("hour", "DateTime('UTC')", "Start of the hour of the review"),
        *_signed_counts(
            ("reviews", "Reviews"),
            ("first_pass_accepted", "Reviews accepting work never rejected before"),
            ("rework_reviews", "Reviews of work rejected before"),
        ),
        # Rounds only grow as late reviews arrive, so a max over taken-back rows is still right.
        Column("max_round", "SimpleAggregateFunction(max, UInt16)", "Most review rounds one piece of work needed"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

REVIEW_ROUNDS_HOUR_MV = MaterializedView(
    name="mv_rollup_review_rounds_hour",
    source=REVIEW_ROUND_CHANGES,
    target=REVIEW_ROUNDS_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(reviewed_at) AS hour,
    sum(toInt64(r.sign)) AS reviews,
    sum(r.sign * toInt64(r.first_pass_accepted)) AS first_pass_accepted,
    sum(r.sign * toInt64(r.rework)) AS rework_reviews,
    max(r.round) AS max_round
FROM {source} AS r
GROUP BY project_id, annotator_id, hour
""",
)

REVIEW_ROUNDS = as_it_stands(
    REVIEW_ROUND_CHANGES,
    "review_rounds",
    "Every review as it stands: its round, and whether it accepted on the first pass or judged rework.",
    rework="This work was rejected before",
)

FIRST_PASS_HOUR = View(
    name="first_pass_hour",
    comment=(
        "First-pass acceptance and rework per reviewed annotator and hour, for analysts (and Superset and Grafana, "
        "see deploy/). Sum counts over a range, then divide."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("reviews", "Int64", "Reviews"),
        Column("first_pass_accepted", "Int64", "Reviews accepting work never rejected before"),
        Column("first_pass_acceptance", "Nullable(Float64)", "first_pass_accepted / reviews"),
        Column("rework_reviews", "Int64", "Reviews of work rejected before"),
        Column("max_round", "UInt16", "Most review rounds one piece of work needed"),
    ),
    select=f"""
SELECT
    project_id,
    annotator_id,
    hour,
    {metric.FIRST_PASS_ACCEPTANCE.trials.sql()} AS reviews,
    {metric.FIRST_PASS_ACCEPTANCE.successes.sql()} AS first_pass_accepted,
    {metric.FIRST_PASS_ACCEPTANCE.sql()} AS first_pass_acceptance,
    sum(rework_reviews) AS rework_reviews,
    max(max_round) AS max_round
FROM rollup_review_rounds_hour
GROUP BY project_id, annotator_id, hour
""",
)


RAW_TABLES: tuple[Table, ...] = (
    EVENTS,
    DEAD_LETTERS,
    ALERT_HISTORY,
    HANDLE_TIME_CHANGES,
    GOLD_ANSWER_CHANGES,
    TASK_AGREEMENT_CHANGES,
    PAIR_AGREEMENT_CHANGES,
    ACTIVE_TIME,
    REVIEW_ROUND_CHANGES,
)
ROLLUPS: tuple[tuple[Table, MaterializedView], ...] = (
    (PROJECT_MINUTE, PROJECT_MINUTE_MV),
    (SOURCE_MINUTE, SOURCE_MINUTE_MV),
    (ANNOTATOR_HOUR, ANNOTATOR_HOUR_MV),
    (ANNOTATOR_HOUR, HANDLE_TIME_MV),
    (LABEL_HOUR, LABEL_HOUR_MV),
    (REVIEW_HOUR, REVIEW_HOUR_MV),
    (GOLD_HOUR, GOLD_HOUR_MV),
    (ACTIVE_HOUR, ACTIVE_HOUR_MV),
    (REVIEW_ROUNDS_HOUR, REVIEW_ROUNDS_HOUR_MV),
)
ANALYST_VIEWS: tuple[View, ...] = (
    PROJECT_THROUGHPUT_MINUTE,
    ANNOTATOR_PRODUCTIVITY_HOUR,
    LABEL_THROUGHPUT_HOUR,
    REVIEW_OUTCOMES_HOUR,
    GOLD_ACCURACY_HOUR,
    AGREEMENT_SUMMARY,
    PAIR_KAPPA,
    ANNOTATOR_ACTIVE_HOUR,
    FIRST_PASS_HOUR,
    HANDLE_TIMES,
    GOLD_ANSWERS,
    REVIEW_ROUNDS,
    TASK_AGREEMENT,
    PAIR_AGREEMENT,
)

# Every object, in dependency order: what applying every migration must produce.
ALL_OBJECTS: tuple[SchemaObject, ...] = tuple(
    {id(obj): obj for obj in (*RAW_TABLES, *(obj for rollup in ROLLUPS for obj in rollup), *ANALYST_VIEWS)}.values()
)
