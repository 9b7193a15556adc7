"""The local runtime: the embedded services as child processes, supervised by `labelpulse up`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.env import env_int, env_str
from labelpulse.child_processes import Child, spawn, terminate, terminate_all, wait_ready
from labelpulse.net import http_ok, port_in_use
from schema.client import ClickHouseSettings

__all__ = [
    "EmbeddedClickHouseProcess",
    "RestartPolicy",
    "RuntimeSettings",
    "Service",
    "ServiceError",
    "Supervisor",
    "cli_command",
    "command_service",
    "running_up",
]


class ServiceError(RuntimeError):
    """A part of the local runtime cannot start; the message says why and what to do."""


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

    @property
    def status_path(self) -> Path:
        """`up`'s status file: each part's state, restarts and last error (the Pipeline view shows it)."""
        return self.data_dir / "status.json"


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
        process = self.launch()
        if not wait_ready(process, self.answers, timeout_s):
            code = process.poll()
            self.stop()
            where = f"; see {self.log_path}" if self.log_path else ""
            raise ServiceError(f"the embedded ClickHouse did not start (exit code {code}){where}")
        return process

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the server without waiting for it (answers() says when it serves)."""
        host, port = self.clickhouse.host, self.clickhouse.port
        if port_in_use(host, port):
            raise ServiceError(
                f"port {port} on {host} is already in use — is another `labelpulse clickhouse` or a "
                "ClickHouse server running? Stop it, or set LABELPULSE_CLICKHOUSE_PORT to a free port."
            )
        command = cli_command("clickhouse", "--host", host, "--port", str(port), "--data-dir", str(self.data_dir))
        self.process = spawn(command, self.log_path, {**os.environ, **self.env, **self.clickhouse.to_env()})
        return self.process

    def answers(self) -> bool:
        return http_ok(f"http://{self.clickhouse.host}:{self.clickhouse.port}/ping")

    def service(self, **options: Any) -> Service:
        """This server as a part of `up`: ready once /ping answers."""
        return Service("ClickHouse", self.launch, log_path=self.log_path, ready=self.answers, **options)

    def stop(self, timeout_s: float = 15.0) -> None:
        process, self.process = self.process, None
        terminate(process, timeout_s)


@dataclass(frozen=True)
class Service:
    """One part of `up`, described as data: how to start it, when it serves, what it follows.

    `spawn` starts the process and returns at once; it may raise ServiceError (a port taken by
    someone else), which counts as a failed start. `ready` says whether it serves yet (ClickHouse
    answers /ping, the broker ApiVersions); None: it serves once started; `when_ready` runs each
    time it is, before its dependents start (the broker: create the topics). `restart_after` names
    services this one must not outlive: when one of them dies this one is stopped, and it starts
    afresh once they are ready again. The in-memory broker comes back empty, and a client left
    running across its restart writes into topics it auto-creates, which Tansu then corrupts
    (later writes fail with AlreadyExists); so the worker and the simulator wait for it, stopped.
    Parts that only retry a connection (the worker while ClickHouse is away) need nothing: they
    recover by themselves. The back-off between restarts is the supervisor's RestartPolicy."""

    name: str
    spawn: Callable[[], Child]
    log_path: Path | None = None
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    when_ready: Callable[[], object] | None = None
    restart_after: tuple[str, ...] = ()
    stop_timeout_s: float = 15.0
    exit_note: str = ""  # said with every exit, e.g. what the in-memory broker loses
    starting: str = ""  # what `up` says before its first start


def cli_command(*args: str) -> list[str]:
    """`labelpulse ARGS` run by this same Python: children run the installation `up` runs from."""
    return [sys.executable, "-m", "labelpulse", *args]


def command_service(
    name: str, command: Callable[[], Sequence[str]], log_path: Path, env: Mapping[str, str], **options: Any
) -> Service:
    """A part run by a command (asked for at every start: the simulator's seed changes), its output to `log_path`."""
    return Service(name, lambda: spawn(command(), log_path, env), log_path=log_path, **options)


