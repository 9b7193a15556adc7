"""Consumer lag of the workers' group, read from Kafka: per partition, end offset minus committed offset."""

from __future__ import annotations

import asyncio
import logging

import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_admin.settings import KafkaSettings

COLUMNS = ["partition", "end_offset", "committed", "lag"]
# An unreachable Kafka is shown on the page; aiokafka would also log it on every refresh.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


class LagUnavailable(RuntimeError):
    """Kafka did not answer in time, or the topic does not exist (yet)."""


def consumer_lag(kafka: KafkaSettings, group: str, timeout_s: float = 3.0) -> pd.DataFrame:
    """Lag of `group` on the events topic."""
    try:
        return asyncio.run(asyncio.wait_for(_lag(kafka, group), timeout_s))
    except LagUnavailable:
        raise
    except (TimeoutError, OSError) as error:
        raise LagUnavailable(f"no answer from Kafka at {kafka.bootstrap_servers} ({type(error).__name__})") from error
    except Exception as error:  # aiokafka's own errors have no common base worth naming here
        raise LagUnavailable(f"Kafka at {kafka.bootstrap_servers}: {error}") from error


async def _lag(kafka: KafkaSettings, group: str) -> pd.DataFrame:
    topic = kafka.events_topic
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**kafka.client_options())
    try:
        await consumer.start()
        await admin.start()
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            await consumer.topics()  # refreshes metadata
            numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise LagUnavailable(f"topic {topic} does not exist (yet)")
        tps = [TopicPartition(topic, number) for number in sorted(numbers)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await consumer.stop()
        await admin.close()
    rows = []
    for tp in tps:
        offset = committed.get(tp)
        done = offset.offset if offset is not None and offset.offset >= 0 else 0
        rows.append([tp.partition, ends[tp], done, max(ends[tp] - done, 0)])
    return pd.DataFrame(rows, columns=COLUMNS)
