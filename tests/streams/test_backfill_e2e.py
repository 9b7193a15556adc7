"""History imported with `labelpulse import` keeps its original times, end to end through the real broker, worker
and ClickHouse: a Label Studio export and an NDJSON file, 400 days old and out of order, imported while live events
flow, through a worker SIGKILLed in the middle of it, give every derived view the answer for the sorted events, with
nothing too late; importing the same files again stores nothing twice."""

from __future__ import annotations

import json
import random
import signal
import threading
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families

from ingest.label_studio import map_export
from labelpulse.broker import BrokerSettings
from labelpulse.simulator import Plan, generate
from schema.events import ContractLimits
from tests.support.ingest import get
from tests.support.references import assert_derived_views_match, assert_throughput_per_minute_matches, expected_from
from tests.support.services import WorkerHarness, run_cli, wait_for
from tests.support.worker import assert_active_time_matches, resend, stored

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker, pytest.mark.faults]
EXPORT = Path(__file__).parents[1] / "ingest" / "fixtures" / "label_studio" / "exports"
EXPORT = EXPORT / "project1-cli-export-completed_by-object.json"


def simulated(seed: int, start: datetime, count: int) -> list[bytes]:
    return [message.value for message in islice(generate(Plan(seed=seed, start=start, rate=2)), count)]


def duplicates_dropped(harness: WorkerHarness) -> float:
    text = get(f"http://127.0.0.1:{harness.metrics_ports[-1]}/metrics")
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return sum(s.value for s in samples if s.name == "labelpulse_worker_duplicates_dropped_total")


@pytest.mark.timeout(600)
def test_history_imported_during_live_traffic_and_a_crash_gives_the_answer_for_the_sorted_events_once(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client, tmp_path: Path
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=400)
    history = simulated(23, long_ago, 6_000)  # 50 minutes of a team's work, 400 days ago
    random.Random(5).shuffle(history)  # a file in no particular order: the import sorts it
    ndjson = tmp_path / "history.ndjson"
    ndjson.write_bytes(b"".join(value + b"\n" for value in history))
    # A Label Studio export of the day before: imported first, it must be the older history (imports go oldest
    # first), whatever the time of day the test runs at.
    export = tmp_path / "export.json"
    the_day_before = (long_ago - timedelta(days=1)).date().isoformat()
    export.write_bytes(EXPORT.read_bytes().replace(b'"2026-11-30T', f'"{the_day_before}T'.encode()))
    exported = [json.dumps(event).encode() for event in map_export(json.loads(export.read_bytes()))]
    live = simulated(17, datetime.now(UTC) - timedelta(hours=1), 3_000)  # the live stream, meanwhile

    env = {**harness.env, "LABELPULSE_INGEST_IDEMPOTENCE": "false"}  # the embedded broker has no idempotent producer
    first = harness.start(LABELPULSE_COMMIT_INTERVAL_MS="600000", LABELPULSE_BATCH_MAX_EVENTS="200")
    flowing = threading.Thread(target=resend, args=(kafka, harness.topic, live))
    flowing.start()
    for tool, path in (("label-studio", export), ("ndjson", ndjson)):
        imported = run_cli("import", tool, str(path), env=env)
        assert imported.returncode == 0, imported.stderr
        assert f"sent to {harness.topic}.backfill, 0 refused" in imported.stdout
    flowing.join()
    backfilled = f"SELECT count() FROM events WHERE kafka_topic = '{harness.topic}.backfill'"
    wait_for(lambda: int(migrated.command(backfilled)) >= 1_000, 120, "part of the history stored")
    first.send_signal(signal.SIGKILL)  # nothing committed: all of it is read again
    first.wait(timeout=10)
    harness.start(LABELPULSE_DEDUP_WINDOW="10")  # repeats are found in ClickHouse, not among the recent ids

    expected, refused = expected_from(live + exported + history, ContractLimits().for_history())
    assert not refused
    wait_for(lambda: stored(migrated) == len(expected), 300, "every event stored once")
    assert migrated.command("SELECT count() - uniqExact(event_id) FROM events") == 0
    assert migrated.command("SELECT countIf(too_late) FROM events") == 0, "history in time order is never too late"
    assert_throughput_per_minute_matches(migrated, expected)
    assert_active_time_matches(migrated, expected)
    assert_derived_views_match(migrated, expected)

    # The same files again: every event is a repeat of a stored one, however long ago it was stored (the
    # worker remembers only its last 10 ids per partition).
    for tool, path in (("label-studio", export), ("ndjson", ndjson)):
        assert run_cli("import", tool, str(path), env=env).returncode == 0
    wait_for(lambda: duplicates_dropped(harness) >= len(exported) + len(history), 120, "the repeats dropped")
    assert stored(migrated, settled=False) == len(expected)
    assert_derived_views_match(migrated, expected)
