"""Review rounds derived by the workers (first-pass acceptance, rework), their rollup and view.

Frozen: the statements it ran when it was written, not rendered from today's schema.tables, so that a
fresh install and an upgraded one run the same DDL. `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    """\
CREATE TABLE IF NOT EXISTS review_rounds
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `reviewed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the review, UTC',
    `round` UInt16 COMMENT '1 for the task\\'s first review, 2 for the next, ...',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected',
    `first_pass_accepted` Bool COMMENT 'Accepted, and the task was never rejected before',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the review event',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(reviewed_at)
ORDER BY (project_id, annotator_id, reviewed_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'One row per review, with what only the task\\'s history tells: which round of review it was, and whether it accepted the work with no earlier rejection (first-pass acceptance).'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_review_rounds_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the review',
    `reviews` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews',
    `first_pass_accepted` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews accepting work never rejected before',
    `rework_reviews` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews in round 2 or later (the work came back)',
    `max_round` SimpleAggregateFunction(max, UInt16) COMMENT 'Most review rounds a task needed'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_review_rounds_hour
TO rollup_review_rounds_hour
AS SELECT
    project_id,
    annotator_id,
    toStartOfHour(reviewed_at) AS hour,
    count() AS reviews,
    countIf(r.first_pass_accepted) AS first_pass_accepted,
    countIf(r.round > 1) AS rework_reviews,
    max(r.round) AS max_round
FROM review_rounds AS r
GROUP BY project_id, annotator_id, hour\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` UInt64 COMMENT 'Reviews',
    `first_pass_accepted` UInt64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` UInt64 COMMENT 'Reviews in round 2 or later',
    `max_round` UInt16 COMMENT 'Most review rounds a task needed'
)
AS SELECT
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
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour. Sum counts over a range, then divide.'\
""",
]
FORWARDS_ON_CLUSTER: Statements = [
    """\
CREATE TABLE IF NOT EXISTS review_rounds_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `reviewed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the review, UTC',
    `round` UInt16 COMMENT '1 for the task\\'s first review, 2 for the next, ...',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected',
    `first_pass_accepted` Bool COMMENT 'Accepted, and the task was never rejected before',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the review event',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/review_rounds_local', '{replica}')
PARTITION BY toYYYYMM(reviewed_at)
ORDER BY (project_id, annotator_id, reviewed_at)
COMMENT 'One row per review, with what only the task\\'s history tells: which round of review it was, and whether it accepted the work with no earlier rejection (first-pass acceptance).'\
""",
    """\
CREATE TABLE IF NOT EXISTS review_rounds ON CLUSTER '__CLUSTER__' AS review_rounds_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'review_rounds_local', cityHash64(project_id))
COMMENT 'One row per review, with what only the task\\'s history tells: which round of review it was, and whether it accepted the work with no earlier rejection (first-pass acceptance).'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_review_rounds_hour_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the review',
    `reviews` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews',
    `first_pass_accepted` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews accepting work never rejected before',
    `rework_reviews` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews in round 2 or later (the work came back)',
    `max_round` SimpleAggregateFunction(max, UInt16) COMMENT 'Most review rounds a task needed'
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/rollup_review_rounds_hour_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
COMMENT 'Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.'\
""",
    """\
CREATE TABLE IF NOT EXISTS rollup_review_rounds_hour ON CLUSTER '__CLUSTER__' AS rollup_review_rounds_hour_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'rollup_review_rounds_hour_local', cityHash64(project_id))
COMMENT 'Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.'\
""",
    """\
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_review_rounds_hour ON CLUSTER '__CLUSTER__'
TO rollup_review_rounds_hour_local
AS SELECT
    project_id,
    annotator_id,
    toStartOfHour(reviewed_at) AS hour,
    count() AS reviews,
    countIf(r.first_pass_accepted) AS first_pass_accepted,
    countIf(r.round > 1) AS rework_reviews,
    max(r.round) AS max_round
FROM review_rounds_local AS r
GROUP BY project_id, annotator_id, hour\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` UInt64 COMMENT 'Reviews',
    `first_pass_accepted` UInt64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` UInt64 COMMENT 'Reviews in round 2 or later',
    `max_round` UInt16 COMMENT 'Most review rounds a task needed'
)
AS SELECT
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
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour. Sum counts over a range, then divide.'\
""",
]
BACKWARDS: Statements = [
    """\
DROP VIEW IF EXISTS first_pass_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_review_rounds_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_review_rounds_hour SYNC\
""",
    """\
DROP TABLE IF EXISTS review_rounds SYNC\
""",
]
BACKWARDS_ON_CLUSTER: Statements = [
    """\
DROP VIEW IF EXISTS first_pass_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS mv_rollup_review_rounds_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_review_rounds_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS rollup_review_rounds_hour_local ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS review_rounds ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS review_rounds_local ON CLUSTER '__CLUSTER__' SYNC\
""",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
