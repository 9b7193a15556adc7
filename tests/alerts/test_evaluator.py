"""The evaluator against the real embedded ClickHouse: transitions kept in the history, a restart
resumes without firing twice, failures stay contained, receivers get what Alertmanager expects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from alerts import telemetry
from alerts.evaluator import Evaluator
from alerts.notify import Alertmanager, Notice, SendError, Webhook
from alerts.rules import Rule, load_rule_file
from alerts.state import State
from labelpulse.net import free_port
from tests.support.recorder import HttpRecorder
from tests.support.stored_events import event, store

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

RULES = """\
groups:
  - name: pipeline
    interval: 30s
    rules:
      - alert: DeadLetterRateHigh
        kind: pipeline_dead_letter_rate
        params: {max_ratio: 0.05, min_dead_letters: 5, window: 10m}
        for: 1m
        labels: {severity: page, team: data}
        annotations:
          summary: "{{ $value }} of messages refused"
          description: "Dead-letter ratio {{ $value }} over 10 minutes"
          runbook_url: https://example.com/runbooks#deadletterratehigh
      - alert: DataStale
        kind: pipeline_freshness
        params: {max_age: 1h}
        labels: {severity: page}
        annotations: {summary: s, description: d, runbook_url: "https://example.com/r"}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Collected:
    """A receiver that keeps what it was sent."""

    name = "collected"

    def __init__(self) -> None:
        self.batches: list[list[Notice]] = []

    def send(self, notices: list[Notice]) -> None:
        self.batches.append(notices)


def rules(tmp_path: Path, text: str = RULES) -> list[Rule]:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    loaded = load_rule_file(path)
    assert not loaded.errors
    return loaded.rules


def history(client: Client) -> list[tuple[str, str, str, str]]:
    return [
        (row[0], row[1], row[2], row[3])
        for row in client.query(
            "SELECT rule, previous_state, state, summary FROM alert_history ORDER BY at, rule"
        ).result_rows
    ]


@pytest.fixture
def refused(migrated: Client) -> Client:
    """20 refused messages and 10 good ones, received a minute before T0."""
    received = T0 - timedelta(minutes=1)
    store(migrated, [event("task_created", received) for _ in range(10)] + [b"{broken"] * 20, received_at=received)
    return migrated


@pytest.mark.clickhouse
def test_pending_firing_resolved_in_the_history_and_to_receivers(refused: Client, tmp_path: Path) -> None:
    clock, receiver = Clock(T0), Collected()
    evaluator = Evaluator(rules(tmp_path), lambda: refused, [receiver], clock=clock)
    (group,) = evaluator.groups

    evaluator.evaluate_group(group)  # the condition holds: pending, nothing sent yet
    assert history(refused) == [("DeadLetterRateHigh", "inactive", "pending", "0.6667 of messages refused")]
    assert receiver.batches == []

    clock.now = T0 + timedelta(seconds=60)
    (transition,) = evaluator.evaluate_group(group)  # held for `for`: firing, sent
    assert (transition.before, transition.after) == (State.PENDING, State.FIRING)
    (sent,) = receiver.batches[-1]
    assert sent.labels == {"alertname": "DeadLetterRateHigh", "severity": "page", "team": "data"}
    assert sent.starts_at == T0 + timedelta(seconds=60) and not sent.resolved
    assert sent.ends_at == clock.now + timedelta(minutes=4)  # four resend intervals ahead
    assert sent.annotations["runbook_url"] == "https://example.com/runbooks#deadletterratehigh"

    clock.now = T0 + timedelta(seconds=90)
    assert evaluator.evaluate_group(group) == [] and len(receiver.batches) == 1  # resend not due yet
    clock.now = T0 + timedelta(seconds=120)
    evaluator.evaluate_group(group)
    assert len(receiver.batches) == 2  # re-sent: Alertmanager forgets alerts that are not

    clock.now = T0 + timedelta(minutes=12)  # the refusals left the window
    (transition,) = evaluator.evaluate_group(group)
    assert transition.after is State.RESOLVED
    (sent,) = receiver.batches[-1]
    assert sent.resolved and sent.ends_at == clock.now and sent.starts_at == T0 + timedelta(seconds=60)
    assert [(before, after) for _, before, after, _ in history(refused)] == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]


@pytest.mark.clickhouse
def test_a_restart_resumes_from_the_history_and_does_not_fire_twice(refused: Client, tmp_path: Path) -> None:
    clock = Clock(T0)
    first = Evaluator(rules(tmp_path), lambda: refused, [Collected()], clock=clock)
    (group,) = first.groups
    first.evaluate_group(group)
    clock.now = T0 + timedelta(seconds=60)
    first.evaluate_group(group)  # firing

    receiver = Collected()
    second = Evaluator(rules(tmp_path), lambda: refused, [receiver], clock=clock)
    assert second.restore() == 1
    (instance,) = second.instances["DeadLetterRateHigh"].values()
    assert instance.state is State.FIRING and instance.fired_at == T0 + timedelta(seconds=60)
    assert instance.active_at == T0
    clock.now = T0 + timedelta(seconds=90)
    assert second.evaluate_group(group) == []  # no second firing transition
    (sent,) = receiver.batches[-1]  # the same alert re-sent once: Alertmanager merges it
    assert sent.starts_at == T0 + timedelta(seconds=60)
    assert [after for _, _, after, _ in history(refused)] == ["pending", "firing"]


