"""`labelpulse up`'s supervisor: every part that dies is started again after a back-off, nothing
is stopped because another part failed, and what keeps failing is said in the terminal and in
the status file. The policy is driven by a fake clock and fake children; the last tests use
real processes and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from labelpulse.child_processes import spawn
from labelpulse.runtime import (
    RestartPolicy,
    Service,
    ServiceError,
    Supervisor,
    last_error_line,
)
from tests.support.fleet import FakeChild, Fleet
from tests.support.services import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


@pytest.mark.parametrize(("failures", "delay_s"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (7, 30), (50, 30)])
def test_back_off_doubles_from_one_second_up_to_thirty(failures: int, delay_s: float) -> None:
    assert RestartPolicy().delay_s(failures) == delay_s


def test_a_child_that_dies_is_started_again_after_its_back_off(fleet: Fleet) -> None:
    fleet.launch(fleet.service("worker"))
    fleet.current("worker").die(1)
    fleet.run_for(0.75)
    assert len(fleet.started["worker"]) == 1, "not before its back-off"
    fleet.run_for(0.5)
    assert len(fleet.started["worker"]) == 2
    assert fleet.current("worker").poll() is None


def test_a_child_that_keeps_dying_waits_longer_each_time_and_never_stops_the_others(fleet: Fleet) -> None:
    fleet.launch(fleet.service("broker"), fleet.service("worker"))
    restarted_at = []
    for _ in range(8):
        fleet.current("worker").die(1)
        died_at, before = fleet.clock.now, len(fleet.started["worker"])
        while len(fleet.started["worker"]) == before:
            fleet.run_for(0.25)
        restarted_at.append(fleet.clock.now - died_at)
    assert [round(delay) for delay in restarted_at] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert len(fleet.started["broker"]) == 1 and fleet.current("broker").signals == [], "the broker is left alone"


def test_the_back_off_starts_again_from_one_second_once_a_child_stays_up(fleet: Fleet) -> None:
    fleet.launch(fleet.service("worker"))
    for _ in range(4):  # back-off now at 8 s
        fleet.current("worker").die(1)
        fleet.run_for(10)
    fleet.run_for(RestartPolicy().stable_after_s)
    fleet.current("worker").die(1)
    fleet.run_for(1.25)
    assert len(fleet.started["worker"]) == 6


def test_a_restarted_child_counts_as_up_only_once_ready_and_one_never_ready_is_started_again(fleet: Fleet) -> None:
    fleet.launch(fleet.service("ClickHouse", ready=True))
    fleet.current("ClickHouse").die(-9)
    fleet.ready["ClickHouse"] = False
    fleet.run_for(1.5)
    assert fleet.status()["ClickHouse"]["state"] == "starting"
    fleet.run_for(20)
    first_try = fleet.started["ClickHouse"][1]
    assert first_try.signals == [signal.SIGTERM], "stopped after its readiness time-out"
    assert any("did not become ready within 20 s" in line for line in fleet.said)
    fleet.ready["ClickHouse"] = True
    fleet.run_for(3)
    assert fleet.status()["ClickHouse"]["state"] == "up"
    assert "ClickHouse is up again" in fleet.said


def test_while_the_broker_is_down_the_worker_and_simulator_are_stopped_and_start_afresh_once_it_is_back(
    fleet: Fleet,
) -> None:
    """A client left running across a restart of the in-memory broker would write into topics it
    auto-creates (Tansu then refuses later writes to them), so dependents wait for it, stopped."""
    topics_created_before: list[int] = []
    broker = fleet.service("broker", ready=True)
    broker = replace(broker, when_ready=lambda: topics_created_before.append(len(fleet.started["worker"])))
    fleet.launch(
        fleet.service("ClickHouse"),
        broker,
        fleet.service("worker", restart_after=("broker",)),
        fleet.service("simulator", restart_after=("broker",)),
    )
    worker, simulator = fleet.current("worker"), fleet.current("simulator")
    fleet.current("broker").die(-9)
    fleet.ready["broker"] = False
    fleet.run_for(0.25)
    assert worker.signals == [signal.SIGTERM] and simulator.signals == [signal.SIGTERM], "stopped at once"
    assert fleet.said[-1] == "stopping worker, simulator until broker is back (they depend on it)"
    fleet.run_for(3)
    assert len(fleet.started["worker"]) == 1 and len(fleet.started["simulator"]) == 1, "not while it is down"
    assert fleet.status()["worker"]["state"] == "waiting" and fleet.status()["worker"]["waiting_for"] == "broker"
    fleet.ready["broker"] = True
    fleet.run_for(0.25)
    assert len(fleet.started["worker"]) == 2 and len(fleet.started["simulator"]) == 2
    assert fleet.said[-1] == "broker is up again; starting worker, simulator again"
    assert topics_created_before == [0, 1], "at launch and after the restart, each time before the worker starts"
    assert fleet.status()["worker"]["restarts"] == 1 and fleet.status()["worker"]["exits_in_window"] == 0


def test_a_dependent_waiting_out_its_own_back_off_waits_for_the_broker_instead(fleet: Fleet) -> None:
    fleet.launch(fleet.service("broker", ready=True), fleet.service("worker", restart_after=("broker",)))
    fleet.current("worker").die(1)
    fleet.run_for(0.25)
    fleet.current("broker").die(-9)
    fleet.ready["broker"] = False
    fleet.run_for(10)
    assert len(fleet.started["worker"]) == 1, "its back-off ran out, but the broker is still down"
    fleet.ready["broker"] = True
    fleet.run_for(0.25)
    assert len(fleet.started["worker"]) == 2


def test_clickhouse_coming_back_leaves_the_worker_alone(fleet: Fleet) -> None:
    """The worker waits and retries by itself while ClickHouse is away."""
    fleet.launch(fleet.service("ClickHouse", ready=True), fleet.service("worker", restart_after=("broker",)))
    fleet.current("ClickHouse").die(-9)
    fleet.run_for(3)
    assert len(fleet.started["ClickHouse"]) == 2
    assert len(fleet.started["worker"]) == 1 and fleet.current("worker").signals == []


def test_each_exit_says_how_often_when_the_next_try_is_and_the_last_error_in_its_log(fleet: Fleet) -> None:
    fleet.launch(fleet.service("worker"))
    log = fleet.tmp_path / "worker.log"
    for attempt in range(3):
        with log.open("a") as output:  # each run appends, as spawn() does
            output.write(f"starting\nKafkaTimeoutError: no answer {attempt}\nbye\n")
        fleet.current("worker").die(1)
        fleet.run_for(5)
    exits = [line for line in fleet.said if line.startswith("worker exited")]
    assert exits[0] == f"worker exited with code 1; restarting in 1 s — see {log}: KafkaTimeoutError: no answer 0"
    assert exits[2] == (
        f"worker exited with code 1 (3rd time in 5 min); restarting in 4 s — see {log}: KafkaTimeoutError: no answer 2"
    )


def test_a_child_killed_by_a_signal_says_which_and_quotes_only_an_error_from_its_log(fleet: Fleet) -> None:
    fleet.launch(fleet.service("dashboard"))
    (fleet.tmp_path / "dashboard.log").write_text("serving on port 8501\n")
    fleet.current("dashboard").die(-signal.SIGKILL)
    fleet.run_for(0.25)
    assert fleet.said[-1] == f"dashboard was killed by SIGKILL; restarting in 1 s — see {fleet.tmp_path}/dashboard.log"


def test_a_start_that_fails_counts_as_a_failure_and_is_tried_again(fleet: Fleet) -> None:
    attempts: list[int] = []
    child = FakeChild()

    def start() -> FakeChild:
        attempts.append(1)
        if len(attempts) == 2:
            raise ServiceError("port 8123 on 127.0.0.1 is already in use")
        return child if len(attempts) == 1 else FakeChild()

    fleet.launch(Service("ClickHouse", start))
    child.die(-9)
    fleet.run_for(1.25)
    assert len(attempts) == 2
    assert fleet.said[-1] == (
        "ClickHouse could not start (2nd time in 5 min): port 8123 on 127.0.0.1 is already in use; restarting in 2 s"
    )
    fleet.run_for(2)
    assert len(attempts) == 3 and fleet.status()["ClickHouse"]["state"] == "starting"


def test_the_status_file_names_what_is_down_how_often_it_failed_and_why(fleet: Fleet) -> None:
    fleet.launch(fleet.service("broker"), fleet.service("worker"))
    with (fleet.tmp_path / "worker.log").open("a") as log:
        log.write("Traceback (most recent call last):\nValueError: bad offset\n")
    fleet.current("worker").die(3)
    fleet.run_for(0.5)
    status = fleet.status()
    assert status["broker"]["state"] == "up" and status["broker"]["restarts"] == 0
    worker = status["worker"]
    assert worker["state"] == "waiting"
    assert worker["last_exit_code"] == 3 and worker["exits_in_window"] == 1
    assert worker["last_error"] == "ValueError: bad offset"
    assert worker["next_start_at"] == pytest.approx(1_800_000_000 + fleet.clock.now + 0.75)
    assert worker["log"] == str(fleet.tmp_path / "worker.log")
    fleet.run_for(1)
    assert fleet.status()["worker"]["state"] == "up" and fleet.status()["worker"]["restarts"] == 1


def test_something_down_for_a_minute_is_said_again_each_minute(fleet: Fleet) -> None:
    never_ready = fleet.service("broker", ready=True)
    fleet.launch(never_ready)
    fleet.ready["broker"] = False
    fleet.current("broker").die(-9)
    fleet.run_for(125)
    reminders = [line for line in fleet.said if line.startswith("still down: broker")]
    assert len(reminders) == 2
    assert "failures in 5 min" in reminders[-1]


def test_stop_all_stops_every_child_in_reverse_start_order(fleet: Fleet) -> None:
    fleet.launch(fleet.service("ClickHouse"), fleet.service("broker"), fleet.service("worker"))
    fleet.supervisor.stop_all()
    assert fleet.signalled == ["worker", "broker", "ClickHouse"]
    assert {component["state"] for component in fleet.status().values()} == {"stopped"}


@pytest.mark.parametrize(
    ("log", "line"),
    [
        ("starting\nready\n", "ready"),
        ("Traceback (most recent call last):\n  File x\nKafkaTimeoutError: gone\n", "KafkaTimeoutError: gone"),
        ("[31mERROR[0m broker: address in use\nshutting down\n", "ERROR broker: address in use"),
        ("x\n2026 ERROR sink: insert failed, retrying\n  at line\n\n", "2026 ERROR sink: insert failed, retrying"),
        ("", None),
        ("\n \n", None),
    ],
)
def test_the_last_error_line_of_a_log(log: str, line: str | None) -> None:
    assert last_error_line(log.replace("[", "\x1b[")) == line


SUPERVISED_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from labelpulse.child_processes import spawn
    from labelpulse.runtime import Service, Supervisor

    def sleeper(name):
        log = Path(sys.argv[1]) / f"{name}.log"
        return Service(name, lambda: spawn([sys.executable, "-c", "import time; time.sleep(600)"], log), log)

    supervisor = Supervisor(lambda line: print(line, flush=True), status_path=Path(sys.argv[1]) / "status.json")
    for name in ("first", "second"):
        supervisor.launch(sleeper(name))
    print("pids", *(supervisor.pid(name) for name in ("first", "second")), flush=True)
    sys.exit(supervisor.run())
    """
)


