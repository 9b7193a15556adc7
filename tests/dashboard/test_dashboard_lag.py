"""Consumer lag as the Pipeline view reads it, against the real embedded broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from dashboard.lag import LagUnavailable, consumer_lag
from kafka_admin.settings import KafkaSettings
from labelpulse.broker import BrokerSettings
from labelpulse.net import free_port

pytestmark = pytest.mark.broker


def test_lag_is_end_offset_minus_the_groups_committed_offset(kafka: BrokerSettings) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"

    async def produce_and_commit() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"x", partition=i % 2)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.start()
        try:
            await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "")})
        finally:
            await consumer.stop()

    asyncio.run(produce_and_commit())
    lag = consumer_lag(KafkaSettings(kafka.bootstrap_servers, events_topic=topic), group).set_index("partition")
    assert lag.loc[0, "end_offset"] == 5 and lag.loc[0, "committed"] == 3 and lag.loc[0, "lag"] == 2
    assert lag.loc[1, "lag"] == 5, "nothing committed: everything is lag"
    assert int(lag["lag"].sum()) == 7


def test_a_missing_topic_is_reported(kafka: BrokerSettings) -> None:
    with pytest.raises(LagUnavailable, match="does not exist"):
        consumer_lag(KafkaSettings(kafka.bootstrap_servers, events_topic=f"absent-{uuid.uuid4().hex[:8]}"), "g")


def test_no_kafka_is_reported_quickly() -> None:
    with pytest.raises(LagUnavailable, match=r"Kafka at 127\.0\.0\.1"):
        consumer_lag(KafkaSettings(f"127.0.0.1:{free_port()}"), "g", timeout_s=2)
