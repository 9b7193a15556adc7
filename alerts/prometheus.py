"""`labelpulse alerts render-prometheus`: the rules as Prometheus recording and alerting rules.

For teams that evaluate alerts in Prometheus: each rule whose kind has a metric to stand on is
written as PromQL over what the processes export (worker metrics, and the per-project business
gauges the evaluator serves), keeping its name, `for`, `keep_firing_for`, labels and
annotations. Per-annotator kinds have no metric by design (annotator ids are never labels) and
stay with the evaluator. Where the gauges have a fixed window (annotations in the last hour,
quality over the last day), the rendered rule uses it, and the rule says so in a comment.
Prometheus-only pipeline rules (a target down, consumer lag, the evaluator failing) come too.
Each metric's PromQL is its twin in schema.metric_definitions, beside the SQL the evaluator runs.
`promtool check rules` and `promtool test rules` run on the output in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from alerts.rules import Rule, format_duration
from alerts.schedule import Schedule
from schema import metric_definitions as metric
from schema.metric_definitions import gauge
from schema.stats import wilson_bound_promql

RUNBOOKS = "https://github.com/labelpulse/labelpulse/blob/main/docs/runbooks.md"

RECORDING_RULES = [
    {"record": "labelpulse:worker_events:rate5m", "expr": "sum(rate(labelpulse_worker_events_total[5m]))"},
    {"record": "labelpulse:worker_dead_letters:rate5m", "expr": "sum(rate(labelpulse_worker_dead_letters_total[5m]))"},
    {
        "record": "labelpulse:worker_dead_letter_ratio:rate5m",
        "expr": metric.dead_letter_ratio_promql("5m"),
    },
    {
        "record": "labelpulse:worker_consumer_lag_messages:sum",
        "expr": "sum by (topic) (labelpulse_worker_consumer_lag_messages)",
    },
    {
        "record": "labelpulse:worker_insert_duration_seconds:p95_5m",
        "expr": "histogram_quantile(0.95, sum by (le) (rate(labelpulse_worker_insert_duration_seconds_bucket[5m])))",
    },
    # Per project, from the metrics' PromQL twins, so dashboards (deploy/grafana) chart a series by name
    # instead of spelling a formula.
    {"record": "labelpulse:project_backlog_eta:hours", "expr": metric.eta_hours_promql()},
    {"record": "labelpulse:project_first_pass_acceptance:ratio_1d", "expr": metric.FIRST_PASS_ACCEPTANCE.promql()},
    {"record": "labelpulse:project_gold_accuracy:ratio_1d", "expr": metric.GOLD_ACCURACY.promql()},
]


def _prometheus_only() -> list[dict[str, Any]]:
    def rule(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{RUNBOOKS}#{name.lower()}",
            },
        }

    return [
        rule("LabelPulseTargetDown", 'up{job=~"labelpulse.*"} == 0', "2m", "page",
             "A LabelPulse process does not answer scrapes",
             "{{ $labels.job }} at {{ $labels.instance }} has not answered for 2 minutes."),
        rule("ConsumerLagHigh", "labelpulse:worker_consumer_lag_messages:sum > 100000", "10m", "page",
             "Workers are far behind the events topic",
             "{{ $value }} messages of {{ $labels.topic }} are waiting to be processed."),
        rule("BusinessGaugesDown", "labelpulse_business_up == 0", "5m", "ticket",
             "The evaluator cannot read ClickHouse",
             "Business gauges and alert rules are not being evaluated."),
        # Ingest refuses at the door: its refusals reach the dead-letter topic, not the workers' dead_letters
        # table that the Pipeline view and the dead-letter rule read, so they get a rule of their own.
        rule("IngestRefusing",
             'sum by (source, outcome) (increase(labelpulse_ingest_requests_total'
             '{outcome=~"refused|partly_refused|malformed|unauthorized"}[10m])) > 0', "10m", "ticket",
             "Ingest keeps refusing {{ $labels.source }} requests ({{ $labels.outcome }})",
             "{{ $value }} requests in 10 minutes; see ingest's answers and the dead-letter topic."),
        rule("AlertRulesFailing", "increase(labelpulse_evaluator_rule_errors_total[10m]) > 0", "10m", "ticket",
             "Alert rule {{ $labels.rule }} keeps failing",
             "{{ $value }} failed evaluations in 10 minutes; see the evaluator's log."),
    ]  # fmt: skip


def render(rules: Sequence[Rule]) -> tuple[str, dict[str, str]]:
    """The Prometheus rule file text, and the rules left to the evaluator with the reason why."""
    groups: dict[str, list[dict[str, Any]]] = {}
    skipped = {}
    for rule in rules:
        expression = EXPRESSIONS.get(rule.kind)
        expr = expression(rule.params) if expression else None
        if expr is None:
            skipped[rule.alert] = (
                "nothing to check (no deadlines)" if expression else _NO_TWIN.get(rule.kind, "per annotator: no metric")
            )
            continue
        rendered: dict[str, Any] = {"alert": rule.alert, "expr": expr, "for": format_duration(rule.for_)}
        if rule.keep_firing_for:
            rendered["keep_firing_for"] = format_duration(rule.keep_firing_for)
        rendered["labels"] = dict(rule.labels)
        rendered["annotations"] = dict(rule.annotations)
        groups.setdefault(rule.group, []).append(rendered)
    document = {
        "groups": [
            {"name": "labelpulse_recording", "rules": RECORDING_RULES},
            *({"name": f"labelpulse_{name}", "rules": members} for name, members in groups.items()),
            {"name": "labelpulse_prometheus_only", "rules": _prometheus_only()},
        ]
    }
    header = (
        "# Rendered by `labelpulse alerts render-prometheus` from LabelPulse's alert rules; edit those, not this.\n"
        + "".join(f"# Left to `labelpulse alerts`: {name}, {why}\n" for name, why in skipped.items())
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=200), skipped


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as people write them in rule files."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def _during(schedule: Schedule) -> str:
    """` and on() (...)` limiting an expression to the schedule's hours and weekdays (UTC), or ''."""
    parts = []
    if (schedule.start_minute, schedule.end_minute) != (0, 24 * 60):
        minute = "(hour() * 60 + minute())"
        if schedule.start_minute < schedule.end_minute:
            parts.append(f"{minute} >= {schedule.start_minute} < {schedule.end_minute}")
        else:
            parts.append(f"{minute} >= {schedule.start_minute} or {minute} < {schedule.end_minute}")
    if len(schedule.weekdays) < 7:
        # Python counts Monday = 0; PromQL's day_of_week() counts Sunday = 0.
        days = sorted((day + 1) % 7 for day in schedule.weekdays)
        parts.append("\n    or ".join(f"day_of_week() == {day}" for day in days))
    return "".join(f"\nand on() ({part})" for part in parts)


