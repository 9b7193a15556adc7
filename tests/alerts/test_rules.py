"""Rule files: the default set loads, and every kind of mistake is named by file, line and field."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.rules import (
    DEFAULT_RULES_DIR,
    KINDS,
    format_duration,
    format_value,
    load_rule_file,
    load_rules,
    parse_duration,
    render,
)

GOOD_RULE = """\
groups:
  - name: g
    rules:
      - alert: TooQuiet
        kind: pipeline_freshness
        params: {max_age: 5m}
        for: 1m
        labels: {severity: page, team: ops}
        annotations:
          summary: s
          description: d
          runbook_url: https://runbooks.example.com/too-quiet
"""


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_default_rules_load_and_cover_every_kind() -> None:
    loaded = load_rules(DEFAULT_RULES_DIR)
    assert loaded.errors == []
    assert {rule.kind for rule in loaded.rules} == set(KINDS)
    assert all(rule.annotations["runbook_url"].startswith("https://") for rule in loaded.rules)


def test_a_good_rule_gets_its_defaults_and_durations(tmp_path: Path) -> None:
    (rule,) = load_rule_file(write(tmp_path, GOOD_RULE)).rules
    all_week = frozenset(range(7))
    assert rule.params == {"max_age": timedelta(minutes=5), "working_hours": (0, 1440), "weekdays": all_week}
    assert (rule.for_, rule.keep_firing_for, rule.interval) == (
        timedelta(minutes=1),
        timedelta(0),
        timedelta(minutes=1),
    )
    assert rule.labels == {"severity": "page", "team": "ops"}
    assert rule.source.endswith("rules.yml:4")


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("kind: pipeline_freshness", "kind: telepathy", 5, "groups.0.rules.0.kind", "unknown kind 'telepathy'"),
        ("alert: TooQuiet", "alert: 9lives", 4, "groups.0.rules.0.alert", "an alert name is letters"),
        ("for: 1m", "for: soon", 7, "groups.0.rules.0.for", "expected a duration like 30s"),
        ("for: 1m", "for: 5 minutes", 7, "groups.0.rules.0.for", "expected a duration"),
        ("{max_age: 5m}", "{max_age: 5m, colour: red}", 6, "groups.0.rules.0.params.colour", "unknown field 'colour'"),
        ("{severity: page, team: ops}", "{severity: urgent}", 8, "groups.0.rules.0.labels.severity", "severity must"),
        ("{severity: page, team: ops}", "{severity: page, 2x: y}", 8, "groups.0.rules.0.labels.2x", "not a valid"),
        ("runbook_url: https://runbooks.example.com/too-quiet", "runbook_url: see wiki", 12,
         "groups.0.rules.0.annotations.runbook_url", "http(s) URL"),
        ("          summary: s\n", "", 9, "groups.0.rules.0.annotations.summary", "needs annotations.summary"),
        ("  - name: g", "  - name: ''", 2, "groups.0.name", "every group needs a name"),
        ("        for: 1m\n", "        for: 1m\n        severity: page\n", 8, "groups.0.rules.0.severity",
         "unknown field 'severity'"),
        ("groups:", "grups:", 1, "grups", "unknown field 'grups'"),
    ],
)  # fmt: skip
def test_mistakes_are_named_by_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in GOOD_RULE
    path = write(tmp_path, GOOD_RULE.replace(old, new, 1))
    loaded = load_rule_file(path)
    assert loaded.rules == []
    (error,) = loaded.errors
    assert (error.file, error.line, error.field) == (str(path), line, field), error
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: {field}: ")


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ("{metric: gold_accuracy}", "threshold", "needs params.threshold"),
        ("{metric: speed, threshold: 0.5}", "metric", "must be one of first_pass_acceptance"),
        ("{metric: gold_accuracy, threshold: 1.5}", "threshold", "at most 1.0"),
        ("{metric: gold_accuracy, threshold: high}", "threshold", "expected float"),
        ("{metric: gold_accuracy, threshold: 0.5, min_n: 0}", "min_n", "at least 1"),
        ("{metric: gold_accuracy, threshold: 0.5, min_n: true}", "min_n", "expected int"),
    ],
)
def test_params_are_checked_against_their_kind(tmp_path: Path, params: str, field: str, message: str) -> None:
    text = GOOD_RULE.replace("kind: pipeline_freshness", "kind: quality_drop").replace("{max_age: 5m}", params)
    (error,) = load_rule_file(write(tmp_path, text)).errors
    assert error.field == f"groups.0.rules.0.params.{field}" and error.line == 6
    assert message in error.message


def test_yaml_that_does_not_parse_names_its_line(tmp_path: Path) -> None:
    (error,) = load_rule_file(write(tmp_path, GOOD_RULE.replace("for: 1m", "for: [1m"))).errors
    assert error.field == "yaml" and error.line >= 7 and "not valid YAML" in error.message


def test_a_broken_file_never_stops_the_others(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE, "a.yml")
    write(tmp_path, "groups: [}", "b.yml")
    write(tmp_path, GOOD_RULE.replace("TooQuiet", "Other"), "c.yaml")
    loaded = load_rules(tmp_path)
    assert [rule.alert for rule in loaded.rules] == ["TooQuiet", "Other"]
    assert [Path(error.file).name for error in loaded.errors] == ["b.yml"]


def test_an_alert_name_defined_twice_is_refused_naming_both_places(tmp_path: Path) -> None:
    write(tmp_path, GOOD_RULE, "a.yml")
    write(tmp_path, GOOD_RULE, "b.yml")
    loaded = load_rules(tmp_path)
    assert [rule.source for rule in loaded.rules] == [f"{tmp_path / 'a.yml'}:4"]
    (error,) = loaded.errors
    assert error.file.endswith("b.yml") and "already defined at" in error.message and "a.yml:4" in error.message


def test_an_empty_file_has_no_rules_and_no_errors(tmp_path: Path) -> None:
    loaded = load_rule_file(write(tmp_path, "# nothing yet\n"))
    assert (loaded.rules, loaded.errors) == ([], [])


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1w", 604800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("kind", "params", "field", "message"),
    [
        ("no_events", "{working_hours: 7-19}", "working_hours", "like 07:00-19:00"),
        ("no_events", "{working_hours: '25:00-26:00'}", "working_hours", "not a time range"),
        ("no_events", "{working_hours: '08:00-08:00'}", "working_hours", "empty range"),
        ("no_events", "{weekdays: weekdays}", "weekdays", "like mon-fri"),
        ("no_events", "{weekdays: mon-funday}", "weekdays", "like mon-fri"),
        ("pipeline_freshness", "{working_hours: 9}", "working_hours", "expected str"),
        ("backlog_eta", "{deadlines: {a: next tuesday}}", "deadlines", "not an ISO 8601 time"),
        ("backlog_eta", "{deadlines: {a: '2026-12-01T18:00:00'}}", "deadlines", "needs a UTC offset"),
        ("backlog_eta", "{deadlines: [a]}", "deadlines", "expected dict"),
        ("backlog_eta", "{}", "deadlines", "needs params.deadlines"),
        ("source_quiet", "{sources: cvat}", "sources", "expected list"),
        ("source_quiet", "{sources: [Label Studio]}", "sources", "'Label Studio' is not a source_system"),
        ("source_quiet", "{sources: [cvat, 7]}", "sources", "7 is not a source_system"),
        ("source_quiet", "{window: soon}", "window", "expected a duration"),
    ],
)
def test_schedules_and_deadlines_are_parsed_or_refused(
    tmp_path: Path, kind: str, params: str, field: str, message: str
) -> None:
    text = GOOD_RULE.replace("kind: pipeline_freshness", f"kind: {kind}").replace("{max_age: 5m}", params)
    (error,) = load_rule_file(write(tmp_path, text)).errors
    assert error.field == f"groups.0.rules.0.params.{field}"
    assert message in error.message


def test_schedules_and_deadlines_parse_to_what_the_evaluator_uses(tmp_path: Path) -> None:
    params = "{working_hours: '22:00-06:00', weekdays: 'fri-mon'}"
    text = GOOD_RULE.replace("kind: pipeline_freshness", "kind: no_events").replace("{max_age: 5m}", params)
    (rule,) = load_rule_file(write(tmp_path, text)).rules
    assert rule.params["working_hours"] == (22 * 60, 6 * 60)
    assert rule.params["weekdays"] == frozenset({4, 5, 6, 0})
    text = GOOD_RULE.replace("kind: pipeline_freshness", "kind: backlog_eta").replace(
        "{max_age: 5m}", "{deadlines: {retail: '2026-12-01T18:00:00Z'}}"
    )
    (rule,) = load_rule_file(write(tmp_path, text)).rules
    assert rule.params["deadlines"] == {"retail": datetime(2026, 12, 1, 18, tzinfo=UTC)}


def test_source_quiet_watches_every_source_unless_some_are_listed(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("kind: pipeline_freshness", "kind: source_quiet").replace("{max_age: 5m}", "{}")
    (rule,) = load_rule_file(write(tmp_path, text)).rules
    assert (rule.params["sources"], rule.params["window"]) == ((), timedelta(minutes=30))
    text = GOOD_RULE.replace("kind: pipeline_freshness", "kind: source_quiet").replace(
        "{max_age: 5m}", "{sources: [label-studio, unspecified], window: 1h}"
    )
    (rule,) = load_rule_file(write(tmp_path, text)).rules
    assert (rule.params["sources"], rule.params["window"]) == (("label-studio", "unspecified"), timedelta(hours=1))


def test_templates_outside_the_shared_subset_are_refused(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("summary: s", "summary: 'Stale for {{ humanizeDuration $value }}'")
    (error,) = load_rule_file(write(tmp_path, text)).errors
    assert error.field == "groups.0.rules.0.annotations.summary" and "unknown template" in error.message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ $labels.project }} at {{ $value }}/h", "retail at 12/h"),
        ("{{$value}}", "12"),
        ("{{ $labels.missing }}|", "|"),
        ("no templates", "no templates"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, {"project": "retail"}, 12.0) == expected


@pytest.mark.parametrize(
    ("value", "text"), [(0.1, "0.1"), (1200.0, "1200"), (0.123456, "0.1235"), (math.inf, "+Inf"), (-2.0, "-2")]
)
def test_values_print_like_prometheus_samples(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("text", ["30s", "90s", "5m", "2h", "1d", "0s"])
def test_durations_print_as_they_are_read(text: str) -> None:
    assert format_duration(parse_duration(text)) == ("90s" if text == "90s" else text)
