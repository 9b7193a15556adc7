"""Fake services for the supervisor, and what it did with them."""

from __future__ import annotations

import itertools
import json
import signal
from collections.abc import Callable
from pathlib import Path

from labelpulse.runtime import (
    RestartPolicy,
    Service,
    Supervisor,
)


class Fleet:
    """Services whose every start makes a new FakeChild, and a supervisor over them."""

    def __init__(self, tmp_path: Path, policy: RestartPolicy | None = None) -> None:
        self.clock = Clock()
        self.said: list[str] = []
        self.started: dict[str, list[FakeChild]] = {}
        self.signalled: list[str] = []
        self.ready: dict[str, bool] = {}
        self.tmp_path = tmp_path
        self.status_path = tmp_path / "status.json"
        self.supervisor = Supervisor(
            self.said.append,
            status_path=self.status_path,
            policy=policy or RestartPolicy(),
            clock=self.clock,
            wall_clock=lambda: 1_800_000_000 + self.clock.now,
        )

    def service(self, name: str, *, ready: bool | None = None, restart_after: tuple[str, ...] = ()) -> Service:
        self.started[name] = []
        if ready is not None:
            self.ready[name] = ready

        def start() -> FakeChild:
            self.started[name].append(FakeChild(on_signal=lambda: self.signalled.append(name)))
            return self.started[name][-1]

        return Service(
            name,
            start,
            log_path=self.tmp_path / f"{name}.log",
            ready=(lambda: self.ready[name]) if ready is not None else None,
            ready_timeout_s=20,
            restart_after=restart_after,
        )

    def launch(self, *services: Service) -> None:
        for service in services:
            self.supervisor.launch(service)

    def current(self, name: str) -> FakeChild:
        return self.started[name][-1]

    def run_for(self, seconds: float, step_s: float = 0.25) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now += step_s
            self.supervisor.step()

    def status(self) -> dict[str, dict[str, object]]:
        document = json.loads(self.status_path.read_text())
        return {component["name"]: component for component in document["components"]}


class FakeChild:
    """A child process the test kills by hand."""

    def __init__(self, on_signal: Callable[[], None] = lambda: None) -> None:
        self.pid = next(_pids)
        self.returncode: int | None = None
        self.signals: list[int] = []
        self.on_signal = on_signal

    def poll(self) -> int | None:
        return self.returncode

    def die(self, code: int = 1) -> None:
        self.returncode = code

    def send_signal(self, sig: int) -> None:
        self.on_signal()
        self.signals.append(sig)
        self.returncode = -sig

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode or 0

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


_pids = itertools.count(1000)
