"""Analyst views built from the metrics' one definition (schema.metric_definitions), saying who reads them.

The seven views that finalize rollups per bucket spelled their metrics themselves (skip rate, acceptance score,
rejection rate, first-pass acceptance, gold accuracy, pre-label acceptance, active hours, handle-time and
ingest-lag quantiles), beside the dashboard's, the alerts' and the business gauges' own spellings. They are
recreated from the definitions every consumer now shares; what they return is unchanged. No code reads them:
their comments say they are there for analysts.

Frozen: the statements it runs, spelled out; `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
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
    quantileTDigestMerge(0.5)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'\
""",
    """\
DROP VIEW IF EXISTS annotator_productivity_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_productivity_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_manual` UInt64 COMMENT 'Submitted without a model pre-label (source = manual)',
    `annotations_model_assisted` UInt64 COMMENT 'Submitted with source = model_assisted',
    `annotations_skipped` UInt64 COMMENT 'Items skipped',
    `skip_rate` Nullable(Float64) COMMENT 'skipped / (submitted + skipped); NULL with no work',
    `handle_time_p50_ms` Nullable(Float64) COMMENT 'Median handle time per submission, ms (exact)',
    `handle_time_p90_ms` Nullable(Float64) COMMENT '90th percentile handle time per submission, ms (exact)',
    `handle_time_mean_ms` Nullable(Float64) COMMENT 'Mean active time per submission, ms',
    `tasks` UInt64 COMMENT 'Distinct tasks touched (approximate)'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    if((sum(rollup_annotator_hour.annotations_submitted) + sum(rollup_annotator_hour.annotations_skipped)) = 0, NULL, sum(rollup_annotator_hour.annotations_skipped) / (sum(rollup_annotator_hour.annotations_submitted) + sum(rollup_annotator_hour.annotations_skipped))) AS skip_rate,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(rollup_annotator_hour.handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.5)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(rollup_annotator_hour.handle_time_ms_counts)))))) AS handle_time_p50_ms,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(rollup_annotator_hour.handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.9)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(rollup_annotator_hour.handle_time_ms_counts)))))) AS handle_time_p90_ms,
    if(sum(rollup_annotator_hour.handle_time_count) = 0, NULL, sum(rollup_annotator_hour.handle_time_ms_sum) / sum(rollup_annotator_hour.handle_time_count)) AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Output and handle time per annotator and hour, for analysts (no code reads it). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'\
""",
    """\
DROP VIEW IF EXISTS label_throughput_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS label_throughput_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `label` String COMMENT 'Submitted label',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations` UInt64 COMMENT 'Submissions',
    `prelabeled` UInt64 COMMENT 'Submissions offered a model pre-label',
    `prelabel_acceptance` Nullable(Float64) COMMENT 'Share of pre-labels kept unchanged'
)
AS SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    if(sum(rollup_label_hour.prelabeled) = 0, NULL, sum(rollup_label_hour.prelabel_kept) / sum(rollup_label_hour.prelabeled)) AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (no code reads it).'\
""",
    """\
DROP VIEW IF EXISTS review_outcomes_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS review_outcomes_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\\'s work',
    `accepted` UInt64 COMMENT 'Verdict accepted',
    `fixed` UInt64 COMMENT 'Verdict fixed (accepted after the reviewer corrected it)',
    `rejected` UInt64 COMMENT 'Verdict rejected',
    `acceptance_score` Nullable(Float64) COMMENT '(accepted + fixed) / reviewed',
    `rejection_rate` Nullable(Float64) COMMENT 'rejected / reviewed',
    `review_time_p50_ms` Nullable(Float64) COMMENT 'Median review time, ms (t-digest)',
    `review_time_mean_ms` Nullable(Float64) COMMENT 'Mean review time, ms'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_review_hour.reviews) AS reviewed,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'accepted')) AS accepted,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'fixed')) AS fixed,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'rejected')) AS rejected,
    if(sum(rollup_review_hour.reviews) = 0, NULL, (sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'accepted')) + sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'fixed'))) / sum(rollup_review_hour.reviews)) AS acceptance_score,
    if(sum(rollup_review_hour.reviews) = 0, NULL, sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'rejected')) / sum(rollup_review_hour.reviews)) AS rejection_rate,
    if(sum(review_time_count) = 0, NULL, quantileTDigestMerge(0.5)(review_time_ms)) AS review_time_p50_ms,
    if(sum(review_time_count) = 0, NULL, sum(review_time_ms_sum) / sum(review_time_count))
        AS review_time_mean_ms
FROM rollup_review_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (no code reads it). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'\
""",
    """\
DROP VIEW IF EXISTS gold_accuracy_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS gold_accuracy_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `gold_answers` Int64 COMMENT 'Answers on gold tasks',
    `gold_correct` Int64 COMMENT 'Answers equal to the gold label',
    `gold_accuracy` Nullable(Float64) COMMENT 'gold_correct / gold_answers'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_gold_hour.gold_answers) AS gold_answers,
    sum(rollup_gold_hour.gold_correct) AS gold_correct,
    if(sum(rollup_gold_hour.gold_answers) = 0, NULL, sum(rollup_gold_hour.gold_correct) / sum(rollup_gold_hour.gold_answers)) AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Honeypot answers per annotator and hour, for analysts (no code reads it). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'\
""",
    """\
DROP VIEW IF EXISTS annotator_active_hour SYNC\
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
AS SELECT project_id, annotator_id, hour, sum(rollup_active_hour.active_ms) / 3600000 AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Active time per annotator and hour, for analysts (no code reads it): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'\
""",
    """\
DROP VIEW IF EXISTS first_pass_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` Int64 COMMENT 'Reviews',
    `first_pass_accepted` Int64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` Int64 COMMENT 'Reviews of work rejected before',
    `max_round` UInt16 COMMENT 'Most review rounds one piece of work needed'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_review_rounds_hour.reviews) AS reviews,
    sum(rollup_review_rounds_hour.first_pass_accepted) AS first_pass_accepted,
    if(sum(rollup_review_rounds_hour.reviews) = 0, NULL, sum(rollup_review_rounds_hour.first_pass_accepted) / sum(rollup_review_rounds_hour.reviews)) AS first_pass_acceptance,
    sum(rework_reviews) AS rework_reviews,
    max(max_round) AS max_round
FROM rollup_review_rounds_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (no code reads it). Sum counts over a range, then divide.'\
""",
]

