"""Annotators' active time derived by the workers, its hourly rollup and analyst view.

Frozen: the statements it ran when it was written, not rendered from today's schema.tables, so that a
fresh install and an upgraded one run the same DDL. `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    """\
CREATE TABLE IF NOT EXISTS active_time
(
    `project_id` LowCardinality(String) COMMENT 'Project of the later event of each gap',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the later event of each gap',
    `active_ms` Int64 COMMENT 'Change of active time, ms',
    `sessions` Int64 COMMENT 'Change of the number of sessions started',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the activity message',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Active time of annotators, as the workers derive it from each annotator\\'s stream of annotation events: the gap from one event to the next counts when shorter than the idle threshold, and a longer gap (or the first event) starts a session. Rows are changes, summed per project, annotator and hour of the later event: an event that arrives late replaces one gap by two, so a row may be negative. Sum them; see annotator_active_hour.'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_active_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour',
    `active_ms` SimpleAggregateFunction(sum, Int64) COMMENT 'Active time, ms',
    `sessions` SimpleAggregateFunction(sum, Int64) COMMENT 'Sessions started'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, annotator and hour: active time and sessions started (sums of active_time).'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_active_hour
TO rollup_active_hour
AS SELECT project_id, annotator_id, hour, sum(a.active_ms) AS active_ms, sum(a.sessions) AS sessions
FROM active_time AS a
GROUP BY project_id, annotator_id, hour\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_active_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `active_hours` Float64 COMMENT 'Active time, hours',
    `sessions` Int64 COMMENT 'Sessions started (first event after an idle gap)'
)
AS SELECT project_id, annotator_id, hour, sum(active_ms) / 3600000 AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Active time per annotator and hour: gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'\
""",
]
FORWARDS_ON_CLUSTER: Statements = [
    """\
CREATE TABLE IF NOT EXISTS active_time_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project of the later event of each gap',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the later event of each gap',
    `active_ms` Int64 COMMENT 'Change of active time, ms',
    `sessions` Int64 COMMENT 'Change of the number of sessions started',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the activity message',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/active_time_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
COMMENT 'Active time of annotators, as the workers derive it from each annotator\\'s stream of annotation events: the gap from one event to the next counts when shorter than the idle threshold, and a longer gap (or the first event) starts a session. Rows are changes, summed per project, annotator and hour of the later event: an event that arrives late replaces one gap by two, so a row may be negative. Sum them; see annotator_active_hour.'\
""",
    """\
CREATE TABLE IF NOT EXISTS active_time ON CLUSTER '__CLUSTER__' AS active_time_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'active_time_local', cityHash64(project_id))
COMMENT 'Active time of annotators, as the workers derive it from each annotator\\'s stream of annotation events: the gap from one event to the next counts when shorter than the idle threshold, and a longer gap (or the first event) starts a session. Rows are changes, summed per project, annotator and hour of the later event: an event that arrives late replaces one gap by two, so a row may be negative. Sum them; see annotator_active_hour.'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_active_hour_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour',
    `active_ms` SimpleAggregateFunction(sum, Int64) COMMENT 'Active time, ms',
    `sessions` SimpleAggregateFunction(sum, Int64) COMMENT 'Sessions started'
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/rollup_active_hour_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
COMMENT 'Per project, annotator and hour: active time and sessions started (sums of active_time).'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_active_hour ON CLUSTER '__CLUSTER__' AS rollup_active_hour_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'rollup_active_hour_local', cityHash64(project_id))
COMMENT 'Per project, annotator and hour: active time and sessions started (sums of active_time).'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_active_hour ON CLUSTER '__CLUSTER__'
TO rollup_active_hour_local
AS SELECT project_id, annotator_id, hour, sum(a.active_ms) AS active_ms, sum(a.sessions) AS sessions
FROM active_time_local AS a
GROUP BY project_id, annotator_id, hour\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_active_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `active_hours` Float64 COMMENT 'Active time, hours',
    `sessions` Int64 COMMENT 'Sessions started (first event after an idle gap)'
)
AS SELECT project_id, annotator_id, hour, sum(active_ms) / 3600000 AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Active time per annotator and hour: gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'\
""",
]
BACKWARDS: Statements = [
    """\
DROP VIEW IF EXISTS annotator_active_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_active_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_active_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS active_time SYNC\
""",
]
BACKWARDS_ON_CLUSTER: Statements = [
    """\
DROP VIEW IF EXISTS annotator_active_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_active_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_active_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_active_hour_local ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS active_time ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS active_time_local ON CLUSTER '__CLUSTER__' SYNC\
""",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
