"""Every ClickHouse object LabelPulse owns, in one place, in dependency order.

Three layers:
- raw tables: `events` (every valid event, kept), `dead_letters`, `alert_history`;
- rollups: AggregatingMergeTree tables fed by materialized views, holding mergeable states
  (counts as sums, quantiles as t-digest states, distinct counts as uniq states) so any time
  range and grouping is answered without scanning raw events;
- analyst views: the rollups finalized per bucket, with a comment on every column.

Sort keys follow the questions people ask — project first, then annotator, then time —
not time alone.
"""

from __future__ import annotations

from schema.ddl import Column, MaterializedView, SchemaObject, Table, View

UTC_MS = "DateTime64(3, 'UTC')"
COUNT = "SimpleAggregateFunction(sum, UInt64)"
QUANTILES_MS = "AggregateFunction(quantileTDigest, UInt32)"
DISTINCT = "AggregateFunction(uniq, String)"

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
        Column("annotator_id", "String", "Pseudonymous annotator; for reviews, whose work was reviewed"),
        Column("reviewer_id", "String", "Pseudonymous reviewer; empty outside reviews"),
        Column("session_id", "String", "Labeling-tool session"),
        Column("stage", "LowCardinality(String)", "annotate or review; empty when not given"),
        Column("source", "LowCardinality(String)", "manual, model_assisted or imported"),
        Column("label", "String", "Class name, or canonical JSON of a structured label"),
        Column("duration_ms", "Nullable(UInt32)", "Active time the tool measured, ms"),
        Column("is_gold", "Bool", "Honeypot task with a known answer"),
        Column("gold_label", "String", "The known answer of a honeypot task"),
        Column("verdict", "LowCardinality(String)", "accepted, fixed or rejected (reviews)"),
        Column("reason", "String", "Rejection or skip reason"),
        Column("model_label", "String", "Model pre-label offered to the annotator"),
        Column("model_confidence", "Nullable(Float32)", "Model confidence in model_label, 0..1"),
        Column("extra", "String", "JSON object of fields the contract does not know"),
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
        ),
        Column("annotators", DISTINCT, "Distinct annotators active"),
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
    uniqStateIf(annotator_id, annotator_id != '' AND event_type != 'review_completed') AS annotators,
    quantileTDigestState(toUInt32(greatest(0, dateDiff('millisecond', occurred_at, received_at))))
        AS ingest_lag_ms,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM {source}
GROUP BY project_id, minute
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
            ("handle_time_ms_sum", "Sum of duration_ms over submissions that carry it"),
            ("handle_time_count", "Submissions that carry duration_ms"),
        ),
        Column("handle_time_ms", QUANTILES_MS, "duration_ms of submissions"),
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
    toUInt64(0) AS handle_time_ms_sum,
    toUInt64(0) AS handle_time_count,
    quantileTDigestStateIf(toUInt32(0), false) AS handle_time_ms,
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

