"""What the alert evaluator (`labelpulse alerts`) says about itself on its Prometheus /metrics: the rules it
watches with — per rule its state, last evaluation and last value — and the quality targets its rules hold
projects to. The dashboard reads it the way Prometheus does; parsing is pure."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

RULE_COLUMNS = ["rule", "group", "kind", "severity", "state", "firing", "pending", "evaluated_at", "value", "errors"]


class EvaluatorUnavailable(RuntimeError):
    """The evaluator's /metrics did not answer, or not with its metrics."""


@dataclass(frozen=True)
class EvaluatorReport:
    rules: pd.DataFrame  # RULE_COLUMNS, one row per loaded rule; evaluated_at in UTC, NaT before the first
    targets: dict[str, float] = field(default_factory=dict)  # quality metric -> its target share


def parse(text: str) -> EvaluatorReport:
    """The report in a /metrics page. A metric with several quality_drop rules is held to the strictest."""
    info: dict[str, dict[str, str]] = {}
    per_rule: dict[str, dict[str, float]] = {}
    targets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "labelpulse_evaluator_rule_info":
                info[labels["rule"]] = labels
            elif sample.name == "labelpulse_evaluator_quality_target_ratio":
                targets[labels["metric"]] = max(sample.value, targets.get(labels["metric"], -math.inf))
            elif sample.name == "labelpulse_alerts" and labels.get("state") in ("firing", "pending"):
                per_rule.setdefault(labels["alertname"], {})[labels["state"]] = sample.value
            elif sample.name in (
                "labelpulse_evaluator_rule_last_evaluation_timestamp_seconds",
                "labelpulse_evaluator_rule_value",
                "labelpulse_evaluator_rule_errors_total",
            ):
                per_rule.setdefault(labels["rule"], {})[sample.name] = sample.value
    rows = []
    for rule, labels in sorted(info.items(), key=lambda item: (item[1]["group"], item[0])):
        numbers = per_rule.get(rule, {})
        firing, pending = int(numbers.get("firing", 0)), int(numbers.get("pending", 0))
        evaluated = numbers.get("labelpulse_evaluator_rule_last_evaluation_timestamp_seconds")
        state = "firing" if firing else "pending" if pending else "inactive" if evaluated else "not evaluated yet"
        value = numbers.get("labelpulse_evaluator_rule_value", math.nan)
        rows.append(
            [
                rule,
                labels["group"],
                labels["kind"],
                labels["severity"],
                state,
                firing,
                pending,
                pd.Timestamp(evaluated, unit="s", tz="UTC") if evaluated else pd.NaT,
                None if math.isnan(value) else value,
                int(numbers.get("labelpulse_evaluator_rule_errors_total", 0)),
            ]
        )
    return EvaluatorReport(pd.DataFrame(rows, columns=RULE_COLUMNS), targets)


def read(url: str, timeout_s: float = 2.0) -> EvaluatorReport:
    """The report of the evaluator serving `url` (its /metrics); EvaluatorUnavailable when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as error:
        raise EvaluatorUnavailable(f"no answer from {url} ({getattr(error, 'reason', error)})") from error
    try:
        report = parse(text)
    except ValueError as error:
        raise EvaluatorUnavailable(f"{url} does not serve Prometheus metrics ({error})") from error
    if report.rules.empty:
        raise EvaluatorUnavailable(f"{url} answers, but not as the LabelPulse alert evaluator (no rule metrics)")
    return report