@dataclass(frozen=True)
class RestartPolicy:
    """When to start a part again: 1 s after it fails, doubling with every failure in a row up
    to 30 s; a part that stayed up `stable_after_s` starts again from 1 s. Exits within
    `window_s` are counted when saying how often something failed; `flapping_exits` of them
    make it flapping (the Pipeline view warns)."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    window_s: float = 300.0
    flapping_exits: int = 3
    remind_every_s: float = 60.0

    def delay_s(self, failures: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(0, failures - 1)))


STARTING, UP, WAITING, STOPPED = "starting", "up", "waiting", "stopped"
# A dependent's grace to finish what it holds (the worker: inserts under way) before SIGKILL.
DEPENDENT_STOP_TIMEOUT_S = 10.0


@dataclass
class _Record:
    """What the supervisor knows about one service (clock times are monotonic)."""

    service: Service
    state: str = STOPPED
    process: Child | None = None
    started_at: float = 0.0
    since: float = 0.0  # wall clock: when it entered `state`
    log_offset: int = 0  # where this run's lines start in its log
    failures: int = 0  # in a row; back to 0 once it stays up
    restarts: int = 0
    exits: list[float] = field(default_factory=list)
    down_since: float | None = None
    reminded_at: float | None = None
    last_exit: str | None = None  # how it ended, in words: "was killed by SIGKILL"
    last_exit_code: int | None = None
    last_exit_at: float | None = None  # wall clock
    last_error: str | None = None
    next_start_at: float | None = None
    waiting_for: str | None = None  # a service it depends on, down


class Supervisor:
    """Keeps every service of `up` running until Ctrl-C or SIGTERM.

    A service that dies (or does not become ready in time) is started again after a back-off
    (RestartPolicy); nothing else is stopped because one part failed, but for the services that
    must not outlive it (Service.restart_after), which wait for it. Every exit is said in one
    line: what, how often, when the next try is, and the last error line of its log; something
    down for a minute is said again every minute. `status_path` (the data dir's status.json)
    always holds every part's state for the dashboard's Pipeline view. Only stop_all() — after
    Ctrl-C / SIGTERM in run() — stops everything, in reverse start order."""

    def __init__(
        self,
        say: Callable[[str], None],
        status_path: Path | None = None,
        policy: RestartPolicy = RestartPolicy(),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.say = say
        self.status_path = status_path
        self.policy = policy
        self.clock = clock
        self.wall_clock = wall_clock
        self.records: list[_Record] = []
        self._status_written_at = -1e9

    # -- starting -------------------------------------------------------------------------

    def launch(self, service: Service) -> None:
        """Start a service for the first time and wait until it is ready; ServiceError if it
        cannot start (`up` stops what it started then: a part that never starts is a setup problem,
        a port taken or a broken install, not something a restart fixes)."""
        record = _Record(service, log_offset=_size(service.log_path))
        process = record.process = service.spawn()
        try:
            ready = service.ready is None or wait_ready(process, service.ready, service.ready_timeout_s)
        except BaseException:  # Ctrl-C while it starts: it is not among the records stop_all() stops
            terminate(process, service.stop_timeout_s)
            raise
        if not ready:
            code = process.poll()
            terminate(process, service.stop_timeout_s)
            where = f"; see {service.log_path}" if service.log_path else ""
            error = self._last_error(record)
            raise ServiceError(
                f"{service.name} did not start (exit code {code}){where}" + (f": {error}" if error else "")
            )
        record.started_at = self.clock()
        self._enter(record, UP)
        self.records.append(record)
        self._when_ready(record)
        self._write_status(force=True)

    def pid(self, name: str) -> int | None:
        record = self._record(name)
        return record.process.pid if record.process is not None and record.state in (STARTING, UP) else None

    # -- supervising ----------------------------------------------------------------------

    def run(self, poll_s: float = 0.2) -> int:
        """Supervise until SIGINT or SIGTERM, then stop everything; returns the exit code (0)."""
        stopping = False

        def request_stop(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopping:
                self.step()
                time.sleep(poll_s)
        finally:
            self.say("stopping…")
            self.stop_all()
            self.say("stopped")  # the log's last line: every part ended, nothing left running
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def step(self) -> None:
        """One look at every service: note exits, start what is due, mark what became ready."""
        now = self.clock()
        changed = False
        for record in self.records:
            process = record.process
            if record.state in (STARTING, UP) and process is not None and (code := process.poll()) is not None:
                self._failed(record, now, _ended(code), code)
                changed = True
            elif record.state == STARTING:
                changed |= self._check_ready(record, now)
            elif record.state == UP and record.failures and now - record.started_at >= self.policy.stable_after_s:
                record.failures = 0
            elif record.state == WAITING and record.waiting_for is None and now >= (record.next_start_at or now):
                self._spawn(record, now)
                record.restarts += 1
                changed = True
        self._remind(now)
        self._write_status(force=changed)

    def stop_all(self) -> None:
        for record in reversed(self.records):
            process, record.process = record.process, None
            terminate(process, record.service.stop_timeout_s)
            self._enter(record, STOPPED)
        self._write_status(force=True)

    # -- the parts of a step --------------------------------------------------------------

    def _spawn(self, record: _Record, now: float) -> None:
        service = record.service
        record.log_offset = _size(service.log_path)
        try:
            record.process = service.spawn()
        except (ServiceError, OSError) as exc:  # a port taken, a log dir removed: tried again later
            record.process = None
            self._failed(record, now, "could not start", None, error=str(exc))
            return
        record.started_at = now
        self._enter(record, STARTING)

    def _check_ready(self, record: _Record, now: float) -> bool:
        service = record.service
        if service.ready is None or service.ready():
            self._enter(record, UP)
            was_down, record.down_since, record.reminded_at = record.down_since is not None, None, None
            self._when_ready(record)
            waiting = [other for other in self._dependents(record) if other.waiting_for == service.name]
            if waiting:
                names = ", ".join(other.service.name for other in waiting)
                self.say(f"{service.name} is up again; starting {names} again")
                for other in waiting:
                    other.waiting_for = None
                    self._spawn(other, now)
                    other.restarts += 1
            elif was_down:
                self.say(f"{service.name} is up again")
            return True
        if now - record.started_at >= service.ready_timeout_s:
            terminate(record.process, service.stop_timeout_s)
            self._failed(record, now, f"did not become ready within {service.ready_timeout_s:g} s", None)
            return True
        return False

    def _when_ready(self, record: _Record) -> None:
        if record.service.when_ready is None:
            return
        try:
            record.service.when_ready()
        except Exception as exc:  # its dependents may still manage by themselves: say it, go on
            self.say(f"{record.service.name} is up, but what follows its start failed: {exc}")

    def _dependents(self, record: _Record) -> list[_Record]:
        return [other for other in self.records if record.service.name in other.service.restart_after]

    def _stop_dependents(self, record: _Record) -> None:
        """Stop (without counting a failure) what must not outlive `record`, all at once."""
        dependents = self._dependents(record)
        running = [other for other in dependents if other.process is not None]
        if running:
            names = ", ".join(other.service.name for other in running)
            self.say(f"stopping {names} until {record.service.name} is back (they depend on it)")
            terminate_all([other.process for other in running if other.process], DEPENDENT_STOP_TIMEOUT_S)
        for other in dependents:
            other.process = None
            other.waiting_for = record.service.name
            other.next_start_at = None
            self._enter(other, WAITING)

    def _failed(self, record: _Record, now: float, what: str, code: int | None, error: str | None = None) -> None:
        service = record.service
        record.exits = [*self._recent_exits(record, now), now]
        record.failures += 1
        record.last_exit = what
        record.last_exit_code = code
        record.last_exit_at = self.wall_clock()
        # A process killed by a signal wrote no last words: its last line would mislead.
        record.last_error = error or self._last_error(record, any_line=code is None or code >= 0)
        delay = self.policy.delay_s(record.failures)
        record.next_start_at = now + delay
        record.process = None
        if record.down_since is None:
            record.down_since = now
        self._enter(record, WAITING)
        count = len(record.exits)
        often = f" ({_ordinal(count)} time in {self.policy.window_s / 60:g} min)" if count > 1 else ""
        if error:
            line = f"{service.name} {what}{often}: {error}; restarting in {delay:g} s"
        else:
            where = f" — see {service.log_path}" if service.log_path else ""
            why = f": {record.last_error}" if record.last_error and service.log_path else ""
            line = f"{service.name} {what}{often}; restarting in {delay:g} s{where}{why}"
        self.say(line + (f" ({service.exit_note})" if service.exit_note else ""))
        self._stop_dependents(record)

    def _remind(self, now: float) -> None:
        for record in self.records:
            if record.down_since is None or now - record.down_since < self.policy.remind_every_s:
                continue
            if record.reminded_at is not None and now - record.reminded_at < self.policy.remind_every_s:
                continue
            record.reminded_at = now
            count = len(self._recent_exits(record, now))
            when = (
                f"next try in {max(0.0, record.next_start_at - now):.0f} s"
                if record.state == WAITING and record.next_start_at is not None
                else "starting"
            )
            error = f"; last error: {record.last_error}" if record.last_error else ""
            self.say(
                f"still down: {record.service.name} for {(now - record.down_since) / 60:.0f} min "
                f"({count} failures in {self.policy.window_s / 60:g} min; {when}){error}"
            )

    def _enter(self, record: _Record, state: str) -> None:
        record.state = state
        record.since = self.wall_clock()

    def _recent_exits(self, record: _Record, now: float) -> list[float]:
        return [at for at in record.exits if now - at < self.policy.window_s]

    def _last_error(self, record: _Record, any_line: bool = True) -> str | None:
        path = record.service.log_path
        if path is None or not path.exists():
            return None
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            start = record.log_offset if record.log_offset <= size else 0  # truncated: read it all
            log.seek(max(start, size - 16_384))
            return last_error_line(log.read().decode("utf-8", "replace"), any_line)

    def _record(self, name: str) -> _Record:
        return next(record for record in self.records if record.service.name == name)

    # -- the status file ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The status file's document: every part's state, restarts and last failure (times in
        seconds since the epoch). dashboard/runtime_status.py reads it."""
        now = self.clock()
        components = []
        for record in self.records:
            exits = len(self._recent_exits(record, now))
            components.append(
                {
                    "name": record.service.name,
                    "state": record.state,
                    "pid": record.process.pid if record.process is not None else None,
                    "since": record.since,
                    "restarts": record.restarts,
                    "exits_in_window": exits,
                    "flapping": exits >= self.policy.flapping_exits,
                    "last_exit": record.last_exit,
                    "last_exit_code": record.last_exit_code,
                    "last_exit_at": record.last_exit_at,
                    "last_error": record.last_error,
                    "next_start_at": (
                        self.wall_clock() + record.next_start_at - now
                        if record.state == WAITING and record.next_start_at is not None
                        else None
                    ),
                    "waiting_for": record.waiting_for,
                    "log": str(record.service.log_path) if record.service.log_path else None,
                }
            )
        return {
            "supervisor_pid": os.getpid(),
            "updated_at": self.wall_clock(),
            "window_s": self.policy.window_s,
            "components": components,
        }

    def _write_status(self, force: bool = False) -> None:
        """Atomically (a reader never sees half a file); at least every 5 s, so a reader can tell
        a live supervisor from the file of one that is gone."""
        now = self.clock()
        if self.status_path is None or (not force and now - self._status_written_at < 5.0):
            return
        self._status_written_at = now
        partial = self.status_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.status(), indent=1))
        partial.replace(self.status_path)


def running_up(status_path: Path) -> int | None:
    """The pid of the `up` whose status file this is, while it runs; None when it is gone.

    Gone: no file, a supervisor pid that no longer runs (it was killed), or every part stopped
    (it was stopped and is exiting)."""
    try:
        document = json.loads(status_path.read_text(encoding="utf-8"))
        pid = int(document["supervisor_pid"])
        states = {part["state"] for part in document.get("components", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or states <= {STOPPED}:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user
    return pid


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ERROR_WORDS = re.compile(r"error|exception|fatal|critical|panicked|refused|cannot|failed|traceback", re.IGNORECASE)


def last_error_line(log: str, any_line: bool = True) -> str | None:
    """The line of a log most likely to say why a process died: the last one that names an
    error (for a Python traceback, the exception line), else the last line (if `any_line`)."""
    lines = [ANSI_ESCAPE.sub("", line).strip() for line in log.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if ERROR_WORDS.search(line) and not line.startswith("Traceback (most recent call last)"):
            return line[:300]
    return lines[-1][:300] if lines and any_line else None


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0
