"""The evaluator's own instrumentation: its Prometheus metrics (served with the business gauges by `labelpulse alerts`).

Labels are rule and group names (a fixed set from the rule files) and alert states; the
instances' own labels (projects, annotators) are never metric labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVALUATIONS = Counter("labelpulse_evaluator_evaluations", "Evaluations of a rule group", ["group"])
RULE_ERRORS = Counter(
    "labelpulse_evaluator_rule_errors", "Rule evaluations that failed (query or history write)", ["rule"]
)
DURATION = Histogram(
    "labelpulse_evaluator_evaluation_duration_seconds",
    "Time to evaluate every rule of a group",
    ["group"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAST_EVALUATION = Gauge(
    "labelpulse_evaluator_last_evaluation_timestamp_seconds", "When a group was last evaluated (Unix time)", ["group"]
)
TRANSITIONS = Counter(
    "labelpulse_evaluator_transitions", "Alert state transitions, by state entered", ["rule", "state"]
)
ALERTS = Gauge("labelpulse_alerts", "Alert instances pending or firing now", ["alertname", "severity", "state"])
RULES = Gauge("labelpulse_evaluator_rules", "Rules loaded")
RULE_FILE_ERRORS = Gauge("labelpulse_evaluator_rule_file_errors", "Problems found in rule files at the last load")
NOTIFICATIONS = Counter("labelpulse_evaluator_notifications", "Alerts sent, by receiver", ["receiver"])
NOTIFICATIONS_FAILED = Counter(
    "labelpulse_evaluator_notifications_failed", "Sends that failed (retried at the next evaluation)", ["receiver"]
)

# Per rule, for the dashboard's Alerts view ("is the watch on?") and its quality targets. Rule names are a
# fixed set from the rule files; instances' labels never appear.
RULE_INFO = Gauge(
    "labelpulse_evaluator_rule_info", "A loaded rule (always 1), with its group, kind and severity",
    ["rule", "group", "kind", "severity"],
)  # fmt: skip
RULE_LAST_EVALUATION = Gauge(
    "labelpulse_evaluator_rule_last_evaluation_timestamp_seconds",
    "When a rule was last evaluated without error (Unix time)",
    ["rule"],
)
RULE_VALUE = Gauge(
    "labelpulse_evaluator_rule_value",
    "At the rule's last evaluation, the value of its most urgent instance (firing before pending, the longest "
    "active first); NaN when its condition held for none",
    ["rule"],
)
QUALITY_TARGET = Gauge(
    "labelpulse_evaluator_quality_target_ratio",
    "The threshold of a quality_drop rule: the target its metric is held to, as a share",
    ["rule", "metric"],
)