FORWARDS_ON_CLUSTER: Statements = [
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
    quantileTDigestMerge(0.5)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(rollup_project_minute.ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'\
""",
    """\
DROP VIEW IF EXISTS annotator_productivity_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_productivity_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_manual` UInt64 COMMENT 'Submitted without a model pre-label (source = manual)',
    `annotations_model_assisted` UInt64 COMMENT 'Submitted with source = model_assisted',
    `annotations_skipped` UInt64 COMMENT 'Items skipped',
    `skip_rate` Nullable(Float64) COMMENT 'skipped / (submitted + skipped); NULL with no work',
    `handle_time_p50_ms` Nullable(Float64) COMMENT 'Median handle time per submission, ms (exact)',
    `handle_time_p90_ms` Nullable(Float64) COMMENT '90th percentile handle time per submission, ms (exact)',
    `handle_time_mean_ms` Nullable(Float64) COMMENT 'Mean active time per submission, ms',
    `tasks` UInt64 COMMENT 'Distinct tasks touched (approximate)'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    if((sum(rollup_annotator_hour.annotations_submitted) + sum(rollup_annotator_hour.annotations_skipped)) = 0, NULL, sum(rollup_annotator_hour.annotations_skipped) / (sum(rollup_annotator_hour.annotations_submitted) + sum(rollup_annotator_hour.annotations_skipped))) AS skip_rate,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(rollup_annotator_hour.handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.5)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(rollup_annotator_hour.handle_time_ms_counts)))))) AS handle_time_p50_ms,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(rollup_annotator_hour.handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.9)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(rollup_annotator_hour.handle_time_ms_counts)))))) AS handle_time_p90_ms,
    if(sum(rollup_annotator_hour.handle_time_count) = 0, NULL, sum(rollup_annotator_hour.handle_time_ms_sum) / sum(rollup_annotator_hour.handle_time_count)) AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Output and handle time per annotator and hour, for analysts (no code reads it). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'\
""",
    """\
DROP VIEW IF EXISTS label_throughput_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS label_throughput_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `label` String COMMENT 'Submitted label',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations` UInt64 COMMENT 'Submissions',
    `prelabeled` UInt64 COMMENT 'Submissions offered a model pre-label',
    `prelabel_acceptance` Nullable(Float64) COMMENT 'Share of pre-labels kept unchanged'
)
AS SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    if(sum(rollup_label_hour.prelabeled) = 0, NULL, sum(rollup_label_hour.prelabel_kept) / sum(rollup_label_hour.prelabeled)) AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (no code reads it).'\
""",
    """\
DROP VIEW IF EXISTS review_outcomes_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS review_outcomes_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\\'s work',
    `accepted` UInt64 COMMENT 'Verdict accepted',
    `fixed` UInt64 COMMENT 'Verdict fixed (accepted after the reviewer corrected it)',
    `rejected` UInt64 COMMENT 'Verdict rejected',
    `acceptance_score` Nullable(Float64) COMMENT '(accepted + fixed) / reviewed',
    `rejection_rate` Nullable(Float64) COMMENT 'rejected / reviewed',
    `review_time_p50_ms` Nullable(Float64) COMMENT 'Median review time, ms (t-digest)',
    `review_time_mean_ms` Nullable(Float64) COMMENT 'Mean review time, ms'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_review_hour.reviews) AS reviewed,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'accepted')) AS accepted,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'fixed')) AS fixed,
    sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'rejected')) AS rejected,
    if(sum(rollup_review_hour.reviews) = 0, NULL, (sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'accepted')) + sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'fixed'))) / sum(rollup_review_hour.reviews)) AS acceptance_score,
    if(sum(rollup_review_hour.reviews) = 0, NULL, sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'rejected')) / sum(rollup_review_hour.reviews)) AS rejection_rate,
    if(sum(review_time_count) = 0, NULL, quantileTDigestMerge(0.5)(review_time_ms)) AS review_time_p50_ms,
    if(sum(review_time_count) = 0, NULL, sum(review_time_ms_sum) / sum(review_time_count))
        AS review_time_mean_ms
FROM rollup_review_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (no code reads it). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'\
""",
    """\
DROP VIEW IF EXISTS gold_accuracy_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS gold_accuracy_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `gold_answers` Int64 COMMENT 'Answers on gold tasks',
    `gold_correct` Int64 COMMENT 'Answers equal to the gold label',
    `gold_accuracy` Nullable(Float64) COMMENT 'gold_correct / gold_answers'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_gold_hour.gold_answers) AS gold_answers,
    sum(rollup_gold_hour.gold_correct) AS gold_correct,
    if(sum(rollup_gold_hour.gold_answers) = 0, NULL, sum(rollup_gold_hour.gold_correct) / sum(rollup_gold_hour.gold_answers)) AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Honeypot answers per annotator and hour, for analysts (no code reads it). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'\
""",
    """\
DROP VIEW IF EXISTS annotator_active_hour ON CLUSTER '__CLUSTER__' SYNC\
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
AS SELECT project_id, annotator_id, hour, sum(rollup_active_hour.active_ms) / 3600000 AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Active time per annotator and hour, for analysts (no code reads it): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'\
""",
    """\
DROP VIEW IF EXISTS first_pass_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` Int64 COMMENT 'Reviews',
    `first_pass_accepted` Int64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` Int64 COMMENT 'Reviews of work rejected before',
    `max_round` UInt16 COMMENT 'Most review rounds one piece of work needed'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(rollup_review_rounds_hour.reviews) AS reviews,
    sum(rollup_review_rounds_hour.first_pass_accepted) AS first_pass_accepted,
    if(sum(rollup_review_rounds_hour.reviews) = 0, NULL, sum(rollup_review_rounds_hour.first_pass_accepted) / sum(rollup_review_rounds_hour.reviews)) AS first_pass_acceptance,
    sum(rework_reviews) AS rework_reviews,
    max(max_round) AS max_round
FROM rollup_review_rounds_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (no code reads it). Sum counts over a range, then divide.'\
""",
]

BACKWARDS: Statements = [
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
DROP VIEW IF EXISTS annotator_productivity_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_productivity_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_manual` UInt64 COMMENT 'Submitted without a model pre-label (source = manual)',
    `annotations_model_assisted` UInt64 COMMENT 'Submitted with source = model_assisted',
    `annotations_skipped` UInt64 COMMENT 'Items skipped',
    `skip_rate` Nullable(Float64) COMMENT 'skipped / (submitted + skipped); NULL with no work',
    `handle_time_p50_ms` Nullable(Float64) COMMENT 'Median handle time per submission, ms (exact)',
    `handle_time_p90_ms` Nullable(Float64) COMMENT '90th percentile handle time per submission, ms (exact)',
    `handle_time_mean_ms` Nullable(Float64) COMMENT 'Mean active time per submission, ms',
    `tasks` UInt64 COMMENT 'Distinct tasks touched (approximate)'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    if(annotations_submitted + annotations_skipped = 0, NULL,
       annotations_skipped / (annotations_submitted + annotations_skipped)) AS skip_rate,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.5)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(handle_time_ms_counts)))))) AS handle_time_p50_ms,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.9)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(handle_time_ms_counts)))))) AS handle_time_p90_ms,
    if(sum(handle_time_count) = 0, NULL, sum(handle_time_ms_sum) / sum(handle_time_count))
        AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Output and handle time per annotator and hour. Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.tables.exact_quantile).'\
""",
    """\
DROP VIEW IF EXISTS label_throughput_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS label_throughput_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `label` String COMMENT 'Submitted label',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations` UInt64 COMMENT 'Submissions',
    `prelabeled` UInt64 COMMENT 'Submissions offered a model pre-label',
    `prelabel_acceptance` Nullable(Float64) COMMENT 'Share of pre-labels kept unchanged'
)
AS SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    if(prelabeled = 0, NULL, sum(prelabel_kept) / prelabeled) AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance.'\
""",
    """\
DROP VIEW IF EXISTS review_outcomes_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS review_outcomes_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\\'s work',
    `accepted` UInt64 COMMENT 'Verdict accepted',
    `fixed` UInt64 COMMENT 'Verdict fixed (accepted after the reviewer corrected it)',
    `rejected` UInt64 COMMENT 'Verdict rejected',
    `acceptance_score` Nullable(Float64) COMMENT '(accepted + fixed) / reviewed',
    `rejection_rate` Nullable(Float64) COMMENT 'rejected / reviewed',
    `review_time_p50_ms` Nullable(Float64) COMMENT 'Median review time, ms (t-digest)',
    `review_time_mean_ms` Nullable(Float64) COMMENT 'Mean review time, ms'
)
AS SELECT
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
COMMENT 'Review verdicts per reviewed annotator and hour. acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'\
""",
    """\
DROP VIEW IF EXISTS gold_accuracy_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS gold_accuracy_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `gold_answers` Int64 COMMENT 'Answers on gold tasks',
    `gold_correct` Int64 COMMENT 'Answers equal to the gold label',
    `gold_accuracy` Nullable(Float64) COMMENT 'gold_correct / gold_answers'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(gold_answers) AS gold_answers,
    sum(gold_correct) AS gold_correct,
    if(gold_answers = 0, NULL, gold_correct / gold_answers) AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Honeypot answers per annotator and hour. Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'\
""",
    """\
DROP VIEW IF EXISTS annotator_active_hour SYNC\
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
    """\
DROP VIEW IF EXISTS first_pass_hour SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` Int64 COMMENT 'Reviews',
    `first_pass_accepted` Int64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` Int64 COMMENT 'Reviews of work rejected before',
    `max_round` UInt16 COMMENT 'Most review rounds one piece of work needed'
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

BACKWARDS_ON_CLUSTER: Statements = [
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
DROP VIEW IF EXISTS annotator_productivity_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS annotator_productivity_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations_submitted` UInt64 COMMENT 'Annotations submitted',
    `annotations_manual` UInt64 COMMENT 'Submitted without a model pre-label (source = manual)',
    `annotations_model_assisted` UInt64 COMMENT 'Submitted with source = model_assisted',
    `annotations_skipped` UInt64 COMMENT 'Items skipped',
    `skip_rate` Nullable(Float64) COMMENT 'skipped / (submitted + skipped); NULL with no work',
    `handle_time_p50_ms` Nullable(Float64) COMMENT 'Median handle time per submission, ms (exact)',
    `handle_time_p90_ms` Nullable(Float64) COMMENT '90th percentile handle time per submission, ms (exact)',
    `handle_time_mean_ms` Nullable(Float64) COMMENT 'Mean active time per submission, ms',
    `tasks` UInt64 COMMENT 'Distinct tasks touched (approximate)'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(annotations_submitted) AS annotations_submitted,
    sum(annotations_manual) AS annotations_manual,
    sum(annotations_model_assisted) AS annotations_model_assisted,
    sum(annotations_skipped) AS annotations_skipped,
    if(annotations_submitted + annotations_skipped = 0, NULL,
       annotations_skipped / (annotations_submitted + annotations_skipped)) AS skip_rate,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.5)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(handle_time_ms_counts)))))) AS handle_time_p50_ms,
    if(empty(mapFilter((v, c) -> c > 0, sumMap(handle_time_ms_counts))), NULL, arrayReduce('quantileExactInclusive(0.9)', arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), sumMap(handle_time_ms_counts)))))) AS handle_time_p90_ms,
    if(sum(handle_time_count) = 0, NULL, sum(handle_time_ms_sum) / sum(handle_time_count))
        AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Output and handle time per annotator and hour. Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.tables.exact_quantile).'\
""",
    """\
DROP VIEW IF EXISTS label_throughput_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS label_throughput_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `label` String COMMENT 'Submitted label',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `annotations` UInt64 COMMENT 'Submissions',
    `prelabeled` UInt64 COMMENT 'Submissions offered a model pre-label',
    `prelabel_acceptance` Nullable(Float64) COMMENT 'Share of pre-labels kept unchanged'
)
AS SELECT
    project_id,
    label,
    source,
    hour,
    sum(annotations) AS annotations,
    sum(prelabeled) AS prelabeled,
    if(prelabeled = 0, NULL, sum(prelabel_kept) / prelabeled) AS prelabel_acceptance
FROM rollup_label_hour
GROUP BY project_id, label, source, hour
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance.'\
""",
    """\
DROP VIEW IF EXISTS review_outcomes_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS review_outcomes_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\\'s work',
    `accepted` UInt64 COMMENT 'Verdict accepted',
    `fixed` UInt64 COMMENT 'Verdict fixed (accepted after the reviewer corrected it)',
    `rejected` UInt64 COMMENT 'Verdict rejected',
    `acceptance_score` Nullable(Float64) COMMENT '(accepted + fixed) / reviewed',
    `rejection_rate` Nullable(Float64) COMMENT 'rejected / reviewed',
    `review_time_p50_ms` Nullable(Float64) COMMENT 'Median review time, ms (t-digest)',
    `review_time_mean_ms` Nullable(Float64) COMMENT 'Mean review time, ms'
)
AS SELECT
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
COMMENT 'Review verdicts per reviewed annotator and hour. acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'\
""",
    """\
DROP VIEW IF EXISTS gold_accuracy_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS gold_accuracy_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `gold_answers` Int64 COMMENT 'Answers on gold tasks',
    `gold_correct` Int64 COMMENT 'Answers equal to the gold label',
    `gold_accuracy` Nullable(Float64) COMMENT 'gold_correct / gold_answers'
)
AS SELECT
    project_id,
    annotator_id,
    hour,
    sum(gold_answers) AS gold_answers,
    sum(gold_correct) AS gold_correct,
    if(gold_answers = 0, NULL, gold_correct / gold_answers) AS gold_accuracy
FROM rollup_gold_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Honeypot answers per annotator and hour. Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'\
""",
    """\
DROP VIEW IF EXISTS annotator_active_hour ON CLUSTER '__CLUSTER__' SYNC\
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
    """\
DROP VIEW IF EXISTS first_pass_hour ON CLUSTER '__CLUSTER__' SYNC\
""",
    """\
CREATE VIEW IF NOT EXISTS first_pass_hour ON CLUSTER '__CLUSTER__'
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviews` Int64 COMMENT 'Reviews',
    `first_pass_accepted` Int64 COMMENT 'Reviews accepting work never rejected before',
    `first_pass_acceptance` Nullable(Float64) COMMENT 'first_pass_accepted / reviews',
    `rework_reviews` Int64 COMMENT 'Reviews of work rejected before',
    `max_round` UInt16 COMMENT 'Most review rounds one piece of work needed'
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

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