HANDLE_TIMES = Table(
    name="handle_times",
    comment=(
        "One row per submission whose handle time is known: measured by the tool (duration_ms), or, "
        "when it did not measure, the time from the annotator's annotation_started to the submission — "
        "derived by the workers also when the two arrive out of order."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("task_id", "String", "Task"),
        Column("submitted_at", UTC_MS, "occurred_at of the submission, UTC"),
        Column("handle_time_ms", "UInt32", "Active time on the item, ms"),
        Column("measured_by", "LowCardinality(String)", "tool, or start_to_submit when derived"),
        Column("kafka_topic", "LowCardinality(String)", "Topic of the event that made it known"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Its partition"),
        Column("kafka_offset", "UInt64", "Its offset"),
    ),
    partition_by="toYYYYMM(submitted_at)",
    order_by="project_id, annotator_id, submitted_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

HANDLE_TIME_MV = MaterializedView(
    name="mv_rollup_annotator_hour_handle_times",
    source=HANDLE_TIMES,
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
    -- qualified: the output alias handle_time_ms would otherwise shadow the source column
    sum(toUInt64(h.handle_time_ms)) AS handle_time_ms_sum,
    count() AS handle_time_count,
    quantileTDigestState(h.handle_time_ms) AS handle_time_ms,
    uniqStateIf(task_id, false) AS tasks,
    min(submitted_at) AS first_event_at,
    max(submitted_at) AS last_event_at
FROM {source} AS h
GROUP BY project_id, annotator_id, hour
""",
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

GOLD_HOUR = Table(
    name="rollup_gold_hour",
    engine="AggregatingMergeTree",
    comment="Per project, annotator and hour: answers on honeypot (gold) tasks and how many were right.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("annotator_id", "String", "Pseudonymous annotator"),
        Column("hour", "DateTime('UTC')", "Start of the hour of occurred_at"),
        *_counts(
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
    source=EVENTS,
    target=GOLD_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(occurred_at) AS hour,
    count() AS gold_answers,
    countIf(label = gold_label) AS gold_correct
FROM {source}
-- workers copy is_gold and gold_label from the task onto each submission
WHERE event_type = 'annotation_submitted' AND is_gold AND gold_label != ''
GROUP BY project_id, annotator_id, hour
""",
)

# ---------------------------------------------------------------- analyst views

_PROJECT = Column("project_id", "LowCardinality(String)", "Project")
_ANNOTATOR = Column("annotator_id", "String", "Pseudonymous annotator")
_HOUR = Column("hour", "DateTime('UTC')", "Start of the hour, UTC")

PROJECT_THROUGHPUT_MINUTE = View(
    name="project_throughput_minute",
    comment="Throughput per project and minute. For other buckets, sum these columns.",
    columns=(
        _PROJECT,
        Column("minute", "DateTime('UTC')", "Start of the minute, UTC"),
        Column("tasks_created", "UInt64", "Tasks created"),
        Column("annotations_submitted", "UInt64", "Annotations submitted"),
        Column("annotations_skipped", "UInt64", "Annotations skipped"),
        Column("reviews_completed", "UInt64", "Reviews completed"),
        Column("tasks_completed", "UInt64", "Tasks completed"),
        Column("active_annotators", "UInt64", "Distinct annotators with annotation events (approximate)"),
        Column("ingest_lag_p50_ms", "Float64", "Median received_at - occurred_at, ms"),
        Column("ingest_lag_p95_ms", "Float64", "95th percentile of received_at - occurred_at, ms"),
        Column("last_occurred_at", UTC_MS, "Latest occurred_at in the minute"),
    ),
    select="""
SELECT
    project_id,
    minute,
    sum(tasks_created) AS tasks_created,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_skipped) AS annotations_skipped,
    sum(reviews_completed) AS reviews_completed,
    sum(tasks_completed) AS tasks_completed,
    uniqMerge(annotators) AS active_annotators,
    quantileTDigestMerge(0.5)(ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
""",
)

ANNOTATOR_PRODUCTIVITY_HOUR = View(
    name="annotator_productivity_hour",
    comment=(
        "Output and handle time per annotator and hour. Quantiles are per hour; for other "
        "ranges merge rollup_annotator_hour.handle_time_ms with quantileTDigestMerge."
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
        Column("handle_time_p50_ms", "Nullable(Float64)", "Median active time per submission, ms (t-digest)"),
        Column("handle_time_p90_ms", "Nullable(Float64)", "90th percentile active time per submission, ms"),
        Column("handle_time_mean_ms", "Nullable(Float64)", "Mean active time per submission, ms"),
        Column("tasks", "UInt64", "Distinct tasks touched (approximate)"),
    ),
    select="""
SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    if(annotations_submitted + annotations_skipped = 0, NULL,
       annotations_skipped / (annotations_submitted + annotations_skipped)) AS skip_rate,
    if(sum(handle_time_count) = 0, NULL, quantileTDigestMerge(0.5)(handle_time_ms)) AS handle_time_p50_ms,
    if(sum(handle_time_count) = 0, NULL, quantileTDigestMerge(0.9)(handle_time_ms)) AS handle_time_p90_ms,
    if(sum(handle_time_count) = 0, NULL, sum(handle_time_ms_sum) / sum(handle_time_count))
        AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
""",
)

LABEL_THROUGHPUT_HOUR = View(
    name="label_throughput_hour",
    comment="Submissions per label class, source and hour, with model pre-label acceptance.",
    columns=(
        _PROJECT,
        Column("label", "String", "Submitted label"),
        Column("source", "LowCardinality(String)", "manual, model_assisted or imported"),
        _HOUR,
        Column("annotations", "UInt64", "Submissions"),
        Column("prelabeled", "UInt64", "Submissions offered a model pre-label"),
        Column("prelabel_acceptance", "Nullable(Float64)", "Share of pre-labels kept unchanged"),
    ),
    select="""
SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    if(prelabeled = 0, NULL, sum(prelabel_kept) / prelabeled) AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
""",
)

REVIEW_OUTCOMES_HOUR = View(
    name="review_outcomes_hour",
    comment=(
        "Review verdicts per reviewed annotator and hour. acceptance_score = (accepted + fixed) / "
        "reviewed; rejection_rate = rejected / reviewed."
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
    select="""
SELECT
    project_id,
    annotator_id,
    hour,
    sum(reviews) AS reviewed,
    sumIf(reviews, verdict = 'accepted') AS accepted,
    sumIf(reviews, verdict = 'fixed') AS fixed,
    sumIf(reviews, verdict = 'rejected') AS rejected,
    if(reviewed = 0, NULL, (accepted + fixed) / reviewed) AS acceptance_score,
    if(reviewed = 0, NULL, rejected / reviewed) AS rejection_rate,
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
        "Honeypot answers per annotator and hour. Judge accuracy over enough items: sum "
        "gold_answers and gold_correct over the range first, then divide."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("gold_answers", "UInt64", "Answers on gold tasks"),
        Column("gold_correct", "UInt64", "Answers equal to the gold label"),
        Column("gold_accuracy", "Nullable(Float64)", "gold_correct / gold_answers"),
    ),
    select="""
SELECT
    project_id,
    annotator_id,
    hour,
    sum(gold_answers) AS gold_answers,
    sum(gold_correct) AS gold_correct,
    if(gold_answers = 0, NULL, gold_correct / gold_answers) AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
""",
)

# ---------------------------------------------------------------- agreement (derived by the workers)

_KAFKA_POSITION = (
    Column("kafka_topic", "LowCardinality(String)", "Topic of the event that completed the task"),
    KAFKA_TOPIC_ID,
    Column("kafka_partition", "UInt32", "Its partition"),
    Column("kafka_offset", "UInt64", "Its offset"),
)

TASK_AGREEMENT = Table(
    name="task_agreement",
    comment=(
        "One row per completed task labeled by two or more annotators: the sufficient statistics from which "
        "percent agreement, Fleiss' kappa, Krippendorff's alpha and Gwet's AC1 are summed over any window."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("completed_at", UTC_MS, "occurred_at of task_completed, UTC"),
        Column("raters", "UInt16", "Annotators who labeled the task (first submission each)"),
        Column("label_counts", "Map(String, UInt32)", "How many annotators chose each label"),
        Column("agreeing_pairs", "UInt32", "Ordered pairs of annotators with the same label: sum n(n-1)"),
        *_KAFKA_POSITION,
    ),
    partition_by="toYYYYMM(completed_at)",
    order_by="project_id, completed_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

PAIR_AGREEMENT = Table(
    name="pair_agreement",
    comment="One row per annotator pair per completed overlapping task: the confusion counts of Cohen's kappa.",
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("completed_at", UTC_MS, "occurred_at of task_completed, UTC"),
        Column("annotator_a", "String", "First annotator of the pair (a < b)"),
        Column("annotator_b", "String", "Second annotator of the pair"),
        Column("label_a", "String", "Label chosen by annotator_a"),
        Column("label_b", "String", "Label chosen by annotator_b"),
        *_KAFKA_POSITION,
    ),
    partition_by="toYYYYMM(completed_at)",
    order_by="project_id, annotator_a, annotator_b, completed_at",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

_WINDOW = "completed_at >= {from:DateTime64(3, 'UTC')} AND completed_at < {to:DateTime64(3, 'UTC')}"

AGREEMENT_SUMMARY = View(
    name="agreement_summary",
    comment=(
        "Inter-annotator agreement per project over a window, from task_agreement. Parameterized: "
        "SELECT * FROM agreement_summary(from='2026-11-01 00:00:00', to='2026-12-01 00:00:00'). "
        "Kappa-type values are NULL when chance agreement is 1 (a single label in the window)."
    ),
    columns=(
        _PROJECT,
        Column("tasks", "UInt64", "Overlapping tasks completed in the window"),
        Column("ratings", "UInt64", "Labels given on them"),
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
        count() AS tasks,
        sum(raters) AS ratings,
        sum(agreeing_pairs) / sum(raters * (raters - 1)) AS percent_agreement,
        -- observed agreement: the mean over tasks of the share of agreeing pairs
        avg(agreeing_pairs / (raters * (raters - 1))) AS observed,
        arraySum(n -> n * n, mapValues(sumMap(label_counts))) AS squared_label_totals,
        squared_label_totals / (ratings * ratings) AS fleiss_chance,
        if(fleiss_chance >= 1, NULL, (observed - fleiss_chance) / (1 - fleiss_chance)) AS fleiss_kappa,
        -- nominal alpha from the coincidence matrix: disagreeing pairable values over expected ones
        sum((raters * (raters - 1) - agreeing_pairs) / (raters - 1)) AS disagreement,
        if(ratings * ratings = squared_label_totals, NULL,
           1 - (ratings - 1) * disagreement / (ratings * ratings - squared_label_totals)) AS krippendorff_alpha,
        -- AC1: chance from each label's mean share per task, over the labels seen
        mapValues(sumMap(mapApply((label, n) -> (label, n / raters), label_counts))) AS label_share_sums,
        arraySum(share -> (share / tasks) * (1 - share / tasks), label_share_sums)
            / (length(label_share_sums) - 1) AS gwet_chance,
        if(length(label_share_sums) < 2 OR gwet_chance >= 1, NULL,
           (observed - gwet_chance) / (1 - gwet_chance)) AS gwet_ac1
    FROM task_agreement
    WHERE {_WINDOW}
    GROUP BY project_id
)
""",
)

PAIR_KAPPA = View(
    name="pair_kappa",
    comment=(
        "Cohen's kappa per annotator pair over a window, from pair_agreement. Parameterized like "
        "agreement_summary: SELECT * FROM pair_kappa(from='…', to='…')."
    ),
    columns=(
        _PROJECT,
        Column("annotator_a", "String", "First annotator of the pair"),
        Column("annotator_b", "String", "Second annotator of the pair"),
        Column("items", "UInt64", "Tasks both labeled"),
        Column("percent_agreement", "Float64", "Share of those tasks with the same label"),
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
        count() AS items,
        countIf(label_a = label_b) / items AS percent_agreement,
        sumMap(map(label_a, toUInt64(1))) AS labels_a,
        sumMap(map(label_b, toUInt64(1))) AS labels_b,
        arraySum(label -> labels_a[label] * labels_b[label], mapKeys(labels_a)) / (items * items) AS chance,
        if(chance >= 1, NULL, (percent_agreement - chance) / (1 - chance)) AS cohen_kappa
    FROM pair_agreement
    WHERE {_WINDOW}
    GROUP BY project_id, annotator_a, annotator_b
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
        "Active time per annotator and hour: gaps between an annotator's annotation events shorter "
        "than the workers' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s)."
    ),
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("active_hours", "Float64", "Active time, hours"),
        Column("sessions", "Int64", "Sessions started (first event after an idle gap)"),
    ),
    select="""
SELECT project_id, annotator_id, hour, sum(active_ms) / 3600000 AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
""",
)


# ---------------------------------------------------------------- review rounds (workers' task state)

REVIEW_ROUNDS = Table(
    name="review_rounds",
    comment=(
        "One row per review, with what only the task's history tells: which round of review it was, "
        "and whether it accepted the work with no earlier rejection (first-pass acceptance)."
    ),
    columns=(
        Column("project_id", "LowCardinality(String)", "Project"),
        Column("task_id", "String", "Task"),
        Column("annotator_id", "String", "Whose work was reviewed"),
        Column("reviewer_id", "String", "Who reviewed"),
        Column("reviewed_at", UTC_MS, "occurred_at of the review, UTC"),
        Column("round", "UInt16", "1 for the task's first review, 2 for the next, ..."),
        Column("verdict", "LowCardinality(String)", "accepted, fixed or rejected"),
        Column("first_pass_accepted", "Bool", "Accepted, and the task was never rejected before"),
        Column("kafka_topic", "LowCardinality(String)", "Topic of the review event"),
        KAFKA_TOPIC_ID,
        Column("kafka_partition", "UInt32", "Its partition"),
        Column("kafka_offset", "UInt64", "Its offset"),
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
        *_counts(
            ("reviews", "Reviews"),
            ("first_pass_accepted", "Reviews accepting work never rejected before"),
            ("rework_reviews", "Reviews in round 2 or later (the work came back)"),
        ),
        Column("max_round", "SimpleAggregateFunction(max, UInt16)", "Most review rounds a task needed"),
    ),
    partition_by="toYYYYMM(hour)",
    order_by="project_id, annotator_id, hour",
    shard_by="cityHash64(project_id)",
    settings=DEDUP_SETTINGS,
)

REVIEW_ROUNDS_HOUR_MV = MaterializedView(
    name="mv_rollup_review_rounds_hour",
    source=REVIEW_ROUNDS,
    target=REVIEW_ROUNDS_HOUR,
    select="""
SELECT
    project_id,
    annotator_id,
    toStartOfHour(reviewed_at) AS hour,
    count() AS reviews,
    countIf(r.first_pass_accepted) AS first_pass_accepted,
    countIf(r.round > 1) AS rework_reviews,
    max(r.round) AS max_round
FROM {source} AS r
GROUP BY project_id, annotator_id, hour
""",
)

FIRST_PASS_HOUR = View(
    name="first_pass_hour",
    comment="First-pass acceptance and rework per reviewed annotator and hour. Sum counts over a range, then divide.",
    columns=(
        _PROJECT,
        _ANNOTATOR,
        _HOUR,
        Column("reviews", "UInt64", "Reviews"),
        Column("first_pass_accepted", "UInt64", "Reviews accepting work never rejected before"),
        Column("first_pass_acceptance", "Nullable(Float64)", "first_pass_accepted / reviews"),
        Column("rework_reviews", "UInt64", "Reviews in round 2 or later"),
        Column("max_round", "UInt16", "Most review rounds a task needed"),
    ),
    select="""
SELECT
    project_id,
    annotator_id,
    hour,
    sum(reviews) AS reviews,
    sum(first_pass_accepted) AS first_pass_accepted,
    if(reviews = 0, NULL, first_pass_accepted / reviews) AS first_pass_acceptance,
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
    HANDLE_TIMES,
    TASK_AGREEMENT,
    PAIR_AGREEMENT,
    ACTIVE_TIME,
    REVIEW_ROUNDS,
)
ROLLUPS: tuple[tuple[Table, MaterializedView], ...] = (
    (PROJECT_MINUTE, PROJECT_MINUTE_MV),
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
)

# Every object, in dependency order: what applying every migration must produce.
ALL_OBJECTS: tuple[SchemaObject, ...] = tuple(
    {id(obj): obj for obj in (*RAW_TABLES, *(obj for rollup in ROLLUPS for obj in rollup), *ANALYST_VIEWS)}.values()
)
