"""Services and helpers the tests share: an embedded ClickHouse process, workers, the command line
run as a user would, system tools, waiting for a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from kafka_admin.settings import KafkaSettings
from labelpulse.child_processes import spawn
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema.client import ClickHouseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class ClickHouseService:
    """A running embedded ClickHouse process and how to reach it."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = ClickHouseSettings(port=free_port(), database="default")
        self._process = EmbeddedClickHouseProcess(self.settings, data_dir, log_path=log_path)

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._process.stop()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process.process

    @property
    def url(self) -> str:
        return self.settings.url


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `labelpulse …` as a user would, in its own process (`stdin` piped to it)."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("LABELPULSE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "labelpulse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def tool_missing(message: str) -> NoReturn:
    """A tool the test needs is not installed: skip, except in CI, which installs every one (./dev test)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def system_tool(name: str, package: str) -> str:
    """Path of a tool from Debian's packages; skips without it, except in CI (.ci/run installs it)."""
    import shutil

    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        tool_missing(f"{name} is not installed (apt-get install {package})")
    return path


@dataclass
class WorkerHarness:
    env: dict[str, str]
    log_dir: Path
    topic: str
    processes: list[subprocess.Popen[bytes]]
    metrics_ports: list[int] = field(default_factory=list)

    @property
    def kafka(self) -> KafkaSettings:
        """The topics and partitions the workers use (for producers that create the topics first)."""
        return KafkaSettings.from_env(self.env)

    def start(self, **overrides: str) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"worker-{len(self.processes)}.log"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")}, **self.env, **overrides}
        env.setdefault("LABELPULSE_WORKER_METRICS_PORT", str(free_port()))  # each worker its own /metrics
        self.metrics_ports.append(int(env["LABELPULSE_WORKER_METRICS_PORT"]))
        process = spawn([sys.executable, "-m", "labelpulse", "worker", "--loglevel", "info"], log_path, env)
        self.processes.append(process)

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            return "Worker]: Ready" in log_path.read_text(errors="replace")

        wait_for(ready, 90, f"worker ready ({log_path})")
        return process


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
