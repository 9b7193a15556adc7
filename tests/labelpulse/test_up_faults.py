"""`labelpulse up` keeps the system alive: each part killed under load, at a random moment, is started
again, and every event sent is stored once — the raw table, the per-minute rollup, and every derived
view against references computed from what the producers recorded (tests/support/references.py). One `up`
serves the tests in order (it takes ~20 s to start); each kills one part while `labelpulse generate`
sends a few thousand events at a steady pace."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labelpulse.net import free_port, http_ok
from labelpulse.simulator import read_recording
from schema.client import ClickHouseSettings, connect
from tests.support.references import assert_derived_views_match, assert_throughput_per_minute_matches, expected_from
from tests.support.services import REPO_ROOT, wait_for
from tests.support.worker import assert_active_time_matches

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.faults]
KILL_AT = random.Random(16)  # when under the load each part dies: random, repeatable


class Up:
    """A running `labelpulse up --no-demo` on free ports and a temp data dir, its output kept."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.lines: list[str] = []
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")} | env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labelpulse", "up", "--no-demo", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=REPO_ROOT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.said("Ctrl-C stops everything") or self.process.poll() is not None, 120, "up")
        assert self.process.poll() is None, "".join(self.lines)
        self.client = connect(ClickHouseSettings(port=int(env["LABELPULSE_CLICKHOUSE_PORT"])))
        self.sent: list[bytes] = []  # every event the loads sent to this data dir, from their recordings
        # Annotators' active time spans loads (the same crew): an in-memory broker that restarted lost it.
        self.broker_restarted = False

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def component(self, name: str) -> dict[str, object]:
        document = json.loads((self.data_dir / "status.json").read_text())
        found: dict[str, object] = next(c for c in document["components"] if c["name"] == name)
        return found

    def kill(self, name: str) -> int:
        pid = self.component(name)["pid"]
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stored(self) -> tuple[int, int, int]:
        """Raw events, distinct event ids, and annotations counted by the per-minute rollup."""
        events, distinct = self.client.query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0]
        annotations = self.client.command("SELECT sum(annotations_submitted) FROM project_throughput_minute")
        return int(events), int(distinct), int(annotations or 0)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=90) == 0, "".join(self.lines[-20:])


def up_env(data_dir: Path) -> dict[str, str]:
    return {
        "LABELPULSE_CLICKHOUSE_PORT": str(free_port()),
        "LABELPULSE_BROKER_PORT": str(free_port()),
        "LABELPULSE_DATA_DIR": str(data_dir),
        "LABELPULSE_DASHBOARD_PORT": str(free_port()),
        "LABELPULSE_INGEST_PORT": str(free_port()),
        "LABELPULSE_WORKER_METRICS_PORT": str(free_port()),
        "LABELPULSE_ALERTS_METRICS_PORT": str(free_port()),
        "LABELPULSE_SESSION_TIMEOUT_MS": "6000",
    }


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("up") / "state"
    running = Up(up_env(data_dir), data_dir)
    yield running
    if running.process.poll() is None:
        running.stop()


class Load:
    """`labelpulse generate` sending `count` events at `rate`/s with a seed of its own, recorded. Twelve
    annotators work far faster than people (compressed time), so a few seconds hold every kind of event:
    answers, reviews, agreement."""

    def __init__(self, up: Up, count: int, rate: float, seed: int) -> None:
        self.record = up.data_dir.parent / f"sent-{seed}.jsonl"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")} | up.env
        full_env["LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{up.env['LABELPULSE_BROKER_PORT']}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labelpulse", "generate", "--quiet", "--count", str(count), "--rate", str(rate),
             "--annotators", "12", "--seed", str(seed), "--record", str(self.record)],
            env=full_env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def sent(self) -> list[bytes]:
        """The events the producer sent (from its recording)."""
        assert self.process.wait(timeout=120) == 0, self.process.stderr.read() if self.process.stderr else ""
        return [value for _, value in read_recording(self.record)]


