"""Test tiers.

Unit tests use no services. Tests marked `clickhouse` get a real embedded ClickHouse
(`python -m labelpulse clickhouse` as its own process, as in production) started once per
test session on a free port in a temp directory; each test gets its own database. Tests
marked `broker` get a real Tansu broker the same way. The fixtures refuse unmarked tests, so
an unmarked test cannot reach a service by accident.

Tests mirror the packages they test (tests/streams/ for streams, ...); tests/ itself holds those
that span packages. What several tests share lives in tests/support.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, settings

from labelpulse.broker import BrokerSettings, EmbeddedBroker
from labelpulse.child_processes import terminate
from labelpulse.net import free_port
from schema import migrations
from schema.client import ClickHouseSettings, connect
from tests.support.services import ClickHouseService, WorkerHarness

# Property tests judge results, never speed: a loaded machine (CI, two cores) must not fail them.
settings.register_profile("labelpulse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("labelpulse")


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"{request.node.nodeid} uses a {marker} fixture but is not marked @pytest.mark.{marker}")


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
