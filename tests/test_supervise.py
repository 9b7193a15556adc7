"""`labelpulse up`'s supervisor, with real child processes: a crashed worker is started again, one
that keeps crashing stops everything, and any other child's exit stops everything at once."""

from __future__ import annotations

import subprocess
import sys

from labelpulse.process import spawn
from labelpulse.runtime import RESTARTS_PER_WINDOW, supervise


def child(code: int, after_s: float = 0.0) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-c", f"import time, sys; time.sleep({after_s}); sys.exit({code})"], None)


def test_a_crashed_worker_is_restarted_until_it_keeps_crashing() -> None:
    said: list[str] = []
    stopped: list[bool] = []
    children = [("worker", child(1)), ("dashboard", child(0, after_s=60))]
    code = supervise(children, lambda: stopped.append(True), said.append, restart={"worker": lambda: child(1)})
    restarted = [line for line in said if line == "worker exited with code 1; starting it again (its log says why)"]
    assert len(restarted) == RESTARTS_PER_WINDOW
    assert "worker exited unexpectedly with code 1; stopping everything" in said
    assert code == 1 and stopped == [True]
    children[1][1].kill()


def test_a_restarted_worker_takes_its_place_among_the_children() -> None:
    children = [("worker", child(1)), ("simulator", child(5, after_s=1.5))]
    replacement: list[subprocess.Popen[bytes]] = []

    def again() -> subprocess.Popen[bytes]:
        replacement.append(child(0, after_s=60))
        return replacement[-1]

    said: list[str] = []
    code = supervise(children, lambda: None, said.append, restart={"worker": again})
    assert said[-2:] == ["simulator exited unexpectedly with code 5; stopping everything", "stopping…"]
    assert code == 1 and len(replacement) == 1 and children[0] == ("worker", replacement[0]), "stop_all sees it"
    replacement[0].kill()