def all_stored(up: Up, before: tuple[int, int, int], load: Load, within_s: float) -> None:
    """Every event `load` sent is stored once: raw rows, distinct ids and the rollup's annotations; then
    every view equals the reference for everything sent so far."""
    sent = load.sent()
    submitted = sum(json.loads(value)["event_type"] == "annotation_submitted" for value in sent)
    expected = (before[0] + len(sent), before[1] + len(sent), before[2] + submitted)
    deadline = time.monotonic() + within_s
    while up.stored() != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert up.stored() == expected, "(events, distinct ids, annotations in the rollup) against what was sent"
    up.sent += sent
    events, refused = expected_from(up.sent)
    assert not refused
    assert_throughput_per_minute_matches(up.client, events)
    assert_derived_views_match(up.client, events)
    if not up.broker_restarted:
        assert_active_time_matches(up.client, events)


def kill_under_load(up: Up, name: str, seed: int) -> None:
    """Kill `name` a few seconds into a load; every event sent is then stored exactly once."""
    before = up.stored()
    restarts_before = up.component(name)["restarts"]
    load = Load(up, count=2400, rate=300, seed=seed)
    time.sleep(KILL_AT.uniform(0.5, 6))
    up.kill(name)
    wait_for(lambda: up.component(name)["restarts"] == restarts_before + 1, 90, f"{name} restarted")  # type: ignore[operator]
    all_stored(up, before, load, within_s=90)
    wait_for(lambda: up.component(name)["state"] == "up", 60, f"{name} up")


def test_clickhouse_killed_under_load_comes_back_and_nothing_is_lost_or_doubled(up: Up) -> None:
    kill_under_load(up, "ClickHouse", seed=101)
    assert up.said("ClickHouse was killed by SIGKILL; restarting in 1 s")
    assert up.said("ClickHouse is up again")
    assert up.component("broker")["restarts"] == 0, "the broker was never stopped"


def test_the_worker_killed_under_load_comes_back_and_nothing_is_lost_or_doubled(up: Up) -> None:
    kill_under_load(up, "worker", seed=102)
    assert up.said("worker was killed by SIGKILL; restarting in 1 s")


def test_the_dashboard_killed_comes_back_and_answers(up: Up) -> None:
    kill_under_load(up, "dashboard", seed=103)
    health = f"http://127.0.0.1:{up.env['LABELPULSE_DASHBOARD_PORT']}/_stcore/health"
    wait_for(lambda: http_ok(health), 60, "the dashboard answers again")


def test_the_alert_evaluator_killed_comes_back_and_serves_its_metrics(up: Up) -> None:
    kill_under_load(up, "alert evaluator", seed=104)
    metrics = f"http://127.0.0.1:{up.env['LABELPULSE_ALERTS_METRICS_PORT']}/metrics"
    wait_for(lambda: http_ok(metrics), 60, "the evaluator serves metrics again")


def test_a_part_that_keeps_dying_is_said_and_shown_as_flapping_while_the_rest_runs_on(up: Up) -> None:
    for _ in range(3):
        restarts = up.component("dashboard")["restarts"]
        up.kill("dashboard")
        wait_for(lambda r=restarts: up.component("dashboard")["restarts"] == r + 1, 60, "dashboard restarted")  # type: ignore[misc]
    dashboard = up.component("dashboard")
    assert dashboard["flapping"] is True and int(dashboard["exits_in_window"]) >= 3  # type: ignore[call-overload]
    assert up.said("dashboard was killed by SIGKILL (3rd time in 5 min); restarting in")
    assert {up.component(name)["state"] for name in ("ClickHouse", "broker", "worker")} == {"up"}
    assert up.process.poll() is None


def test_after_the_broker_is_killed_every_event_sent_to_the_new_one_is_stored(up: Up) -> None:
    # More events before than after, so the new offsets all fall under the stored ones.
    all_stored(up, up.stored(), Load(up, count=3000, rate=1000, seed=105), within_s=60)
    up.kill("broker")
    up.broker_restarted = True
    wait_for(lambda: up.said("broker is up again; starting worker"), 60, "the broker and worker back")
    all_stored(up, up.stored(), Load(up, count=600, rate=300, seed=106), within_s=60)


def test_a_second_up_on_the_same_data_stores_new_events_within_seconds(up: Up) -> None:
    all_stored(up, up.stored(), Load(up, count=3000, rate=1000, seed=107), within_s=60)
    up.stop()
    again = Up(up.env, up.data_dir)
    again.sent, again.broker_restarted = up.sent, True
    try:
        before = again.stored()
        assert before[0] >= 3000, "the first run's events are kept"
        all_stored(again, before, Load(again, count=600, rate=300, seed=108), within_s=15)
    finally:
        again.stop()
