"""Per-task agreement statistics derived by the workers, and the views that sum them.

Frozen: the statements it ran when it was written, not rendered from today's schema.tables, so that a
fresh install and an upgraded one run the same DDL. `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    """\
CREATE TABLE IF NOT EXISTS task_agreement
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `completed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of task_completed, UTC',
    `raters` UInt16 COMMENT 'Annotators who labeled the task (first submission each)',
    `label_counts` Map(String, UInt32) COMMENT 'How many annotators chose each label',
    `agreeing_pairs` UInt32 COMMENT 'Ordered pairs of annotators with the same label: sum n(n-1)',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that completed the task',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(completed_at)
ORDER BY (project_id, completed_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'One row per completed task labeled by two or more annotators: the sufficient statistics from which percent agreement, Fleiss\\' kappa, Krippendorff\\'s alpha and Gwet\\'s AC1 are summed over any window.'\
""",
    """\
CREATE TABLE IF NOT EXISTS pair_agreement
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `completed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of task_completed, UTC',
    `annotator_a` String COMMENT 'First annotator of the pair (a < b)',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `label_a` String COMMENT 'Label chosen by annotator_a',
    `label_b` String COMMENT 'Label chosen by annotator_b',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that completed the task',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(completed_at)
ORDER BY (project_id, annotator_a, annotator_b, completed_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'One row per annotator pair per completed overlapping task: the confusion counts of Cohen\\'s kappa.'\
""",
    """\
CREATE VIEW IF NOT EXISTS agreement_summary
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `tasks` UInt64 COMMENT 'Overlapping tasks completed in the window',
    `ratings` UInt64 COMMENT 'Labels given on them',
    `percent_agreement` Float64 COMMENT 'Share of annotator pairs that agree',
    `fleiss_kappa` Nullable(Float64) COMMENT 'Fleiss\\' kappa (generalised to varying raters per task)',
    `krippendorff_alpha` Nullable(Float64) COMMENT 'Krippendorff\\'s alpha, nominal',
    `gwet_ac1` Nullable(Float64) COMMENT 'Gwet\\'s AC1 over the labels seen in the window'
)
AS SELECT project_id, tasks, ratings, percent_agreement, fleiss_kappa, krippendorff_alpha, gwet_ac1
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
    WHERE completed_at >= {from:DateTime64(3, 'UTC')} AND completed_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id
)
COMMENT 'Inter-annotator agreement per project over a window, from task_agreement. Parameterized: SELECT * FROM agreement_summary(from=\\'2026-11-01 00:00:00\\', to=\\'2026-12-01 00:00:00\\'). Kappa-type values are NULL when chance agreement is 1 (a single label in the window).'\
""",
    """\
CREATE VIEW IF NOT EXISTS pair_kappa
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_a` String COMMENT 'First annotator of the pair',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `items` UInt64 COMMENT 'Tasks both labeled',
    `percent_agreement` Float64 COMMENT 'Share of those tasks with the same label',
    `cohen_kappa` Nullable(Float64) COMMENT 'Cohen\\'s kappa; NULL when chance agreement is 1'
)
AS SELECT project_id, annotator_a, annotator_b, items, percent_agreement, cohen_kappa
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
    WHERE completed_at >= {from:DateTime64(3, 'UTC')} AND completed_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id, annotator_a, annotator_b
)
COMMENT 'Cohen\\'s kappa per annotator pair over a window, from pair_agreement. Parameterized like agreement_summary: SELECT * FROM pair_kappa(from=\\'…\\', to=\\'…\\').'\
""",
]
FORWARDS_ON_CLUSTER: Statements = [
    """\
CREATE TABLE IF NOT EXISTS task_agreement_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `completed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of task_completed, UTC',
    `raters` UInt16 COMMENT 'Annotators who labeled the task (first submission each)',
    `label_counts` Map(String, UInt32) COMMENT 'How many annotators chose each label',
    `agreeing_pairs` UInt32 COMMENT 'Ordered pairs of annotators with the same label: sum n(n-1)',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that completed the task',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/task_agreement_local', '{replica}')
PARTITION BY toYYYYMM(completed_at)
ORDER BY (project_id, completed_at)
COMMENT 'One row per completed task labeled by two or more annotators: the sufficient statistics from which percent agreement, Fleiss\\' kappa, Krippendorff\\'s alpha and Gwet\\'s AC1 are summed over any window.'\
""",
    """\
CREATE TABLE IF NOT EXISTS task_agreement ON CLUSTER '__CLUSTER__' AS task_agreement_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'task_agreement_local', cityHash64(project_id))
COMMENT 'One row per completed task labeled by two or more annotators: the sufficient statistics from which percent agreement, Fleiss\\' kappa, Krippendorff\\'s alpha and Gwet\\'s AC1 are summed over any window.'\
""",
    """\
CREATE TABLE IF NOT EXISTS pair_agreement_local ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `completed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of task_completed, UTC',
    `annotator_a` String COMMENT 'First annotator of the pair (a < b)',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `label_a` String COMMENT 'Label chosen by annotator_a',
    `label_b` String COMMENT 'Label chosen by annotator_b',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that completed the task',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/pair_agreement_local', '{replica}')
PARTITION BY toYYYYMM(completed_at)
ORDER BY (project_id, annotator_a, annotator_b, completed_at)
COMMENT 'One row per annotator pair per completed overlapping task: the confusion counts of Cohen\\'s kappa.'\
""",
    """\
CREATE TABLE IF NOT EXISTS pair_agreement ON CLUSTER '__CLUSTER__' AS pair_agreement_local
ENGINE = Distributed('__CLUSTER__', currentDatabase(), 'pair_agreement_local', cityHash64(project_id))
COMMENT 'One row per annotator pair per completed overlapping task: the confusion counts of Cohen\\'s kappa.'\
""",
    """\
CREATE VIEW IF NOT EXISTS agreement_summary ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `tasks` UInt64 COMMENT 'Overlapping tasks completed in the window',
    `ratings` UInt64 COMMENT 'Labels given on them',
    `percent_agreement` Float64 COMMENT 'Share of annotator pairs that agree',
    `fleiss_kappa` Nullable(Float64) COMMENT 'Fleiss\\' kappa (generalised to varying raters per task)',
    `krippendorff_alpha` Nullable(Float64) COMMENT 'Krippendorff\\'s alpha, nominal',
    `gwet_ac1` Nullable(Float64) COMMENT 'Gwet\\'s AC1 over the labels seen in the window'
)
AS SELECT project_id, tasks, ratings, percent_agreement, fleiss_kappa, krippendorff_alpha, gwet_ac1
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
    WHERE completed_at >= {from:DateTime64(3, 'UTC')} AND completed_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id
)
COMMENT 'Inter-annotator agreement per project over a window, from task_agreement. Parameterized: SELECT * FROM agreement_summary(from=\\'2026-11-01 00:00:00\\', to=\\'2026-12-01 00:00:00\\'). Kappa-type values are NULL when chance agreement is 1 (a single label in the window).'\
""",
    """\
CREATE VIEW IF NOT EXISTS pair_kappa ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_a` String COMMENT 'First annotator of the pair',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `items` UInt64 COMMENT 'Tasks both labeled',
    `percent_agreement` Float64 COMMENT 'Share of those tasks with the same label',
    `cohen_kappa` Nullable(Float64) COMMENT 'Cohen\\'s kappa; NULL when chance agreement is 1'
)
AS SELECT project_id, annotator_a, annotator_b, items, percent_agreement, cohen_kappa
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
    WHERE completed_at >= {from:DateTime64(3, 'UTC')} AND completed_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id, annotator_a, annotator_b
)
COMMENT 'Cohen\\'s kappa per annotator pair over a window, from pair_agreement. Parameterized like agreement_summary: SELECT * FROM pair_kappa(from=\\'…\\', to=\\'…\\').'\
""",
]
BACKWARDS: Statements = [
    """\
DROP VIEW IF EXISTS pair_kappa SYNC\
""",
    """\
DROP VIEW IF EXISTS agreement_summary SYNC\
""",
    """\
DROP TABLE IF EXISTS pair_agreement SYNC\
""",
    """\
DROP TABLE IF EXISTS task_agreement SYNC\
""",
]
BACKWARDS_ON_CLUSTER: Statements = [
    """\
DROP VIEW IF EXISTS pair_kappa ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP VIEW IF EXISTS agreement_summary ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS pair_agreement ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS pair_agreement_local ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS task_agreement ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
DROP TABLE IF EXISTS task_agreement_local ON CLUSTER '__CLUSTER__' SYNC\
""",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
