"""Test tiers.

Unit tests use no services. Tests marked `clickhouse` get a real embedded ClickHouse
(`python -m labelpulse clickhouse` as its own process, as in production) started once per
test session on a free port in a temp directory; each test gets its own database. Tests
marked `broker` get a real Tansu broker the same way. The fixtures refuse unmarked tests, so
an unmarked test cannot reach a service by accident.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, settings

from kafka_admin.settings import KafkaSettings
from labelpulse.broker import BrokerSettings, EmbeddedBroker
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema import migrations
from schema.client import ClickHouseSettings, connect

REPO_ROOT = Path(__file__).resolve().parent.parent
# Property tests judge results, never speed: a loaded machine (CI, two cores) must not fail them.
settings.register_profile("labelpulse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("labelpulse")


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"{request.node.nodeid} uses a {marker} fixture but is not marked @pytest.mark.{marker}")


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


@pytest.fixture(scope="session")
def clickhouse_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseService]:
    base = tmp_path_factory.mktemp("clickhouse")
    service = ClickHouseService(base / "data", base / "clickhouse.log")
    service.start()
    yield service
    service.stop()


@pytest.fixture
def clickhouse(request: pytest.FixtureRequest, clickhouse_service: ClickHouseService) -> Iterator[ClickHouseSettings]:
    """Settings for a fresh, empty database of this test alone on the session's ClickHouse."""
    _require_marker(request, "clickhouse")
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin = connect(clickhouse_service.settings, database="default")
    admin.command(f"CREATE DATABASE {database}")
    yield replace(clickhouse_service.settings, database=database)
    admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    admin.close()


@pytest.fixture
def ch_client(clickhouse: ClickHouseSettings) -> Iterator[Client]:
    client = connect(clickhouse)
    yield client
    client.close()


@pytest.fixture
def migrated(ch_client: Client) -> Client:
    """A client on a fresh database with every migration applied."""
    migrations.migrate(ch_client)
    return ch_client


@pytest.fixture(scope="session")
def broker_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerSettings]:
    settings = BrokerSettings(port=free_port())
    broker = EmbeddedBroker(settings, log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    broker.start()
    yield settings
    broker.stop()


@pytest.fixture
def kafka(request: pytest.FixtureRequest, broker_service: BrokerSettings) -> BrokerSettings:
    _require_marker(request, "broker")
    return broker_service


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


def system_tool(name: str, package: str) -> str:
    """Path of a tool from Debian's packages; skips without it, except in CI (.ci/run installs it)."""
    import shutil

    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        message = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
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


@pytest.fixture
def harness(
    clickhouse: ClickHouseSettings, migrated: Client, kafka: BrokerSettings, tmp_path: Path
) -> Iterator[WorkerHarness]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"events-{suffix}"
    env = {
        **clickhouse.to_env(),
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LABELPULSE_EVENTS_TOPIC": topic,
        "LABELPULSE_DEAD_LETTER_TOPIC": f"{topic}-dead-letter",
        "LABELPULSE_CONSUMER_GROUP": f"worker-{suffix}",
        "LABELPULSE_DATA_DIR": str(tmp_path / "state"),
        "LABELPULSE_EVENTS_PARTITIONS": "3",
        "LABELPULSE_SESSION_TIMEOUT_MS": "6000",
    }
    harness = WorkerHarness(env, tmp_path, topic, [])
    yield harness
    for process in harness.processes:
        terminate(process, timeout_s=30)
