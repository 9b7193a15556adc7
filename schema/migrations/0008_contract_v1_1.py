"""Contract v1.1: events keep annotation_id and source_system; edits and deletions counted per project and minute.

Frozen: the statements it ran when it was written, not rendered from today's schema.tables, so that a
fresh install and an upgraded one run the same DDL. `__CLUSTER__` stands for the cluster's name. The
materialized view is dropped and created again to count the new event types: run it while no worker writes
(as every migration), or events inserted in between miss rollup_project_minute.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    """\
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS `annotation_id` String DEFAULT '' COMMENT 'The tool\\'s id of the annotation an edit or deletion is about (v1.1)' AFTER task_id,
    ADD COLUMN IF NOT EXISTS `source_system` LowCardinality(String) DEFAULT '' COMMENT 'Tool or producer that sent the event: label-studio, cvat, labelbox, api, ...; empty when not given (v1.1)' AFTER source\
""",
    """\
ALTER TABLE rollup_project_minute
    ADD COLUMN IF NOT EXISTS `annotations_updated` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_updated events: edits of submitted work (rework)' AFTER tasks_completed,
    ADD COLUMN IF NOT EXISTS `annotations_deleted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_deleted events (the deleted work stays counted)' AFTER annotations_updated\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_project_minute SYNC\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_project_minute
TO rollup_project_minute
AS SELECT
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
FROM events
GROUP BY project_id, minute\
""",
    """\
DROP VIEW IF EXISTS project_throughput_minute SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS project_throughput_minute
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `minute` DateTime('UTC') COMMENT 'Start of the minute, UTC',
    `tasks_created` UInt64 COMMENT 'Tasks created',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_skipped` UInt64 COMMENT 'Annotations skipped',
    `reviews_completed` UInt64 COMMENT 'Reviews completed',
    `tasks_completed` UInt64 COMMENT 'Tasks completed',
    `annotations_updated` UInt64 COMMENT 'Annotations edited (rework; the edited submissions stay counted)',
    `annotations_deleted` UInt64 COMMENT 'Annotations deleted (the deleted submissions stay counted)',
    `active_annotators` UInt64 COMMENT 'Distinct annotators with annotation events (approximate)',
    `late_events` UInt64 COMMENT 'Events too late for derived metrics (see events.too_late)',
    `ingest_lag_p50_ms` Float64 COMMENT 'Median received_at - occurred_at, ms',
    `ingest_lag_p95_ms` Float64 COMMENT '95th percentile of received_at - occurred_at, ms',
    `last_occurred_at` DateTime64(3, 'UTC') COMMENT 'Latest occurred_at in the minute'
)
AS SELECT
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
    quantileTDigestMerge(0.5)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'\
""",
]
FORWARDS_ON_CLUSTER: Statements = [
    """\
ALTER TABLE events_local ON CLUSTER '__CLUSTER__'
    ADD COLUMN IF NOT EXISTS `annotation_id` String DEFAULT '' COMMENT 'The tool\\'s id of the annotation an edit or deletion is about (v1.1)' AFTER task_id,
    ADD COLUMN IF NOT EXISTS `source_system` LowCardinality(String) DEFAULT '' COMMENT 'Tool or producer that sent the event: label-studio, cvat, labelbox, api, ...; empty when not given (v1.1)' AFTER source\
""",
    """\
ALTER TABLE events ON CLUSTER '__CLUSTER__'
    ADD COLUMN IF NOT EXISTS `annotation_id` String DEFAULT '' COMMENT 'The tool\\'s id of the annotation an edit or deletion is about (v1.1)' AFTER task_id,
    ADD COLUMN IF NOT EXISTS `source_system` LowCardinality(String) DEFAULT '' COMMENT 'Tool or producer that sent the event: label-studio, cvat, labelbox, api, ...; empty when not given (v1.1)' AFTER source\
""",
    """\
ALTER TABLE rollup_project_minute_local ON CLUSTER '__CLUSTER__'
    ADD COLUMN IF NOT EXISTS `annotations_updated` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_updated events: edits of submitted work (rework)' AFTER tasks_completed,
    ADD COLUMN IF NOT EXISTS `annotations_deleted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_deleted events (the deleted work stays counted)' AFTER annotations_updated\
""",
    """\
ALTER TABLE rollup_project_minute ON CLUSTER '__CLUSTER__'
    ADD COLUMN IF NOT EXISTS `annotations_updated` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_updated events: edits of submitted work (rework)' AFTER tasks_completed,
    ADD COLUMN IF NOT EXISTS `annotations_deleted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_deleted events (the deleted work stays counted)' AFTER annotations_updated\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_project_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_project_minute ON CLUSTER '__CLUSTER__'
TO rollup_project_minute_local
AS SELECT
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
FROM events_local
GROUP BY project_id, minute\
""",
    """\
DROP VIEW IF EXISTS project_throughput_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS project_throughput_minute ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `minute` DateTime('UTC') COMMENT 'Start of the minute, UTC',
    `tasks_created` UInt64 COMMENT 'Tasks created',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_skipped` UInt64 COMMENT 'Annotations skipped',
    `reviews_completed` UInt64 COMMENT 'Reviews completed',
    `tasks_completed` UInt64 COMMENT 'Tasks completed',
    `annotations_updated` UInt64 COMMENT 'Annotations edited (rework; the edited submissions stay counted)',
    `annotations_deleted` UInt64 COMMENT 'Annotations deleted (the deleted submissions stay counted)',
    `active_annotators` UInt64 COMMENT 'Distinct annotators with annotation events (approximate)',
    `late_events` UInt64 COMMENT 'Events too late for derived metrics (see events.too_late)',
    `ingest_lag_p50_ms` Float64 COMMENT 'Median received_at - occurred_at, ms',
    `ingest_lag_p95_ms` Float64 COMMENT '95th percentile of received_at - occurred_at, ms',
    `last_occurred_at` DateTime64(3, 'UTC') COMMENT 'Latest occurred_at in the minute'
)
AS SELECT
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
    quantileTDigestMerge(0.5)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'\
""",
]
BACKWARDS: Statements = [
    """\
DROP VIEW IF EXISTS project_throughput_minute SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_project_minute SYNC\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_project_minute
TO rollup_project_minute
AS SELECT
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
    countIf(too_late) AS late_events,
    quantileTDigestState(toUInt32(greatest(0, dateDiff('millisecond', occurred_at, received_at))))
        AS ingest_lag_ms,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events
GROUP BY project_id, minute\
""",
    """\
CREATE VIEW IF NOT EXISTS project_throughput_minute
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `minute` DateTime('UTC') COMMENT 'Start of the minute, UTC',
    `tasks_created` UInt64 COMMENT 'Tasks created',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_skipped` UInt64 COMMENT 'Annotations skipped',
    `reviews_completed` UInt64 COMMENT 'Reviews completed',
    `tasks_completed` UInt64 COMMENT 'Tasks completed',
    `active_annotators` UInt64 COMMENT 'Distinct annotators with annotation events (approximate)',
    `late_events` UInt64 COMMENT 'Events too late for derived metrics (see events.too_late)',
    `ingest_lag_p50_ms` Float64 COMMENT 'Median received_at - occurred_at, ms',
    `ingest_lag_p95_ms` Float64 COMMENT '95th percentile of received_at - occurred_at, ms',
    `last_occurred_at` DateTime64(3, 'UTC') COMMENT 'Latest occurred_at in the minute'
)
AS SELECT
    project_id,
    minute,
    sum(tasks_created) AS tasks_created,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_skipped) AS annotations_skipped,
    sum(reviews_completed) AS reviews_completed,
    sum(tasks_completed) AS tasks_completed,
    uniqMerge(annotators) AS active_annotators,
    sum(late_events) AS late_events,
    quantileTDigestMerge(0.5)(ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute. For other buckets, sum these columns.'\
""",
    """\
ALTER TABLE rollup_project_minute DROP COLUMN IF EXISTS annotations_deleted, DROP COLUMN IF EXISTS annotations_updated\
""",
    """\
ALTER TABLE events DROP COLUMN IF EXISTS source_system, DROP COLUMN IF EXISTS annotation_id\
""",
]
BACKWARDS_ON_CLUSTER: Statements = [
    """\
DROP VIEW IF EXISTS project_throughput_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_project_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_project_minute ON CLUSTER '__CLUSTER__'
TO rollup_project_minute_local
AS SELECT
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
    countIf(too_late) AS late_events,
    quantileTDigestState(toUInt32(greatest(0, dateDiff('millisecond', occurred_at, received_at))))
        AS ingest_lag_ms,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events_local
GROUP BY project_id, minute\
""",
    """\
CREATE VIEW IF NOT EXISTS project_throughput_minute ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `minute` DateTime('UTC') COMMENT 'Start of the minute, UTC',
    `tasks_created` UInt64 COMMENT 'Tasks created',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_skipped` UInt64 COMMENT 'Annotations skipped',
    `reviews_completed` UInt64 COMMENT 'Reviews completed',
    `tasks_completed` UInt64 COMMENT 'Tasks completed',
    `active_annotators` UInt64 COMMENT 'Distinct annotators with annotation events (approximate)',
    `late_events` UInt64 COMMENT 'Events too late for derived metrics (see events.too_late)',
    `ingest_lag_p50_ms` Float64 COMMENT 'Median received_at - occurred_at, ms',
    `ingest_lag_p95_ms` Float64 COMMENT '95th percentile of received_at - occurred_at, ms',
    `last_occurred_at` DateTime64(3, 'UTC') COMMENT 'Latest occurred_at in the minute'
)
AS SELECT
    project_id,
    minute,
    sum(tasks_created) AS tasks_created,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_skipped) AS annotations_skipped,
    sum(reviews_completed) AS reviews_completed,
    sum(tasks_completed) AS tasks_completed,
    uniqMerge(annotators) AS active_annotators,
    sum(late_events) AS late_events,
    quantileTDigestMerge(0.5)(ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute. For other buckets, sum these columns.'\
""",
    """\
ALTER TABLE rollup_project_minute ON CLUSTER '__CLUSTER__' DROP COLUMN IF EXISTS annotations_deleted, DROP COLUMN IF EXISTS annotations_updated\
""",
    """\
ALTER TABLE rollup_project_minute_local ON CLUSTER '__CLUSTER__' DROP COLUMN IF EXISTS annotations_deleted, DROP COLUMN IF EXISTS annotations_updated\
""",
    """\
ALTER TABLE events ON CLUSTER '__CLUSTER__' DROP COLUMN IF EXISTS source_system, DROP COLUMN IF EXISTS annotation_id\
""",
    """\
ALTER TABLE events_local ON CLUSTER '__CLUSTER__' DROP COLUMN IF EXISTS source_system, DROP COLUMN IF EXISTS annotation_id\
""",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
