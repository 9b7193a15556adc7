CREATE TABLE IF NOT EXISTS events
(
    `event_id` String COMMENT 'Producer-assigned unique id; the dedup key',
    `event_type` LowCardinality(String) COMMENT 'task_created, annotation_submitted, ...',
    `schema_version` UInt8 COMMENT 'Contract version the producer spoke',
    `occurred_at` DateTime64(3, 'UTC') COMMENT 'Producer clock, UTC',
    `received_at` DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When a worker validated the event, UTC',
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task (item being labeled)',
    `annotator_id` String COMMENT 'Pseudonymous annotator; for reviews, whose work was reviewed',
    `reviewer_id` String COMMENT 'Pseudonymous reviewer; empty outside reviews',
    `session_id` String COMMENT 'Labeling-tool session',
    `stage` LowCardinality(String) COMMENT 'annotate or review; empty when not given',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `label` String COMMENT 'Class name, or canonical JSON of a structured label',
    `duration_ms` Nullable(UInt32) COMMENT 'Active time the tool measured, ms',
    `is_gold` Bool COMMENT 'Honeypot task with a known answer',
    `gold_label` String COMMENT 'The known answer of a honeypot task',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected (reviews)',
    `reason` String COMMENT 'Rejection or skip reason',
    `model_label` String COMMENT 'Model pre-label offered to the annotator',
    `model_confidence` Nullable(Float32) COMMENT 'Model confidence in model_label, 0..1',
    `extra` String COMMENT 'JSON object of fields the contract does not know',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic the event was read from',
    `kafka_partition` UInt32 COMMENT 'Partition the event was read from',
    `kafka_offset` UInt64 COMMENT 'Offset the event was read from'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (project_id, annotator_id, occurred_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Every valid labeling event (contract v1), as received. Unknown fields are kept in `extra`.';

CREATE TABLE IF NOT EXISTS dead_letters
(
    `received_at` DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When a worker refused the message, UTC',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic the message was read from',
    `kafka_partition` UInt32 COMMENT 'Partition the message was read from',
    `kafka_offset` UInt64 COMMENT 'Offset the message was read from',
    `kafka_key` String COMMENT 'Message key as sent',
    `raw` String COMMENT 'Message value as sent (bytes)',
    `rule` LowCardinality(String) COMMENT 'Broken rule: malformed_json, missing_field, ...',
    `field` String COMMENT 'Offending field; empty when the whole message is bad',
    `reason` String COMMENT 'Human-readable explanation',
    `event_id` String COMMENT 'event_id when it could be read'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (rule, received_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Events refused by the workers, with the reason; nothing is dropped silently.';

CREATE TABLE IF NOT EXISTS alert_history
(
    `at` DateTime64(3, 'UTC') COMMENT 'When the transition happened, UTC',
    `rule` LowCardinality(String) COMMENT 'Alert rule name',
    `fingerprint` String COMMENT 'Stable hash of the instance\'s label set',
    `labels` Map(String, String) COMMENT 'Labels of the instance (severity, project, ...)',
    `state` Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3) COMMENT 'State entered',
    `previous_state` Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3) COMMENT '',
    `value` Float64 COMMENT 'Value of the rule expression at the transition',
    `active_since` Nullable(DateTime64(3, 'UTC')) COMMENT 'Start of the pending/firing episode',
    `summary` String COMMENT 'Rendered summary annotation',
    `description` String COMMENT 'Rendered description annotation',
    `runbook_url` String COMMENT 'Where on-call finds what to do'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (rule, fingerprint, at)
COMMENT 'Every state transition of every alert instance (rule x label set).';

CREATE TABLE IF NOT EXISTS rollup_project_minute
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `minute` DateTime('UTC') COMMENT 'Start of the minute of occurred_at',
    `tasks_created` SimpleAggregateFunction(sum, UInt64) COMMENT 'task_created events',
    `tasks_assigned` SimpleAggregateFunction(sum, UInt64) COMMENT 'task_assigned events',
    `annotations_started` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_started events',
    `annotations_submitted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_submitted events',
    `annotations_skipped` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_skipped events',
    `reviews_completed` SimpleAggregateFunction(sum, UInt64) COMMENT 'review_completed events',
    `tasks_completed` SimpleAggregateFunction(sum, UInt64) COMMENT 'task_completed events',
    `annotators` AggregateFunction(uniq, String) COMMENT 'Distinct annotators active',
    `ingest_lag_ms` AggregateFunction(quantileTDigest, UInt32) COMMENT 'received_at - occurred_at, ms',
    `last_occurred_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest occurred_at',
    `last_received_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest received_at'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, minute)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project and minute: event counts by type, active annotators, ingest lag.';

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
    quantileTDigestState(toUInt32(greatest(0, dateDiff('millisecond', occurred_at, received_at))))
        AS ingest_lag_ms,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events
GROUP BY project_id, minute;

CREATE TABLE IF NOT EXISTS rollup_annotator_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of occurred_at',
    `annotations_started` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_started events',
    `annotations_submitted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_submitted events',
    `annotations_manual` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions with source = manual',
    `annotations_model_assisted` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions with source = model_assisted',
    `annotations_skipped` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_skipped events',
    `handle_time_ms_sum` SimpleAggregateFunction(sum, UInt64) COMMENT 'Sum of duration_ms over submissions that carry it',
    `handle_time_count` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions that carry duration_ms',
    `handle_time_ms` AggregateFunction(quantileTDigest, UInt32) COMMENT 'duration_ms of submissions',
    `tasks` AggregateFunction(uniq, String) COMMENT 'Distinct tasks touched',
    `first_event_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')) COMMENT 'Earliest event',
    `last_event_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest event'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, annotator and hour: output, skips and handle time of annotation work.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_annotator_hour
TO rollup_annotator_hour
AS SELECT
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
FROM events
-- reviews carry the reviewed annotator's id but are the reviewer's work: they live in the
-- review rollup
WHERE annotator_id != ''
  AND event_type IN ('annotation_started', 'annotation_submitted', 'annotation_skipped')
GROUP BY project_id, annotator_id, hour;

CREATE TABLE IF NOT EXISTS handle_times
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `task_id` String COMMENT 'Task',
    `submitted_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the submission, UTC',
    `handle_time_ms` UInt32 COMMENT 'Active time on the item, ms',
    `measured_by` LowCardinality(String) COMMENT 'tool, or start_to_submit when derived',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that made it known',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(submitted_at)
ORDER BY (project_id, annotator_id, submitted_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'One row per submission whose handle time is known: measured by the tool (duration_ms), or, when it did not measure, the time from the annotator\'s annotation_started to the submission — derived by the workers also when the two arrive out of order.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_annotator_hour_handle_times
TO rollup_annotator_hour
AS SELECT
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
FROM handle_times AS h
GROUP BY project_id, annotator_id, hour;

CREATE TABLE IF NOT EXISTS rollup_label_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `label` String COMMENT 'Submitted label (class name or canonical JSON)',
    `source` LowCardinality(String) COMMENT 'manual, model_assisted or imported',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of occurred_at',
    `annotations` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_submitted events',
    `prelabeled` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions that were offered a model pre-label',
    `prelabel_kept` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions whose label equals the model pre-label'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, label, source, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, label class, source and hour: submissions and model pre-label agreement.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_label_hour
TO rollup_label_hour
AS SELECT
    project_id,
    label,
    source,
    toStartOfHour(occurred_at) AS hour,
    count() AS annotations,
    countIf(model_label != '') AS prelabeled,
    countIf(model_label != '' AND label = model_label) AS prelabel_kept
FROM events
WHERE event_type = 'annotation_submitted'
GROUP BY project_id, label, source, hour;

CREATE TABLE IF NOT EXISTS rollup_review_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Whose annotation was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of occurred_at',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected',
    `reason` String COMMENT 'Reason given with the verdict',
    `reviews` SimpleAggregateFunction(sum, UInt64) COMMENT 'review_completed events',
    `review_time_ms_sum` SimpleAggregateFunction(sum, UInt64) COMMENT 'Sum of duration_ms over reviews that carry it',
    `review_time_count` SimpleAggregateFunction(sum, UInt64) COMMENT 'Reviews that carry duration_ms',
    `review_time_ms` AggregateFunction(quantileTDigest, UInt32) COMMENT 'duration_ms of reviews'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, reviewer_id, hour, verdict, reason)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, reviewed annotator, reviewer, hour, verdict and reason: review outcomes.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_review_hour
TO rollup_review_hour
AS SELECT
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
FROM events
WHERE event_type = 'review_completed'
GROUP BY project_id, annotator_id, reviewer_id, hour, verdict, reason;

CREATE TABLE IF NOT EXISTS rollup_gold_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of occurred_at',
    `gold_answers` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions on gold tasks',
    `gold_correct` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions on gold tasks equal to the gold label'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, annotator and hour: answers on honeypot (gold) tasks and how many were right.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_gold_hour
TO rollup_gold_hour
AS SELECT
    project_id,
    annotator_id,
    toStartOfHour(occurred_at) AS hour,
    count() AS gold_answers,
    countIf(label = gold_label) AS gold_correct
FROM events
-- workers copy is_gold and gold_label from the task onto each submission
WHERE event_type = 'annotation_submitted' AND is_gold AND gold_label != ''
GROUP BY project_id, annotator_id, hour;

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
    quantileTDigestMerge(0.5)(ingest_lag_ms) AS ingest_lag_p50_ms,
    quantileTDigestMerge(0.95)(ingest_lag_ms) AS ingest_lag_p95_ms,
    max(last_occurred_at) AS last_occurred_at
FROM rollup_project_minute
GROUP BY project_id, minute
COMMENT 'Throughput per project and minute. For other buckets, sum these columns.';

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
    `handle_time_p50_ms` Nullable(Float64) COMMENT 'Median active time per submission, ms (t-digest)',
    `handle_time_p90_ms` Nullable(Float64) COMMENT '90th percentile active time per submission, ms',
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
    if(sum(handle_time_count) = 0, NULL, quantileTDigestMerge(0.5)(handle_time_ms)) AS handle_time_p50_ms,
    if(sum(handle_time_count) = 0, NULL, quantileTDigestMerge(0.9)(handle_time_ms)) AS handle_time_p90_ms,
    if(sum(handle_time_count) = 0, NULL, sum(handle_time_ms_sum) / sum(handle_time_count))
        AS handle_time_mean_ms,
    uniqMerge(tasks) AS tasks
FROM rollup_annotator_hour
GROUP BY project_id, annotator_id, hour
COMMENT 'Output and handle time per annotator and hour. Quantiles are per hour; for other ranges merge rollup_annotator_hour.handle_time_ms with quantileTDigestMerge.';

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
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance.';

CREATE VIEW IF NOT EXISTS review_outcomes_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\'s work',
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
COMMENT 'Review verdicts per reviewed annotator and hour. acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.';

CREATE VIEW IF NOT EXISTS gold_accuracy_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `gold_answers` UInt64 COMMENT 'Answers on gold tasks',
    `gold_correct` UInt64 COMMENT 'Answers equal to the gold label',
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
COMMENT 'Honeypot answers per annotator and hour. Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.';

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
COMMENT 'One row per completed task labeled by two or more annotators: the sufficient statistics from which percent agreement, Fleiss\' kappa, Krippendorff\'s alpha and Gwet\'s AC1 are summed over any window.';

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
COMMENT 'One row per annotator pair per completed overlapping task: the confusion counts of Cohen\'s kappa.';

CREATE VIEW IF NOT EXISTS agreement_summary
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `tasks` UInt64 COMMENT 'Overlapping tasks completed in the window',
    `ratings` UInt64 COMMENT 'Labels given on them',
    `percent_agreement` Float64 COMMENT 'Share of annotator pairs that agree',
    `fleiss_kappa` Nullable(Float64) COMMENT 'Fleiss\' kappa (generalised to varying raters per task)',
    `krippendorff_alpha` Nullable(Float64) COMMENT 'Krippendorff\'s alpha, nominal',
    `gwet_ac1` Nullable(Float64) COMMENT 'Gwet\'s AC1 over the labels seen in the window'
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
COMMENT 'Inter-annotator agreement per project over a window, from task_agreement. Parameterized: SELECT * FROM agreement_summary(from=\'2026-11-01 00:00:00\', to=\'2026-12-01 00:00:00\'). Kappa-type values are NULL when chance agreement is 1 (a single label in the window).';

CREATE VIEW IF NOT EXISTS pair_kappa
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_a` String COMMENT 'First annotator of the pair',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `items` UInt64 COMMENT 'Tasks both labeled',
    `percent_agreement` Float64 COMMENT 'Share of those tasks with the same label',
    `cohen_kappa` Nullable(Float64) COMMENT 'Cohen\'s kappa; NULL when chance agreement is 1'
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
COMMENT 'Cohen\'s kappa per annotator pair over a window, from pair_agreement. Parameterized like agreement_summary: SELECT * FROM pair_kappa(from=\'…\', to=\'…\').';

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
COMMENT 'Active time of annotators, as the workers derive it from each annotator\'s stream of annotation events: the gap from one event to the next counts when shorter than the idle threshold, and a longer gap (or the first event) starts a session. Rows are changes, summed per project, annotator and hour of the later event: an event that arrives late replaces one gap by two, so a row may be negative. Sum them; see annotator_active_hour.';

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
COMMENT 'Per project, annotator and hour: active time and sessions started (sums of active_time).';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_active_hour
TO rollup_active_hour
AS SELECT project_id, annotator_id, hour, sum(a.active_ms) AS active_ms, sum(a.sessions) AS sessions
FROM active_time AS a
GROUP BY project_id, annotator_id, hour;

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
COMMENT 'Active time per annotator and hour: gaps between an annotator\'s annotation events shorter than the workers\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).';

CREATE TABLE IF NOT EXISTS review_rounds
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `reviewed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the review, UTC',
    `round` UInt16 COMMENT '1 for the task\'s first review, 2 for the next, ...',
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
COMMENT 'One row per review, with what only the task\'s history tells: which round of review it was, and whether it accepted the work with no earlier rejection (first-pass acceptance).';

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
COMMENT 'Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.';

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
GROUP BY project_id, annotator_id, hour;

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
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour. Sum counts over a range, then divide.';

ALTER TABLE events ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE handle_times ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE task_agreement ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE pair_agreement ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE active_time ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

ALTER TABLE review_rounds ADD COLUMN IF NOT EXISTS `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)' AFTER kafka_topic;

DROP VIEW IF EXISTS first_pass_hour SYNC;

DROP VIEW IF EXISTS agreement_summary SYNC;

DROP VIEW IF EXISTS pair_kappa SYNC;

DROP VIEW IF EXISTS gold_accuracy_hour SYNC;

DROP VIEW IF EXISTS annotator_productivity_hour SYNC;

DROP VIEW IF EXISTS project_throughput_minute SYNC;

DROP TABLE IF EXISTS mv_rollup_review_rounds_hour SYNC;

DROP TABLE IF EXISTS mv_rollup_gold_hour SYNC;

DROP TABLE IF EXISTS mv_rollup_annotator_hour_handle_times SYNC;

DROP TABLE IF EXISTS mv_rollup_annotator_hour SYNC;

DROP TABLE IF EXISTS mv_rollup_project_minute SYNC;

DROP TABLE IF EXISTS rollup_review_rounds_hour SYNC;

DROP TABLE IF EXISTS review_rounds SYNC;

DROP TABLE IF EXISTS task_agreement SYNC;

DROP TABLE IF EXISTS pair_agreement SYNC;

DROP TABLE IF EXISTS rollup_gold_hour SYNC;

DROP TABLE IF EXISTS handle_times SYNC;

DROP TABLE IF EXISTS rollup_annotator_hour SYNC;

ALTER TABLE events ADD COLUMN IF NOT EXISTS `too_late` Bool DEFAULT false COMMENT 'Arrived more than the lateness bound behind the newest event of its partition: counted here and in throughput, left out of derived metrics (handle times, gold, reviews, agreement, active time)' AFTER extra;

ALTER TABLE rollup_project_minute ADD COLUMN IF NOT EXISTS `late_events` SimpleAggregateFunction(sum, UInt64) COMMENT 'Events too late for derived metrics (events.too_late)' AFTER annotators;

CREATE TABLE IF NOT EXISTS handle_time_changes
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `task_id` String COMMENT 'Task',
    `submission_id` String COMMENT 'event_id of the submission',
    `submitted_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the submission, UTC',
    `handle_time_ms` UInt32 COMMENT 'Active time on the item, ms',
    `measured_by` LowCardinality(String) COMMENT 'tool, or start_to_submit when derived',
    `sign` Int8 COMMENT '+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed the answer. Sum it: a row stands while its signs sum to 1',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that changed it',
    `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(submitted_at)
ORDER BY (project_id, annotator_id, submitted_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Changes to the handle time of submissions, as the workers derive it from each task\'s events sorted by time: the tool\'s duration_ms, else the time since the annotator\'s latest annotation_started before the submission. A start that arrives late can change an answer: the old row is taken back (sign -1) and the new one added. Read handle_times for the current rows.';

CREATE TABLE IF NOT EXISTS gold_answer_changes
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `task_id` String COMMENT 'Task',
    `submission_id` String COMMENT 'event_id of the submission',
    `answered_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the submission, UTC',
    `label` String COMMENT 'The submitted label',
    `gold_label` String COMMENT 'The known answer',
    `correct` Bool COMMENT 'label = gold_label',
    `sign` Int8 COMMENT '+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed the answer. Sum it: a row stands while its signs sum to 1',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that changed it',
    `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(answered_at)
ORDER BY (project_id, annotator_id, answered_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Changes to the answers on honeypot (gold) tasks, as the workers derive them from each task\'s events: every submission on a task whose gold label is known — from the submission itself, else from the task\'s task_created, whichever arrived first. Read gold_answers for the current rows.';

CREATE TABLE IF NOT EXISTS task_agreement_changes
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `labeled_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the latest first answer: when the task counts, UTC',
    `raters` UInt16 COMMENT 'Annotators who answered the task (first answer each)',
    `label_counts` Map(String, UInt32) COMMENT 'How many annotators chose each label',
    `agreeing_pairs` UInt32 COMMENT 'Ordered pairs of annotators with the same label: sum n(n-1)',
    `sign` Int8 COMMENT '+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed the answer. Sum it: a row stands while its signs sum to 1',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that changed it',
    `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(labeled_at)
ORDER BY (project_id, labeled_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Changes to the agreement statistics of tasks two or more annotators answered, from each annotator\'s first answer (earliest submission): label counts and agreeing pairs, from which percent agreement, Fleiss\' kappa, Krippendorff\'s alpha and Gwet\'s AC1 are summed over any window. An answer that arrives later takes back the task\'s row (sign -1) and adds the new one. Read task_agreement for the current rows.';

CREATE TABLE IF NOT EXISTS pair_agreement_changes
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `labeled_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the later of the two first answers, UTC',
    `annotator_a` String COMMENT 'First annotator of the pair (a < b)',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `label_a` String COMMENT 'First answer of annotator_a',
    `label_b` String COMMENT 'First answer of annotator_b',
    `sign` Int8 COMMENT '+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed the answer. Sum it: a row stands while its signs sum to 1',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that changed it',
    `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(labeled_at)
ORDER BY (project_id, annotator_a, annotator_b, labeled_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Changes to the first answers of every annotator pair on tasks both answered: the confusion counts of Cohen\'s kappa. Read pair_agreement for the current rows.';

CREATE TABLE IF NOT EXISTS review_round_changes
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `review_id` String COMMENT 'event_id of the review',
    `reviewed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the review, UTC',
    `round` UInt16 COMMENT '1 for the first review of this annotator\'s work on the task, 2 for the next, ...',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected',
    `first_pass_accepted` Bool COMMENT 'Accepted, and this work was never rejected before',
    `rework` Bool COMMENT 'This work was rejected before: the review judges reworked work',
    `sign` Int8 COMMENT '+1 adds this row; -1 takes back the same row written before, when an event that arrived later changed the answer. Sum it: a row stands while its signs sum to 1',
    `kafka_topic` LowCardinality(String) COMMENT 'Topic of the event that changed it',
    `kafka_topic_id` LowCardinality(String) DEFAULT '' COMMENT 'Kafka\'s id of the incarnation of the topic it was read from (a deleted and recreated topic gets a new one; empty from brokers without topic ids)',
    `kafka_partition` UInt32 COMMENT 'Its partition',
    `kafka_offset` UInt64 COMMENT 'Its offset'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(reviewed_at)
ORDER BY (project_id, annotator_id, reviewed_at)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Changes to what only a task\'s history tells about each review, as the workers derive it from the task\'s reviews sorted by time. A review judges one annotator\'s work on the task: its round is 1 + the earlier reviews of that (task, annotator); it is first-pass accepted when accepted with no earlier rejection of that work, and a rework review when it comes after a rejection of it. A review that arrives late takes back the rows of the later ones it renumbers. Read review_rounds for the current rows.';

CREATE TABLE IF NOT EXISTS rollup_annotator_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of occurred_at',
    `annotations_started` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_started events',
    `annotations_submitted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_submitted events',
    `annotations_manual` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions with source = manual',
    `annotations_model_assisted` SimpleAggregateFunction(sum, UInt64) COMMENT 'Submissions with source = model_assisted',
    `annotations_skipped` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_skipped events',
    `handle_time_ms_sum` SimpleAggregateFunction(sum, Int64) COMMENT 'Sum of the handle times of submissions (handle_times), ms',
    `handle_time_count` SimpleAggregateFunction(sum, Int64) COMMENT 'Submissions with a known handle time',
    `handle_time_ms_counts` SimpleAggregateFunction(sumMap, Map(UInt32, Int64)) COMMENT 'How many submissions took each handle time, ms -> count',
    `tasks` AggregateFunction(uniq, String) COMMENT 'Distinct tasks touched',
    `first_event_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')) COMMENT 'Earliest event',
    `last_event_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest event'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, annotator and hour: output, skips and handle time of annotation work.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_annotator_hour
TO rollup_annotator_hour
AS SELECT
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
FROM events
-- reviews carry the reviewed annotator's id but are the reviewer's work: they live in the
-- review rollup
WHERE annotator_id != ''
  AND event_type IN ('annotation_started', 'annotation_submitted', 'annotation_skipped')
GROUP BY project_id, annotator_id, hour;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_annotator_hour_handle_times
TO rollup_annotator_hour
AS SELECT
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
FROM handle_time_changes AS h
GROUP BY project_id, annotator_id, hour;

CREATE TABLE IF NOT EXISTS rollup_gold_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the submission',
    `gold_answers` SimpleAggregateFunction(sum, Int64) COMMENT 'Submissions on gold tasks',
    `gold_correct` SimpleAggregateFunction(sum, Int64) COMMENT 'Submissions on gold tasks equal to the gold label'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, annotator and hour: answers on honeypot (gold) tasks and how many were right.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_gold_hour
TO rollup_gold_hour
AS SELECT
    project_id,
    annotator_id,
    toStartOfHour(answered_at) AS hour,
    sum(toInt64(g.sign)) AS gold_answers,
    sum(g.sign * toInt64(g.correct)) AS gold_correct
FROM gold_answer_changes AS g
GROUP BY project_id, annotator_id, hour;

CREATE TABLE IF NOT EXISTS rollup_review_rounds_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `hour` DateTime('UTC') COMMENT 'Start of the hour of the review',
    `reviews` SimpleAggregateFunction(sum, Int64) COMMENT 'Reviews',
    `first_pass_accepted` SimpleAggregateFunction(sum, Int64) COMMENT 'Reviews accepting work never rejected before',
    `rework_reviews` SimpleAggregateFunction(sum, Int64) COMMENT 'Reviews of work rejected before',
    `max_round` SimpleAggregateFunction(max, UInt16) COMMENT 'Most review rounds one piece of work needed'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, annotator_id, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, reviewed annotator and hour: reviews, first-pass acceptances and rework.';

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_review_rounds_hour
TO rollup_review_rounds_hour
AS SELECT
    project_id,
    annotator_id,
    toStartOfHour(reviewed_at) AS hour,
    sum(toInt64(r.sign)) AS reviews,
    sum(r.sign * toInt64(r.first_pass_accepted)) AS first_pass_accepted,
    sum(r.sign * toInt64(r.rework)) AS rework_reviews,
    max(r.round) AS max_round
FROM review_round_changes AS r
GROUP BY project_id, annotator_id, hour;

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
GROUP BY project_id, minute;

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
COMMENT 'Throughput per project and minute. For other buckets, sum these columns.';

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
COMMENT 'Output and handle time per annotator and hour. Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.tables.exact_quantile).';

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
COMMENT 'Honeypot answers per annotator and hour. Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.';

CREATE VIEW IF NOT EXISTS agreement_summary
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `tasks` Int64 COMMENT 'Tasks two or more annotators answered, counted in the window',
    `ratings` Int64 COMMENT 'First answers on them',
    `percent_agreement` Float64 COMMENT 'Share of annotator pairs that agree',
    `fleiss_kappa` Nullable(Float64) COMMENT 'Fleiss\' kappa (generalised to varying raters per task)',
    `krippendorff_alpha` Nullable(Float64) COMMENT 'Krippendorff\'s alpha, nominal',
    `gwet_ac1` Nullable(Float64) COMMENT 'Gwet\'s AC1 over the labels seen in the window'
)
AS SELECT project_id, tasks, ratings, percent_agreement, fleiss_kappa, krippendorff_alpha, gwet_ac1
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
    WHERE labeled_at >= {from:DateTime64(3, 'UTC')} AND labeled_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id
    HAVING tasks > 0
)
COMMENT 'Inter-annotator agreement per project over a window of labeled_at, from task_agreement_changes. Parameterized: SELECT * FROM agreement_summary(from=\'2026-11-01 00:00:00\', to=\'2026-12-01 00:00:00\'). Kappa-type values are NULL when chance agreement is 1 (a single label in the window).';

CREATE VIEW IF NOT EXISTS pair_kappa
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_a` String COMMENT 'First annotator of the pair',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `items` Int64 COMMENT 'Tasks both answered',
    `percent_agreement` Float64 COMMENT 'Share of those tasks with the same first answer',
    `cohen_kappa` Nullable(Float64) COMMENT 'Cohen\'s kappa; NULL when chance agreement is 1'
)
AS SELECT project_id, annotator_a, annotator_b, items, percent_agreement, cohen_kappa
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
    WHERE labeled_at >= {from:DateTime64(3, 'UTC')} AND labeled_at < {to:DateTime64(3, 'UTC')}
    GROUP BY project_id, annotator_a, annotator_b
    HAVING items > 0
)
COMMENT 'Cohen\'s kappa per annotator pair over a window of labeled_at, from pair_agreement_changes. Parameterized like agreement_summary: SELECT * FROM pair_kappa(from=\'…\', to=\'…\').';

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
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour. Sum counts over a range, then divide.';

CREATE VIEW IF NOT EXISTS handle_times
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `task_id` String COMMENT 'Task',
    `submission_id` String COMMENT 'event_id of the submission',
    `submitted_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the submission, UTC',
    `handle_time_ms` UInt32 COMMENT 'Active time on the item, ms',
    `measured_by` LowCardinality(String) COMMENT 'tool, or start_to_submit when derived'
)
AS SELECT project_id, annotator_id, task_id, submission_id, submitted_at, handle_time_ms, measured_by
FROM handle_time_changes
GROUP BY project_id, annotator_id, task_id, submission_id, submitted_at, handle_time_ms, measured_by
HAVING sum(sign) > 0
COMMENT 'The handle time of every submission whose handle time is known, as it stands: measured by the tool (duration_ms), or the time from the annotator\'s latest annotation_started before the submission — whatever order the two arrived in (handle_time_changes, netted).';

CREATE VIEW IF NOT EXISTS gold_answers
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `task_id` String COMMENT 'Task',
    `submission_id` String COMMENT 'event_id of the submission',
    `answered_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the submission, UTC',
    `label` String COMMENT 'The submitted label',
    `gold_label` String COMMENT 'The known answer',
    `correct` Bool COMMENT 'label = gold_label'
)
AS SELECT project_id, annotator_id, task_id, submission_id, answered_at, label, gold_label, correct
FROM gold_answer_changes
GROUP BY project_id, annotator_id, task_id, submission_id, answered_at, label, gold_label, correct
HAVING sum(sign) > 0
COMMENT 'Every answer on a honeypot task as it stands, with the gold label and whether it was right.';

CREATE VIEW IF NOT EXISTS review_rounds
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `annotator_id` String COMMENT 'Whose work was reviewed',
    `reviewer_id` String COMMENT 'Who reviewed',
    `review_id` String COMMENT 'event_id of the review',
    `reviewed_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the review, UTC',
    `round` UInt16 COMMENT '1 for the first review of this annotator\'s work on the task, 2 for the next, ...',
    `verdict` LowCardinality(String) COMMENT 'accepted, fixed or rejected',
    `first_pass_accepted` Bool COMMENT 'Accepted, and this work was never rejected before',
    `rework` Bool COMMENT 'This work was rejected before'
)
AS SELECT project_id, task_id, annotator_id, reviewer_id, review_id, reviewed_at, round, verdict, first_pass_accepted,
       rework
FROM review_round_changes
GROUP BY project_id, task_id, annotator_id, reviewer_id, review_id, reviewed_at, round, verdict, first_pass_accepted,
         rework
HAVING sum(sign) > 0
COMMENT 'Every review as it stands: its round, and whether it accepted on the first pass or judged rework.';

CREATE VIEW IF NOT EXISTS task_agreement
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `labeled_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the latest first answer, UTC',
    `raters` UInt16 COMMENT 'Annotators who answered the task (first answer each)',
    `label_counts` Map(String, UInt32) COMMENT 'How many annotators chose each label',
    `agreeing_pairs` UInt32 COMMENT 'Ordered pairs of annotators with the same label: sum n(n-1)'
)
AS SELECT project_id, task_id, labeled_at, raters, label_counts, agreeing_pairs
FROM task_agreement_changes
GROUP BY project_id, task_id, labeled_at, raters, label_counts, agreeing_pairs
HAVING sum(sign) > 0
COMMENT 'Agreement statistics of every task two or more annotators answered, as they stand.';

CREATE VIEW IF NOT EXISTS pair_agreement
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `task_id` String COMMENT 'Task',
    `labeled_at` DateTime64(3, 'UTC') COMMENT 'occurred_at of the later of the two first answers, UTC',
    `annotator_a` String COMMENT 'First annotator of the pair (a < b)',
    `annotator_b` String COMMENT 'Second annotator of the pair',
    `label_a` String COMMENT 'First answer of annotator_a',
    `label_b` String COMMENT 'First answer of annotator_b'
)
AS SELECT project_id, task_id, labeled_at, annotator_a, annotator_b, label_a, label_b
FROM pair_agreement_changes
GROUP BY project_id, task_id, labeled_at, annotator_a, annotator_b, label_a, label_b
HAVING sum(sign) > 0
COMMENT 'First answers of every annotator pair on tasks both answered, as they stand.';

INSERT INTO rollup_annotator_hour
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
FROM events
-- reviews carry the reviewed annotator's id but are the reviewer's work: they live in the
-- review rollup
WHERE annotator_id != ''
  AND event_type IN ('annotation_started', 'annotation_submitted', 'annotation_skipped')
GROUP BY project_id, annotator_id, hour;

DROP VIEW IF EXISTS project_throughput_minute SYNC;

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
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.';

DROP VIEW IF EXISTS annotator_productivity_hour SYNC;

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
COMMENT 'Output and handle time per annotator and hour, for analysts (no code reads it). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).';

DROP VIEW IF EXISTS label_throughput_hour SYNC;

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
COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (no code reads it).';

DROP VIEW IF EXISTS review_outcomes_hour SYNC;

CREATE VIEW IF NOT EXISTS review_outcomes_hour
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `annotator_id` String COMMENT 'Pseudonymous annotator',
    `hour` DateTime('UTC') COMMENT 'Start of the hour, UTC',
    `reviewed` UInt64 COMMENT 'Reviews of this annotator\'s work',
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
COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (no code reads it). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.';

DROP VIEW IF EXISTS gold_accuracy_hour SYNC;

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
COMMENT 'Honeypot answers per annotator and hour, for analysts (no code reads it). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.';

DROP VIEW IF EXISTS annotator_active_hour SYNC;

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
COMMENT 'Active time per annotator and hour, for analysts (no code reads it): gaps between an annotator\'s annotation events shorter than the workers\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).';

DROP VIEW IF EXISTS first_pass_hour SYNC;

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
COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (no code reads it). Sum counts over a range, then divide.';

ALTER TABLE events
    ADD COLUMN IF NOT EXISTS `annotation_id` String DEFAULT '' COMMENT 'The tool\'s id of the annotation an edit or deletion is about (v1.1)' AFTER task_id,
    ADD COLUMN IF NOT EXISTS `source_system` LowCardinality(String) DEFAULT '' COMMENT 'Tool or producer that sent the event: label-studio, cvat, labelbox, api, ...; empty when not given (v1.1)' AFTER source;

ALTER TABLE rollup_project_minute
    ADD COLUMN IF NOT EXISTS `annotations_updated` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_updated events: edits of submitted work (rework)' AFTER tasks_completed,
    ADD COLUMN IF NOT EXISTS `annotations_deleted` SimpleAggregateFunction(sum, UInt64) COMMENT 'annotation_deleted events (the deleted work stays counted)' AFTER annotations_updated;

DROP TABLE IF EXISTS mv_rollup_project_minute SYNC;

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
GROUP BY project_id, minute;

DROP VIEW IF EXISTS project_throughput_minute SYNC;

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
COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.';

CREATE TABLE IF NOT EXISTS rollup_source_minute
(
    `project_id` LowCardinality(String) COMMENT 'Project',
    `source_system` LowCardinality(String) COMMENT 'Tool or producer that sent the events (events.source_system); \'unspecified\' when none',
    `minute` DateTime('UTC') COMMENT 'Start of the minute of occurred_at',
    `events` SimpleAggregateFunction(sum, UInt64) COMMENT 'Valid events of every type',
    `last_occurred_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest occurred_at',
    `last_received_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')) COMMENT 'Latest received_at'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, source_system, minute)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per project, source system and minute: events and the newest of them, so every source is visible as its own stream. Events that name no source_system count as \'unspecified\'.';

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
GROUP BY project_id, source_system, minute;

INSERT INTO rollup_source_minute
SELECT
    project_id,
    toLowCardinality(if(e.source_system = '', 'unspecified', e.source_system)) AS source_system,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events,
    max(occurred_at) AS last_occurred_at,
    max(received_at) AS last_received_at
FROM events AS e
GROUP BY project_id, source_system, minute;

ALTER TABLE project_throughput_minute MODIFY COMMENT 'Throughput per project and minute, for analysts (and Superset and Grafana, see deploy/). For other buckets, sum these columns.';

ALTER TABLE annotator_productivity_hour MODIFY COMMENT 'Output and handle time per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).';

ALTER TABLE label_throughput_hour MODIFY COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (and Superset and Grafana, see deploy/).';

ALTER TABLE review_outcomes_hour MODIFY COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.';

ALTER TABLE gold_accuracy_hour MODIFY COMMENT 'Honeypot answers per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.';

ALTER TABLE annotator_active_hour MODIFY COMMENT 'Active time per annotator and hour, for analysts (and Superset and Grafana, see deploy/): gaps between an annotator\'s annotation events shorter than the workers\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).';

ALTER TABLE first_pass_hour MODIFY COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). Sum counts over a range, then divide.';
