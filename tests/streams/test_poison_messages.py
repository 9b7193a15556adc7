"""No message of any content or size up to the broker's limit stops the stream: each bad one is
dead-lettered with its own rule, and every good one around it is stored. All real: the embedded broker,
`labelpulse worker`, the embedded ClickHouse."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from kafka_admin.topics import create_topics
from labelpulse.broker import BrokerSettings
from labelpulse.simulator import Plan, generate
from tests.support.services import WorkerHarness, wait_for

pytestmark = [pytest.mark.clickhouse, pytest.mark.broker, pytest.mark.faults]

NESTED = "[" * 10_000 + "]" * 10_000


def poison(valid: dict[str, object]) -> dict[str, bytes]:
    """Messages that broke the worker once, by the rule each must be refused with."""
    return {
        "too_deep": NESTED.encode(),
        "too_deep ": (json.dumps(valid)[:-1] + f', "attachment": {NESTED}}}').encode(),  # inside an unknown field
        "too_large": json.dumps({**valid, "event_id": "big", "note": "x" * 2_000_000}).encode(),
        "unprintable_characters": json.dumps({**valid, "event_id": "nul", "project_id": "a\u0000b"}).encode(),
    }


def test_poison_messages_are_dead_lettered_and_the_stream_goes_on(
    harness: WorkerHarness, kafka: BrokerSettings, migrated: Client
) -> None:
    plan = Plan(seed=5, start=datetime.now(UTC) - timedelta(hours=1), rate=5)
    valid = [message.value for message in islice(generate(plan), 300)]
    bad = poison(json.loads(valid[0]) | {"event_id": "deep-inside"})
    worker = harness.start()

    async def send() -> None:
        await create_topics(harness.kafka)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, max_request_size=8 << 20)
        await producer.start()
        try:
            for index, value in enumerate(valid):
                await producer.send_and_wait(harness.topic, value, key=b"k%d" % (index % 7))
                if index % 60 == 30:  # poison between good events, on every partition
                    for message in bad.values():
                        await producer.send_and_wait(harness.topic, message, key=b"k%d" % (index % 7))
        finally:
            await producer.stop()

    asyncio.run(send())
    copies = len(range(30, 300, 60))

    def stored() -> tuple[int, int]:
        row = migrated.query("SELECT (SELECT count() FROM events), (SELECT count() FROM dead_letters)").result_rows
        return row[0][0], row[0][1]

    wait_for(lambda: stored() == (len(valid), copies * len(bad)), 120, "every message stored or dead-lettered")
    assert worker.poll() is None and len(harness.processes) == 1, "the worker never stopped"
    rules = dict(migrated.query("SELECT rule, count() FROM dead_letters GROUP BY rule").result_rows)
    assert rules == {"too_deep": 2 * copies, "too_large": copies, "unprintable_characters": copies}
    big = migrated.query("SELECT length(raw) FROM dead_letters WHERE rule = 'too_large' LIMIT 1").result_rows[0][0]
    assert big == len(bad["too_large"]), "the dead_letters table keeps the whole message"

    async def dead_letter_copies() -> list[tuple[int, dict[str, bytes]]]:
        consumer = AIOKafkaConsumer(
            f"{harness.topic}-dead-letter",
            bootstrap_servers=kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
            fetch_max_bytes=16 << 20,
            max_partition_fetch_bytes=16 << 20,
        )
        await consumer.start()
        copied: list[tuple[int, dict[str, bytes]]] = []
        try:
            for _ in range(40):  # a fetch may return only some partitions: read until all are there
                batches = await consumer.getmany(timeout_ms=500)
                copied += [(len(r.value or b""), dict(r.headers)) for records in batches.values() for r in records]
                if len(copied) >= copies * len(bad):
                    break
            return copied
        finally:
            await consumer.stop()

    copied = asyncio.run(dead_letter_copies())
    large = [(size, headers) for size, headers in copied if headers["labelpulse-rule"] == b"too_large"]
    assert len(large) == copies
    for size, headers in large:
        assert size < 1_000_000 < len(bad["too_large"])
        assert headers["labelpulse-truncated"].startswith(b"%d bytes cut to " % len(bad["too_large"]))
        assert headers["labelpulse-source"].startswith(harness.topic.encode())
