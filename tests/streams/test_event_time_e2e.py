"""Every analyst view equals the reference for the events sorted by time, end to end through the real broker,
worker and ClickHouse: a disordered, duplicated stream, a worker SIGKILLed in the middle, then hours of backlog
sent while no worker runs and caught up at once, its partitions read unevenly."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from labelpulse.broker import BrokerSettings
from labelpulse.simulator import Delivery, Plan, generate
from tests.support.references import assert_derived_views_match, assert_throughput_per_minute_matches, expected_from
from tests.support.services import WorkerHarness, wait_for
from tests.support.worker import assert_active_time_matches, resend, stored

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker, pytest.mark.faults]


def deliveries(plan: Plan, count: int) -> list[bytes]:
    """The plan's first `count` events in the order they reach Kafka: late by up to 3 minutes, 2 % twice."""
    delivery = Delivery(disorder_s=180, duplicates=0.02, seed=plan.seed)
    return [message.value for _, message in islice(delivery.order(generate(plan)), count)]


@pytest.mark.timeout(600)
def test_disorder_duplicates_a_crash_and_hours_of_backlog_give_the_answer_for_the_sorted_events(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client, tmp_path: Path
) -> None:
    # Five hours of a team's work, at two events per simulated second.
    plan = Plan(seed=17, start=datetime.now(UTC) - timedelta(hours=5), rate=2)
    stream = deliveries(plan, 28_000)
    live, backlog = stream[:7_000], stream[7_000:]
    first = harness.start(LABELPULSE_COMMIT_INTERVAL_MS="600000", LABELPULSE_BATCH_MAX_EVENTS="200")
    resend(kafka, harness.topic, live)  # the first hour, as it happened
    wait_for(lambda: stored(migrated, settled=False) >= 3_000, 120, "part of the first hour stored")
    first.send_signal(signal.SIGKILL)  # nothing committed: all of it is read again
    first.wait(timeout=10)

    # The outage: four more hours arrive while no worker runs, then one catches up at once.
    resend(kafka, harness.topic, backlog)
    second = harness.start()
    expected, refused = expected_from(live + backlog)
    assert not refused
    wait_for(lambda: stored(migrated) == len(expected), 300, "every event stored once")

    assert stored(migrated, settled=False) == len(expected)
    assert migrated.command("SELECT count() - uniqExact(event_id) FROM events") == 0
    assert migrated.command("SELECT countIf(too_late) FROM events") == 0, "3 minutes late is within the bound"
    assert Counter(expected["event_type"]) == dict(
        migrated.query("SELECT event_type, count() FROM events GROUP BY 1").result_rows
    )
    assert_throughput_per_minute_matches(migrated, expected)
    assert_active_time_matches(migrated, expected)
    assert_derived_views_match(migrated, expected)
    assert migrated.command("SELECT countIf(sign < 0) FROM review_round_changes") > 0, "late reviews renumbered others"
    assert migrated.command("SELECT countIf(sign < 0) FROM task_agreement_changes") > 0, "late answers were added"
    assert second.poll() is None