def _throughput_drop(params: dict[str, Any]) -> str:
    # The gauge counts the last hour; the baseline is its average over the lookback (ewma) or its
    # value a week ago — the closest Prometheus has to the evaluator's minute-level baseline.
    current = gauge("annotations_last_hour")
    if params["baseline"] == "ewma":
        lookback, window = format_duration(params["lookback"]), format_duration(params["window"])
        baseline = f"avg_over_time({current}[{lookback}] offset {window})"
    else:
        baseline = f"({current} offset 1w)"
    return f"{current} < {params['drop_ratio']} * {baseline}\nand {baseline} >= {params['min_baseline_per_hour']}"


def _no_events(params: dict[str, Any]) -> str:
    age = gauge("seconds_since_last_event")
    window_s = int(params["window"].total_seconds())
    return f"{age} >= {window_s} < {7 * 86_400}" + _during(Schedule.of(params))


def _quality_drop(params: dict[str, Any]) -> str:
    # Over the last day: the window of the business gauges.
    gauges = metric.QUALITY_METRICS[params["metric"]].gauges
    assert gauges is not None
    successes, trials = gauge(gauges[0]), gauge(gauges[1])
    bound = wilson_bound_promql(successes, trials, params["bound"] == "upper")
    return f"{bound} < {params['threshold']}\nand {trials} >= {params['min_n']}"


def _backlog_eta(params: dict[str, Any]) -> str | None:
    # Pace: tasks completed in the last hour (the gauge's window).
    if not params["deadlines"]:
        return None
    terms = []
    for project, deadline in sorted(params["deadlines"].items()):
        selector = '{project="' + project.replace("\\", "\\\\").replace('"', '\\"') + '"}'
        hours_left = f"({deadline.timestamp():.0f} - time()) / 3600"
        backlog = gauge("backlog", selector)
        terms.append(f"({metric.eta_hours_promql(selector)} - {hours_left} > 0 and {backlog} > 0)")
    return "\nor ".join(terms)


def _pipeline_freshness(params: dict[str, Any]) -> str:
    max_age = int(params["max_age"].total_seconds())
    newest = "max(labelpulse_worker_last_batch_timestamp_seconds)"
    return f"time() - {newest} >= {max_age}" + _during(Schedule.of(params))


def _pipeline_dead_letter_rate(params: dict[str, Any]) -> str:
    window = format_duration(params["window"])
    dead = metric.dead_letters_promql(window)
    return (
        f"{metric.dead_letter_ratio_promql(window)} > {params['max_ratio']}\nand {dead} >= {params['min_dead_letters']}"
    )


# Kinds without a PromQL twin that are not per annotator, and why.
_NO_TWIN = {
    "source_quiet": "per source: no gauge holds a source's newest event time (the workers count arrivals)",
}

EXPRESSIONS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "throughput_drop": _throughput_drop,
    "no_events": _no_events,
    "quality_drop": _quality_drop,
    "backlog_eta": _backlog_eta,
    "pipeline_freshness": _pipeline_freshness,
    "pipeline_dead_letter_rate": _pipeline_dead_letter_rate,
}
