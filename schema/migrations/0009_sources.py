"""Sources: events per project, source system and minute (rollup_source_minute), filled from the stored events.

Every source (a labeling tool's webhooks, the HTTP API, an import, a producer of its own) is its own stream:
the Pipeline view charts it and the `source_quiet` alert kind watches it. Events that name no source_system
count as 'unspecified'. The rollup is created with its materialized view, then filled once from `events`: run
it while no worker writes (as every migration), or events inserted in between are counted twice.

Frozen: the statements it runs, spelled out; `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    """\
CREATE TABLE IF NOT EXISTS rollup_source_minute
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `source_system` LowCardinality(String) COMMENT 'Tool or producer that sent the events (events.source_system); \\'unspecified\\' when none',
    `minute` DateTime('UTC') COMMENT 'Start of the minute of occurred_at',
    `events` SimpleAggregateFunction(sum, UInt64) COMMENT 'Valid events of every type',
    `last_occurred_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest occurred_at',
    `last_received_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest received_at'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, source_system, minute)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, source system and minute: events and the newest of them, so every source is visible as its own stream. Events that name no source_system count as \\'unspecified\\'.'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_source_minute
TO rollup_source_minute
AS SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', 'unspecified', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events AS e
GROUP BY project_id, source_system, minute\
""",
    """\
INSERT INTO rollup_source_minute
SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', 'unspecified', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events AS e
GROUP BY project_id, source_system, minute\
""",
]
FORWARDS_ON_CLUSTER: Statements = [
    """\
CREATE TABLE IF NOT EXISTS rollup_source_minute_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `source_system` LowCardinality(String) COMMENT 'Tool or producer that sent the events (events.source_system); \\'unspecified\\' when none',
    `minute` DateTime('UTC') COMMENT 'Start of the minute of occurred_at',
    `events` SimpleAggregateFunction(sum, UInt64) COMMENT 'Valid events of every type',
    `last_occurred_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest occurred_at',
    `last_received_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest received_at'
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/rollup_source_minute_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, source_system, minute)
COMMENT 'Per project, source system and minute: events and the newest of them, so every source is visible as its own stream. Events that name no source_system count as \\'unspecified\\'.'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_source_minute ON CLUSTER '__CLUSTER__' AS rollup_source_minute_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'rollup_source_minute_local', cityHash64(project_id))
COMMENT 'Per project, source system and minute: events and the newest of them, so every source is visible as its own stream. Events that name no source_system count as \\'unspecified\\'.'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_source_minute ON CLUSTER '__CLUSTER__'
TO rollup_source_minute_local
AS SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', 'unspecified', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events_local AS e
GROUP BY project_id, source_system, minute\
""",
    """\
INSERT INTO rollup_source_minute
SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', 'unspecified', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events AS e
GROUP BY project_id, source_system, minute\
""",
]
BACKWARDS: Statements = [
    """\
DROP TABLE IF EXISTS mv_rollup_source_minute SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_source_minute SYNC\
""",
]
BACKWARDS_ON_CLUSTER: Statements = [
    """\
DROP TABLE IF EXISTS mv_rollup_source_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_source_minute ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_source_minute_local ON CLUSTER '__CLUSTER__' SYNC\
""",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
