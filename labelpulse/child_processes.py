"""Spawning and stopping the local runtime's child processes: each in its own session, its output
to a log file, stopped with SIGTERM and then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol


class Child(Protocol):
    """What the runtime needs of a child process (a Popen has it; tests use fakes)."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def spawn(
    command: Sequence[str], log_path: Path | None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below, the child keeps it
    try:
        return subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in a terminal reaches only the supervisor, which stops children in order.
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    finally:
        if output is not subprocess.DEVNULL:
            output.close()  # type: ignore[union-attr]


def wait_ready(process: Child, ready: Callable[[], bool], timeout_s: float) -> bool:
    """True once `ready()` holds; False if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.05)
    return False


def terminate(process: Child | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; a no-op for a process that already ended."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def terminate_all(processes: Sequence[Child], timeout_s: float) -> None:
    """SIGTERM to all at once, then SIGKILL to those still running after `timeout_s`."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
