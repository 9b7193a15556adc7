"""A topic that starts again at offset 0 — recreated on Kafka, or empty after the in-memory embedded broker
restarted — is a new incarnation of the topic, not a replay: every event sent to it is stored.

All real: the embedded broker, `labelpulse worker` processes, the embedded ClickHouse. A worker that finds
its topic recreated may exit (its supervisor — `labelpulse up`, docker-compose — starts it again); the tests
play that supervisor.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from kafka_admin.topics import create_topics
from labelpulse.broker import BrokerSettings, EmbeddedBroker
from labelpulse.net import free_port
from labelpulse.simulator import Plan, generate
from schema.client import ClickHouseSettings
from tests.support.services import WorkerHarness, wait_for

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker, pytest.mark.faults]


def simulated(seed: int, count: int) -> list[bytes]:
    """`count` valid events whose tasks run their whole course (a sparse simulated clock)."""
    plan = Plan(seed=seed, start=datetime.now(UTC) - timedelta(hours=1), rate=5)
    return [message.value for message in islice(generate(plan), count)]


def produce(bootstrap_servers: str, topic: str, values: list[bytes]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=5)
        await producer.start()
        try:
            sent = [await producer.send(topic, value, key=json.loads(value)["task_id"].encode()) for value in values]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(go())


def events_stored(client: Client) -> int:
    return int(client.command("SELECT count() FROM events"))


def keep_running(harness: WorkerHarness) -> None:
    """Start the worker again if it exited, as `labelpulse up` or docker-compose would."""
    if harness.processes[-1].poll() is not None:
        harness.start()


def wait_until_stored(harness: WorkerHarness, client: Client, count: int, timeout_s: float) -> None:
    def done() -> bool:
        keep_running(harness)
        return events_stored(client) >= count

    wait_for(done, timeout_s, f"{count} events stored")


def test_a_recreated_topic_is_stored_from_offset_zero_again(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client
) -> None:
    first, second = simulated(31, 600), simulated(32, 400)
    harness.start()
    produce(kafka.bootstrap_servers, harness.topic, first)
    wait_until_stored(harness, migrated, len(first), 120)

    async def recreate() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([harness.topic])
        finally:
            await admin.close()
        await asyncio.sleep(1)
        await create_topics(harness.kafka)

    asyncio.run(recreate())
    produce(kafka.bootstrap_servers, harness.topic, second)
    wait_until_stored(harness, migrated, len(first) + len(second), 120)
    assert events_stored(migrated) == len(first) + len(second)
    assert migrated.command("SELECT count() - uniqExact(event_id) FROM events") == 0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test alone, which it may restart (the session's broker is shared)."""
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=tmp_path / "own-broker.log")
    broker.start()
    yield broker
    broker.stop()


def test_an_in_memory_broker_restart_under_a_running_worker_loses_no_new_event(
    clickhouse: ClickHouseSettings, migrated: Client, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    servers = own_broker.settings.bootstrap_servers
    harness = WorkerHarness(
        {
            **clickhouse.to_env(),
            "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": servers,
            "LABELPULSE_EVENTS_TOPIC": f"events-{suffix}",
            "LABELPULSE_CONSUMER_GROUP": f"worker-{suffix}",
            "LABELPULSE_DATA_DIR": str(tmp_path / "state"),
            "LABELPULSE_EVENTS_PARTITIONS": "3",
            "LABELPULSE_SESSION_TIMEOUT_MS": "6000",
        },
        tmp_path,
        f"events-{suffix}",
        [],
    )
    try:
        first, second = simulated(41, 600), simulated(42, 400)
        harness.start()
        produce(servers, harness.topic, first)
        wait_until_stored(harness, migrated, len(first), 120)

        own_broker.stop()
        own_broker.start()  # empty: topics, offsets and the group's commits are gone
        asyncio.run(create_topics(harness.kafka))
        produce(servers, harness.topic, second)
        wait_until_stored(harness, migrated, len(first) + len(second), 180)
        assert events_stored(migrated) == len(first) + len(second)
    finally:
        for process in harness.processes:
            process.terminate()
            process.wait(30)
