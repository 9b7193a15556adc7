"""The embedded broker: a real Kafka protocol peer on loopback, started and stopped cleanly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from labelpulse.broker import BrokerError, BrokerSettings, EmbeddedBroker, kafka_answers
from labelpulse.net import free_port


@pytest.mark.broker
def test_messages_round_trip_through_the_broker(kafka: BrokerSettings) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"

    async def round_trip() -> list[tuple[bytes | None, bytes | None]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await producer.start()
        try:
            for number in range(3):
                await producer.send_and_wait(topic, f"event {number}".encode(), key=b"task-1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000, max_records=3)
            return [(record.key, record.value) for records in batch.values() for record in records]
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == [(b"task-1", b"event 0"), (b"task-1", b"event 1"), (b"task-1", b"event 2")]


def test_broker_starts_answers_and_stops(tmp_path: Path) -> None:
    settings = BrokerSettings(port=free_port())
    broker = EmbeddedBroker(settings, log_path=tmp_path / "broker.log")
    broker.start()
    process = broker.process
    assert kafka_answers(settings.host, settings.port)
    broker.stop()
    assert process is not None and process.poll() is not None
    assert not kafka_answers(settings.host, settings.port)


def test_broker_refuses_a_busy_port(kafka_port_in_use: int) -> None:
    with pytest.raises(BrokerError, match="already answers Kafka"):
        EmbeddedBroker(BrokerSettings(port=kafka_port_in_use)).start()


@pytest.fixture
def kafka_port_in_use() -> object:
    settings = BrokerSettings(port=free_port())
    with EmbeddedBroker(settings):
        yield settings.port


def test_broker_refuses_a_non_loopback_address() -> None:
    with pytest.raises(BrokerError, match=r"non-loopback address 0\.0\.0\.0"):
        EmbeddedBroker(BrokerSettings(host="0.0.0.0", port=free_port()))


def test_nothing_listening_is_not_kafka() -> None:
    assert not kafka_answers("127.0.0.1", free_port(), timeout_s=0.2)


def test_the_broker_log_says_what_is_lost_when_it_stops(tmp_path: Path) -> None:
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=tmp_path / "broker.log")
    broker.start()
    broker.stop()
    first_line = (tmp_path / "broker.log").read_text().splitlines()[0]
    assert first_line.startswith("labelpulse: the embedded broker keeps topics in memory: when it stops, events")
    assert "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS" in first_line
