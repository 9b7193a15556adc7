"""The analyst views' comments say who reads them: they said "(no code reads it)", while Superset's datasets
and Grafana's dashboards (deploy/) read them.

Frozen: the statements it runs, spelled out; `__CLUSTER__` stands for the cluster's name.
"""

from schema.migrations import Statements, on_target

FORWARDS: Statements = [
    "ALTER TABLE project_throughput_minute MODIFY COMMENT 'Throughput per project and minute, for analysts (and Superset and Grafana, see deploy/). For other buckets, sum these columns.'",
    "ALTER TABLE annotator_productivity_hour MODIFY COMMENT 'Output and handle time per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'",
    "ALTER TABLE label_throughput_hour MODIFY COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (and Superset and Grafana, see deploy/).'",
    "ALTER TABLE review_outcomes_hour MODIFY COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'",
    "ALTER TABLE gold_accuracy_hour MODIFY COMMENT 'Honeypot answers per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'",
    "ALTER TABLE annotator_active_hour MODIFY COMMENT 'Active time per annotator and hour, for analysts (and Superset and Grafana, see deploy/): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'",
    "ALTER TABLE first_pass_hour MODIFY COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). Sum counts over a range, then divide.'",
]
FORWARDS_ON_CLUSTER: Statements = [
    "ALTER TABLE project_throughput_minute ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Throughput per project and minute, for analysts (and Superset and Grafana, see deploy/). For other buckets, sum these columns.'",
    "ALTER TABLE annotator_productivity_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Output and handle time per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'",
    "ALTER TABLE label_throughput_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (and Superset and Grafana, see deploy/).'",
    "ALTER TABLE review_outcomes_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'",
    "ALTER TABLE gold_accuracy_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Honeypot answers per annotator and hour, for analysts (and Superset and Grafana, see deploy/). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'",
    "ALTER TABLE annotator_active_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Active time per annotator and hour, for analysts (and Superset and Grafana, see deploy/): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'",
    "ALTER TABLE first_pass_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (and Superset and Grafana, see deploy/). Sum counts over a range, then divide.'",
]
BACKWARDS: Statements = [
    "ALTER TABLE project_throughput_minute MODIFY COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'",
    "ALTER TABLE annotator_productivity_hour MODIFY COMMENT 'Output and handle time per annotator and hour, for analysts (no code reads it). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'",
    "ALTER TABLE label_throughput_hour MODIFY COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (no code reads it).'",
    "ALTER TABLE review_outcomes_hour MODIFY COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (no code reads it). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'",
    "ALTER TABLE gold_accuracy_hour MODIFY COMMENT 'Honeypot answers per annotator and hour, for analysts (no code reads it). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'",
    "ALTER TABLE annotator_active_hour MODIFY COMMENT 'Active time per annotator and hour, for analysts (no code reads it): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'",
    "ALTER TABLE first_pass_hour MODIFY COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (no code reads it). Sum counts over a range, then divide.'",
]
BACKWARDS_ON_CLUSTER: Statements = [
    "ALTER TABLE project_throughput_minute ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Throughput per project and minute, for analysts (no code reads it). For other buckets, sum these columns.'",
    "ALTER TABLE annotator_productivity_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Output and handle time per annotator and hour, for analysts (no code reads it). Quantiles are exact, per hour; for other ranges merge rollup_annotator_hour.handle_time_ms_counts with sumMap and take quantileExactInclusive of the values repeated by their counts (schema.metric_definitions.exact_quantile).'",
    "ALTER TABLE label_throughput_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Submissions per label class, source and hour, with model pre-label acceptance, for analysts (no code reads it).'",
    "ALTER TABLE review_outcomes_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Review verdicts per reviewed annotator and hour, for analysts (no code reads it). acceptance_score = (accepted + fixed) / reviewed; rejection_rate = rejected / reviewed.'",
    "ALTER TABLE gold_accuracy_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Honeypot answers per annotator and hour, for analysts (no code reads it). Judge accuracy over enough items: sum gold_answers and gold_correct over the range first, then divide.'",
    "ALTER TABLE annotator_active_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'Active time per annotator and hour, for analysts (no code reads it): gaps between an annotator\\'s annotation events shorter than the workers\\' idle threshold (LABELPULSE_IDLE_THRESHOLD_S, default 100 s).'",
    "ALTER TABLE first_pass_hour ON CLUSTER '__CLUSTER__' MODIFY COMMENT 'First-pass acceptance and rework per reviewed annotator and hour, for analysts (no code reads it). Sum counts over a range, then divide.'",
]

forwards = on_target(FORWARDS, FORWARDS_ON_CLUSTER)
backwards = on_target(BACKWARDS, BACKWARDS_ON_CLUSTER)
