"""Rendered Prometheus rules: accepted by the real `promtool`, and behaving as its unit tests expect."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.prometheus import render
from alerts.rules import load_rule_file, load_rules
from tests.support.services import REPO_ROOT, run_cli, system_tool

PROMTOOL_TESTS = REPO_ROOT / "tests" / "alerts" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([system_tool("promtool", "prometheus"), *args], capture_output=True, text=True, timeout=120)


def test_the_default_rules_render_to_rules_promtool_accepts_and_its_tests_pass(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yml"
    result = run_cli("alerts", "render-prometheus", "--output", str(rendered))
    assert result.returncode == 0, result.stderr
    assert "AnnotatorClickingThrough: per annotator" in result.stderr  # left to the evaluator, said so
    assert "SourceQuiet: per source: no gauge holds a source's newest event time" in result.stderr
    checked = promtool("check", "rules", str(rendered))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for test_file in PROMTOOL_TESTS.glob("*.test.yml"):
        shutil.copy(test_file, tmp_path)
        tested = promtool("test", "rules", str(tmp_path / test_file.name))
        assert tested.returncode == 0, tested.stdout + tested.stderr


def test_schedules_deadlines_and_same_hour_last_week_render_to_valid_promql(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(
        """\
groups:
  - name: g
    rules:
      - alert: NightShiftSilent
        kind: no_events
        params: {working_hours: "22:00-06:00", weekdays: "sat,sun"}
        labels: {severity: page}
        annotations: {summary: s, description: d, runbook_url: "https://example.com/r"}
      - alert: Late
        kind: backlog_eta
        params: {deadlines: {retail: "2026-12-01T18:00:00Z", 'odd "name"': "2026-12-02T00:00:00+01:00"}}
        labels: {severity: ticket}
        annotations: {summary: s, description: d, runbook_url: "https://example.com/r"}
      - alert: Slower
        kind: throughput_drop
        params: {baseline: same_hour_last_week}
        labels: {severity: page}
        annotations: {summary: s, description: d, runbook_url: "https://example.com/r"}
      - alert: LowerBound
        kind: quality_drop
        params: {metric: first_pass_acceptance, threshold: 0.8, bound: lower}
        labels: {severity: ticket}
        annotations: {summary: s, description: d, runbook_url: "https://example.com/r"}
"""
    )
    loaded = load_rule_file(tmp_path / "r.yml")
    assert not loaded.errors
    text, skipped = render(loaded.rules)
    assert skipped == {}
    assert "(hour() * 60 + minute()) >= 1320 or (hour() * 60 + minute()) < 360" in text
    assert "day_of_week() == 0" in text and "day_of_week() == 6" in text
    assert 'project="odd \\"name\\""' in text and "(1796148000 - time())" in text
    (tmp_path / "out.yml").write_text(text)
    checked = promtool("check", "rules", str(tmp_path / "out.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_rendered_rule_keeps_its_name_labels_and_annotations() -> None:
    import yaml

    rules = load_rules().rules
    text, skipped = render(rules)
    alerting = {
        rule["alert"]: rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"] if "alert" in rule
    }
    for rule in rules:
        if rule.alert in skipped:
            continue
        assert alerting[rule.alert]["labels"] == rule.labels
        assert alerting[rule.alert]["annotations"] == rule.annotations


@pytest.mark.parametrize("args", [["--rules", "/nonexistent"], ["--output"]])
def test_render_refuses_bad_arguments(args: list[str]) -> None:
    result = run_cli("alerts", "render-prometheus", *args)
    assert result.returncode == 2 and result.stderr.strip()