@pytest.mark.clickhouse
def test_a_restart_during_pending_keeps_counting_for_from_the_first_evaluation(refused: Client, tmp_path: Path) -> None:
    clock = Clock(T0)
    first = Evaluator(rules(tmp_path), lambda: refused, clock=clock)
    first.evaluate_group(first.groups[0])  # pending
    resumed = Evaluator(rules(tmp_path), lambda: refused, clock=clock)
    resumed.restore()
    clock.now = T0 + timedelta(seconds=60)
    (transition,) = resumed.evaluate_group(resumed.groups[0])
    assert transition.after is State.FIRING  # 60 s after the first pending, not after the restart


@pytest.mark.clickhouse
def test_a_failing_rule_is_counted_and_the_others_still_run(refused: Client, tmp_path: Path) -> None:
    refused.command("DROP TABLE dead_letters")
    evaluator = Evaluator(rules(tmp_path), lambda: refused, clock=Clock(T0 + timedelta(hours=2)))
    errors = telemetry.RULE_ERRORS.labels("DeadLetterRateHigh")
    before = errors._value.get()
    transitions = evaluator.evaluate_group(evaluator.groups[0])
    assert errors._value.get() == before + 1
    assert [t.rule for t in transitions] == ["DataStale"]  # nothing received for over an hour: fires


@pytest.mark.clickhouse
def test_alert_gauges_count_instances_by_state(refused: Client, tmp_path: Path) -> None:
    evaluator = Evaluator(rules(tmp_path), lambda: refused, clock=Clock(T0))
    evaluator.evaluate_group(evaluator.groups[0])
    assert telemetry.ALERTS.labels("DeadLetterRateHigh", "page", "pending")._value.get() == 1
    assert telemetry.ALERTS.labels("DeadLetterRateHigh", "page", "firing")._value.get() == 0


@pytest.fixture
def http_receiver() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder()
    yield recorder
    recorder.close()


NOTICE = Notice(
    fingerprint="abc",
    labels={"alertname": "X", "severity": "page"},
    annotations={"summary": "s"},
    starts_at=T0,
    ends_at=T0 + timedelta(minutes=4),
    generator_url="http://127.0.0.1:8501/alerts?rule=X",
    resolved=False,
)


def test_alertmanager_gets_its_v2_payload(http_receiver: HttpRecorder) -> None:
    url, handler = http_receiver.url, http_receiver
    Alertmanager(url).send([NOTICE])
    ((path, body),) = handler.received
    assert path == "/api/v2/alerts"
    assert body == [
        {
            "labels": {"alertname": "X", "severity": "page"},
            "annotations": {"summary": "s"},
            "startsAt": "2026-11-23T12:00:00.000Z",
            "endsAt": "2026-11-23T12:04:00.000Z",
            "generatorURL": "http://127.0.0.1:8501/alerts?rule=X",
        }
    ]


def test_the_webhook_gets_alertmanagers_webhook_payload(http_receiver: HttpRecorder) -> None:
    url, handler = http_receiver.url, http_receiver
    Webhook(f"{url}/hook").send([NOTICE])
    ((path, body),) = handler.received
    assert path == "/hook" and body["status"] == "firing" and body["version"] == "4"
    assert body["alerts"][0]["status"] == "firing" and body["alerts"][0]["fingerprint"] == "abc"


def test_a_receiver_that_refuses_or_is_away_gives_a_specific_error(http_receiver: HttpRecorder) -> None:
    url, handler = http_receiver.url, http_receiver
    handler.status = 400
    with pytest.raises(SendError, match="answered 400"):
        Alertmanager(url).send([NOTICE])
    with pytest.raises(SendError, match="cannot reach"):
        Alertmanager(f"http://127.0.0.1:{free_port()}").send([NOTICE])


@pytest.mark.clickhouse
def test_undelivered_alerts_are_sent_again_at_the_next_evaluation(
    refused: Client, tmp_path: Path, http_receiver: HttpRecorder
) -> None:
    url, handler = http_receiver.url, http_receiver
    handler.status = 503
    clock = Clock(T0)
    text = RULES.replace("for: 1m", "for: 0s")
    evaluator = Evaluator(rules(tmp_path, text), lambda: refused, [Alertmanager(url)], clock=clock)
    evaluator.evaluate_group(evaluator.groups[0])  # fires; Alertmanager answers 503
    handler.status = 200
    clock.now = T0 + timedelta(seconds=30)  # before the resend delay: sent again because it failed
    evaluator.evaluate_group(evaluator.groups[0])
    assert len(handler.received) == 2
    clock.now = T0 + timedelta(seconds=45)
    evaluator.evaluate_group(evaluator.groups[0])
    assert len(handler.received) == 2  # delivered once: not again until the resend delay