def supervised(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    first = process.stdout.readline().split()
    assert first[0] == "pids", first
    return process, [int(pid) for pid in first[1:]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_real_child_killed_is_started_again_and_sigterm_stops_everything(tmp_path: Path) -> None:
    supervisor, (first, second) = supervised(tmp_path)
    os.kill(first, signal.SIGKILL)
    wait_for(
        lambda: json.loads((tmp_path / "status.json").read_text())["components"][0]["restarts"] == 1,
        20,
        "the killed child to be started again",
    )
    restarted = json.loads((tmp_path / "status.json").read_text())["components"][0]["pid"]
    assert restarted != first and alive(restarted) and alive(second)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert not alive(restarted) and not alive(second)
    output = supervisor.stdout.read() if supervisor.stdout else ""
    assert "first was killed by SIGKILL; restarting in 1 s" in output
    assert output.rstrip().endswith("stopping…\nstopped")


def test_a_real_child_that_cannot_start_is_retried_without_stopping_the_others(tmp_path: Path) -> None:
    crashing = Service("crasher", lambda: spawn([sys.executable, "-c", "raise SystemExit('no config')"], None))
    lines: list[str] = []
    supervisor = Supervisor(lines.append, policy=RestartPolicy(first_delay_s=0.2, max_delay_s=0.4))
    steady = Service("steady", lambda: spawn([sys.executable, "-c", "import time; time.sleep(60)"], None))
    supervisor.launch(steady)
    supervisor.launch(crashing)
    deadline = time.monotonic() + 10
    while sum("crasher exited with code 1" in line for line in lines) < 3 and time.monotonic() < deadline:
        supervisor.step()
        time.sleep(0.05)
    assert sum("crasher exited with code 1" in line for line in lines) >= 3
    steady_pid = supervisor.pid("steady")
    assert steady_pid is not None and alive(steady_pid)
    supervisor.stop_all()
    assert not alive(steady_pid)


def test_ctrl_c_while_a_part_starts_stops_that_part_too(fleet: Fleet) -> None:
    def interrupted() -> bool:
        raise KeyboardInterrupt

    starting = replace(fleet.service("ClickHouse"), ready=interrupted)
    with pytest.raises(KeyboardInterrupt):
        fleet.supervisor.launch(starting)
    assert fleet.current("ClickHouse").signals == [signal.SIGTERM]
