"""Alerts end to end, all real: the simulator injects each anomaly into the running embedded system
(broker -> worker -> ClickHouse), `labelpulse alerts` evaluates the rules, Debian's Alertmanager
delivers to a webhook receiver of this test, and a real Prometheus scrapes every process and
loads the rendered rules.

Timeline (wall clock): the simulator backfills 35 minutes of normal history (the baselines), goes
on live, and 30 s later one project's throughput collapses, one annotator clicks through and a
producer sends garbage, for 2 minutes; then all is normal again (about 6 minutes in all). Each
matching alert must go pending, fire within its `for` plus one interval, reach the webhook through
Alertmanager, and resolve after the anomaly stops — and no other alert may fire at any time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from tests.support.http import get_json, prometheus, serving
from tests.support.recorder import HttpRecorder
from tests.support.services import WorkerHarness, system_tool, wait_for

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker]

INTERVAL_S, FOR_S = 5, 10
# The default rules with windows short enough for a test; thresholds keep their meaning.
RULES = f"""\
groups:
  - name: e2e
    interval: {INTERVAL_S}s
    rules:
      - alert: ThroughputDrop
        kind: throughput_drop
        params: {{window: 1m, lookback: 30m, half_life: 10m, drop_ratio: 0.5, min_baseline_per_hour: 600}}
        for: {FOR_S}s
        labels: {{severity: page}}
        annotations: {{summary: "{{{{ $labels.project }}}} slowed", description: "{{{{ $value }}}}/h", runbook_url: "https://r.example/a"}}
      - alert: AnnotatorClickingThrough
        kind: annotator_fast_handle
        params: {{window: 2m, baseline: 30m, min_annotations: 5}}
        for: {FOR_S}s
        keep_firing_for: 30s  # the annotator's work moves between projects: no flapping
        labels: {{severity: ticket}}
        annotations: {{summary: "{{{{ $labels.annotator }}}}", description: "{{{{ $value }}}} s", runbook_url: "https://r.example/b"}}
      - alert: DeadLetterRateHigh
        kind: pipeline_dead_letter_rate
        params: {{window: 30s, max_ratio: 0.01, min_dead_letters: 5}}
        for: {FOR_S}s
        labels: {{severity: page}}
        annotations: {{summary: s, description: "{{{{ $value }}}}", runbook_url: "https://r.example/c"}}
      - alert: NoEvents
        kind: no_events
        params: {{window: 5m}}
        labels: {{severity: page}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/d"}}
      - alert: DataStale
        kind: pipeline_freshness
        params: {{max_age: 30s}}
        for: {FOR_S}s
        labels: {{severity: page}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/e"}}
      - alert: FirstPassAcceptanceLow
        kind: quality_drop
        params: {{metric: first_pass_acceptance, threshold: 0.5, min_n: 30, window: 1h}}
        labels: {{severity: ticket}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/f"}}
      - alert: GoldAccuracyLow
        kind: quality_drop
        params: {{metric: gold_accuracy, threshold: 0.5, min_n: 30, window: 1h}}
        labels: {{severity: ticket}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/g"}}
      - alert: AnnotatorSameAnswer
        kind: annotator_same_answer
        params: {{run_length: 20, window: 10m}}
        labels: {{severity: ticket}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/h"}}
      - alert: AnnotatorGoldAccuracyLow
        kind: annotator_gold_floor
        params: {{floor: 0.5, min_n: 10, window: 1h}}
        labels: {{severity: info}}
        annotations: {{summary: s, description: d, runbook_url: "https://r.example/i"}}
"""
EXPECTED = {
    "ThroughputDrop": {"project": "retail-products"},  # the simulator's collapsing project
    "AnnotatorClickingThrough": {"annotator": "ann-01"},  # its clicking annotator
    "DeadLetterRateHigh": {},
}
HISTORY_MIN, CALM_S, ANOMALY_S = 35, 30, 120


@contextmanager
def alertmanager(tmp_path: Path, webhook: str) -> Iterator[str]:
    binary = system_tool("prometheus-alertmanager", "prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route: {receiver: test, group_by: ['...'], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\n"
        f"receivers:\n  - name: test\n    webhook_configs: [{{url: '{webhook}/alertmanager', send_resolved: true}}]\n"
    )
    flags = [f"--config.file={config}", f"--storage.path={tmp_path / 'alertmanager'}", "--cluster.listen-address="]
    with serving(binary, flags, tmp_path / "alertmanager.log") as url:
        yield url


def notifications(recorder: HttpRecorder) -> list[tuple[str, dict[str, str]]]:
    """(status, labels) of every alert Alertmanager posted to the webhook, in order."""
    return [(alert["status"], alert["labels"]) for body in recorder.bodies() for alert in body["alerts"]]


def resolved_all(recorder: HttpRecorder) -> bool:
    seen = notifications(recorder)
    return all(("resolved", name) in {(s, labels["alertname"]) for s, labels in seen} for name in EXPECTED)


def check_prometheus(url: str, jobs: set[str]) -> None:
    def all_up() -> bool:
        targets = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
        return {t["labels"]["job"] for t in targets if t["health"] == "up"} == jobs

    wait_for(all_up, 60, "Prometheus scraping every process")
    wait_for(lambda: get_json(f"{url}/api/v1/query?query=labelpulse_project_backlog")["data"]["result"] != [],
             30, "business gauges in Prometheus")  # fmt: skip

    def rules_evaluated() -> bool:
        groups = get_json(f"{url}/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(rule["health"] == "ok" for rule in rules)

    wait_for(rules_evaluated, 30, "every rendered rule evaluated without error")


@pytest.mark.timeout(900)
def test_each_anomaly_fires_its_alert_through_alertmanager_then_resolves_and_nothing_else_fires(
    harness: WorkerHarness, migrated: Client, tmp_path: Path
) -> None:
    recorder = HttpRecorder()
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "e2e.yml").write_text(RULES)
    worker_port, evaluator_port = free_port(), free_port()
    processes = []
    try:
        with alertmanager(tmp_path, recorder.url) as alertmanager_url:
            # The default session timeout: this test loads both cores, and a worker must not be
            # judged dead for a few busy seconds.
            harness.start(LABELPULSE_WORKER_METRICS_PORT=str(worker_port), LABELPULSE_SESSION_TIMEOUT_MS="30000")
            live = datetime.now(UTC)
            anomaly_from = live + timedelta(seconds=CALM_S)
            anomaly_until = anomaly_from + timedelta(seconds=ANOMALY_S)
            simulator = [
                sys.executable, "-m", "labelpulse", "generate", "--rate", "20", "--seed", "21", "--quiet",
                "--start", (live - timedelta(minutes=HISTORY_MIN)).isoformat(), "--duration", "900",
                "--anomaly", "throughput-collapse", "--anomaly", "click-through", "--anomaly", "garbage",
                "--anomaly-after", str(HISTORY_MIN * 60 + CALM_S), "--anomaly-for", str(ANOMALY_S),
            ]  # fmt: skip
            processes.append(spawn(simulator, tmp_path / "simulator.log", harness.env))

            def caught_up() -> bool:  # every partition: they are consumed at different paces
                (lag,) = migrated.query(
                    "SELECT dateDiff('second', min(newest), now64()) FROM "
                    "(SELECT kafka_partition, max(occurred_at) AS newest FROM events GROUP BY kafka_partition)"
                ).first_row
                return lag is not None and lag < 10

            wait_for(caught_up, 180, "the backfilled history stored")
            evaluator = [sys.executable, "-m", "labelpulse", "alerts", "run", "--rules", str(rules_dir),
                         "--alertmanager", alertmanager_url]  # fmt: skip
            env = {**harness.env, "LABELPULSE_ALERTS_METRICS_PORT": str(evaluator_port)}
            processes.append(spawn(evaluator, tmp_path / "evaluator.log", env))

            clickhouse = harness.env["LABELPULSE_CLICKHOUSE_HOST"] + ":" + harness.env["LABELPULSE_CLICKHOUSE_PORT"]
            targets = {
                "labelpulse-worker": f"127.0.0.1:{worker_port}",
                "labelpulse-evaluator": f"127.0.0.1:{evaluator_port}",
                "labelpulse-clickhouse": clickhouse,
            }
            with prometheus(tmp_path, targets) as prometheus_url:
                check_prometheus(prometheus_url, set(targets))

            wait_for(lambda: resolved_all(recorder), 420, "every expected alert fired and resolved")
    finally:
        for process in reversed(processes):
            terminate(process, timeout_s=15)
        recorder.close()

    history = migrated.query(
        "SELECT rule, labels, previous_state, state, at FROM alert_history ORDER BY at"
    ).named_results()
    transitions = [(r["rule"], dict(r["labels"]), r["previous_state"], r["state"], r["at"].replace(tzinfo=UTC))
                   for r in history]  # fmt: skip
    fired = {rule for rule, _, _, state, _ in transitions if state == "firing"}
    assert fired == set(EXPECTED), f"only the injected anomalies fire: {fired}"
    for rule, labels in EXPECTED.items():
        mine = [
            (state, at) for name, got, _, state, at in transitions if name == rule and labels.items() <= got.items()
        ]
        first_pending = next(at for state, at in mine if state == "pending")
        first_firing = next(at for state, at in mine if state == "firing")
        last_state, last_at = mine[-1]
        assert anomaly_from - timedelta(seconds=INTERVAL_S) <= first_pending < anomaly_until, rule
        assert first_firing - first_pending <= timedelta(seconds=FOR_S + INTERVAL_S + 2), rule
        assert (last_state, last_at > anomaly_until) == ("resolved", True), rule
    delivered = notifications(recorder)
    for rule, labels in EXPECTED.items():
        assert any(s == "firing" and got["alertname"] == rule and labels.items() <= got.items()
                   for s, got in delivered), rule  # fmt: skip
    assert {labels["alertname"] for _, labels in delivered} == set(EXPECTED)
