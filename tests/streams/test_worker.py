"""The worker end to end, all real: simulator -> broker -> `labelpulse worker` -> embedded ClickHouse.

Expected answers are computed independently from the messages the simulator recorded: the
contract's validator for what is valid, pandas for the counts.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families

from labelpulse.broker import BrokerSettings
from labelpulse.simulator import Plan, generate
from schema.events import EventError, validate_event
from schema.rows import WORKER_TABLES
from streams.privacy import Pseudonymizer
from tests.support.references import (
    assert_derived_views_match,
    assert_throughput_per_minute_matches,
    expected_from,
)
from tests.support.services import WorkerHarness, wait_for
from tests.support.worker import assert_active_time_matches, resend, simulate, stored

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker]


def assert_views_match(client: Client, expected: pd.DataFrame, refused: Counter[str]) -> None:
    by_type = dict(client.query("SELECT event_type, count() FROM events GROUP BY event_type").result_rows)
    assert by_type == expected["event_type"].value_counts().to_dict()
    assert client.command("SELECT count() - uniqExact(event_id) FROM events") == 0
    assert dict(client.query("SELECT rule, count() FROM dead_letters GROUP BY rule").result_rows) == dict(refused)
    assert client.command("SELECT countIf(too_late) FROM events") == 0
    assert_throughput_per_minute_matches(client, expected)
    assert_derived_views_match(client, expected)
    assert client.command("SELECT count() FROM review_rounds WHERE rework") > 0, "the sample must contain rework"
    assert client.command("SELECT count() FROM task_agreement") > 0, "the sample must contain overlapping tasks"
    assert_active_time_matches(client, expected)


def test_events_dead_letters_and_duplicates_end_to_end(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client, tmp_path: Path
) -> None:
    harness.start()
    sent = simulate(harness, kafka, tmp_path, 2500, anomalies=("garbage",))
    duplicates = [v for v in sent if not isinstance(validate_event(v), EventError)][:40]
    resend(kafka, harness.topic, duplicates)
    expected, refused = expected_from(sent + duplicates)
    assert set(refused) >= {"malformed_json", "unknown_event_type", "out_of_range"}, "the garbage anomaly ran"
    wait_for(lambda: stored(migrated) == len(expected) + sum(refused.values()), 120, "every message stored")
    time.sleep(1)  # nothing more may arrive
    assert stored(migrated, settled=False) == len(expected) + sum(refused.values())
    assert_views_match(migrated, expected, refused)
    assert migrated.command("SELECT count() FROM gold_answers") > 0, "answers on honeypot tasks are judged"
    assert_metrics_match(harness.metrics_ports[0], expected, refused, duplicates=len(duplicates))


def assert_metrics_match(port: int, expected: pd.DataFrame, refused: Counter[str], duplicates: int) -> None:
    """The worker's /metrics, scraped over HTTP like Prometheus does, counts what was stored."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def by_label(name: str, label: str) -> dict[str, int]:
        return {dict(labels)[label]: int(value) for (n, labels), value in samples.items() if n == name}

    assert by_label("labelpulse_worker_events_total", "event_type") == expected["event_type"].value_counts().to_dict()
    assert by_label("labelpulse_worker_dead_letters_total", "rule") == dict(refused)
    assert samples[("labelpulse_worker_duplicates_dropped_total", ())] == duplicates
    assert samples[("labelpulse_worker_batch_messages_count", ())] >= 1
    assert 0 <= samples[("labelpulse_worker_freshness_seconds", ())] < 7200
    lag = by_label("labelpulse_worker_consumer_lag_messages", "partition")
    assert lag and all(value == 0 for value in lag.values()), lag


def test_sigkill_between_insert_and_commit_neither_loses_nor_double_counts(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client, tmp_path: Path
) -> None:
    # Commit almost never, in small batches: whatever is inserted before the kill is uncommitted. Each
    # fetch held long (the embedded broker holds it half the wait), so the kill lands mid-stream.
    first = harness.start(
        LABELPULSE_COMMIT_INTERVAL_MS="600000", LABELPULSE_BATCH_MAX_EVENTS="100", LABELPULSE_FETCH_MAX_WAIT_MS="1500"
    )
    sent = simulate(harness, kafka, tmp_path, 4000, anomalies=("garbage",))
    wait_for(lambda: stored(migrated, settled=False) >= 1200, 120, "a good part of the stream stored")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    partial = stored(migrated, settled=False)
    expected, refused = expected_from(sent)
    total = len(expected) + sum(refused.values())
    assert partial < total, "the kill must land mid-stream"

    harness.start()  # replays everything since the last commit (nothing was committed)
    wait_for(lambda: stored(migrated) == total, 180, "every message stored after the restart")
    time.sleep(2)
    assert stored(migrated, settled=False) == total
    assert_views_match(migrated, expected, refused)


def test_two_workers_in_one_group_split_partitions_and_state_moves_with_them(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client
) -> None:
    # Tasks begin before the second worker joins and end after: whoever owns a task's partition
    # then must carry on from the state the first worker wrote to the changelog.
    plan = Plan(seed=23, start=datetime.now(UTC) - timedelta(hours=1), rate=5)
    values = [message.value for message in islice(generate(plan), 3000)]
    harness.start()
    resend(kafka, harness.topic, values[:1500])
    wait_for(lambda: stored(migrated) == 1500, 120, "the first half stored by one worker")
    second = harness.start()
    resend(kafka, harness.topic, values[1500:])
    expected, refused = expected_from(values)
    wait_for(lambda: stored(migrated) == len(expected) + sum(refused.values()), 180, "everything stored by two")
    time.sleep(2)
    assert stored(migrated, settled=False) == len(expected) + sum(refused.values())
    assert_views_match(migrated, expected, refused)
    assert second.poll() is None
    # Faust logs each assignment as a table row: "| <topic> | {0} |"; the newcomer got some of the events topic.
    log = (harness.log_dir / "worker-1.log").read_text(errors="replace")
    assert re.search(rf"\| {re.escape(harness.topic)}\s+\| \{{\d", log), "the second worker owns partitions"


def test_pseudonymized_ids_are_all_that_reaches_clickhouse(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client, tmp_path: Path
) -> None:
    key = "a-secret-key-of-32-characters-ok"
    harness.start(LABELPULSE_PSEUDONYMIZE_KEY=key)
    sent = simulate(harness, kafka, tmp_path, 1500, anomalies=("garbage",))
    expected, refused = expected_from(sent)
    wait_for(lambda: stored(migrated) == len(expected) + sum(refused.values()), 120, "every message stored")
    wait_for(lambda: migrated.command("SELECT count() FROM active_time") > 0, 60, "active time (the second hop)")
    people = set(expected["annotator_id"].dropna()) | set(expected["reviewer_id"].dropna())
    people.discard("")
    assert people, "the simulated events name people"
    pseudonymizer = Pseudonymizer(key)
    query = "SELECT annotator_id FROM events UNION DISTINCT SELECT reviewer_id FROM events"
    stored_people = set(migrated.query(query).result_columns[0]) - {""}
    assert stored_people == {pseudonymizer.of(person) for person in people}
    for table in ("events", "dead_letters", *(t for t in WORKER_TABLES if t.endswith("_changes")), "active_time"):
        dump = migrated.raw_query(f"SELECT * FROM {table} FORMAT TSV").decode(errors="replace")
        assert not [person for person in people if person in dump], f"a raw id in {table}"
    timed = set(migrated.query("SELECT DISTINCT annotator_id FROM active_time").result_columns[0])
    assert timed and timed <= stored_people, "active time is kept per pseudonym"
