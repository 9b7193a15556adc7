"""The local runtime: the embedded services as child processes, supervised by `labelpulse up`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labelpulse.net import http_ok, port_in_use
from labelpulse.process import spawn, terminate, wait_ready
from schema.client import ClickHouseSettings
from schema.config import env_int, env_str


@dataclass(frozen=True)
class RuntimeSettings:
    """Where the embedded default keeps its state and how long raw events are kept."""

    data_dir: Path = Path(".labelpulse")
    raw_events_ttl_days: int = 0  # 0 keeps raw events forever

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RuntimeSettings:
        return cls(
            data_dir=Path(env_str(env, "DATA_DIR", str(cls.data_dir))),
            raw_events_ttl_days=env_int(env, "RAW_EVENTS_TTL_DAYS", cls.raw_events_ttl_days, maximum=36_500),
        )

    @property
    def clickhouse_dir(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


class ServiceError(RuntimeError):
    pass


class EmbeddedClickHouseProcess:
    """`labelpulse clickhouse` as a child process, ready once /ping answers."""

    def __init__(
        self,
        clickhouse: ClickHouseSettings,
        data_dir: Path,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,  # more settings, e.g. LABELPULSE_ACCESS_FILE and its passwords
    ) -> None:
        self.clickhouse = clickhouse
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
        """Start the server and wait until it answers; returns its process."""
        host, port = self.clickhouse.host, self.clickhouse.port
        if port_in_use(host, port):
            raise ServiceError(
                f"port {port} on {host} is already in use — is another `labelpulse clickhouse` or a "
                "ClickHouse server running? Stop it, or set LABELPULSE_CLICKHOUSE_PORT to a free port."
            )
        command = [
            sys.executable, "-m", "labelpulse", "clickhouse",
            "--host", host, "--port", str(port), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        self.process = spawn(command, self.log_path, {**os.environ, **self.env, **self.clickhouse.to_env()})
        if not wait_ready(self.process, lambda: http_ok(f"http://{host}:{port}/ping"), timeout_s):
            code = self.process.poll()
            self.stop()
            where = f"; see {self.log_path}" if self.log_path else ""
            raise ServiceError(f"the embedded ClickHouse did not start (exit code {code}){where}")
        return self.process

    def stop(self, timeout_s: float = 15.0) -> None:
        process, self.process = self.process, None
        terminate(process, timeout_s)


RESTARTS_PER_WINDOW, RESTART_WINDOW_S = 5, 300.0


def supervise(
    children: list[tuple[str, subprocess.Popen[bytes]]],
    stop_all: Callable[[], None],
    say: Callable[[str], None],
    restart: Mapping[str, Callable[[], subprocess.Popen[bytes]]] | None = None,
) -> int:
    """Wait until Ctrl-C / SIGTERM or until a child dies; then stop everything. Returns an exit code.

    A child named in `restart` (the worker: it exits on purpose when Kafka does not take its
    output, leaving the batch to be replayed) is started again in place, in `children`, unless it
    keeps dying: more than RESTARTS_PER_WINDOW times in RESTART_WINDOW_S stops everything."""
    stopping = False
    restarts: list[float] = []

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 0
    try:
        while not stopping:
            for index, (name, process) in enumerate(children):
                if process.poll() is None:
                    continue
                now = time.monotonic()
                restarts[:] = [at for at in restarts if now - at < RESTART_WINDOW_S]
                if restart and name in restart and len(restarts) < RESTARTS_PER_WINDOW:
                    restarts.append(now)
                    say(f"{name} exited with code {process.returncode}; starting it again (its log says why)")
                    children[index] = (name, restart[name]())
                    continue
                say(f"{name} exited unexpectedly with code {process.returncode}; stopping everything")
                exit_code = 1
                stopping = True
                break
            time.sleep(0.2)
    finally:
        say("stopping…")
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code
