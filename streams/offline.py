"""The worker's path without Kafka: recorded messages straight into ClickHouse.

For loading a recording (benchmarks, dashboard tests, demos): the same processor, activity
tracker and sink as `labelpulse worker`, with in-memory state and positions made up as if
everything had arrived on partition 0 of `topic`, so the rows are exactly the worker's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

from clickhouse_connect.driver.client import Client

from streams.activity import ActivityTracker, encode_activity
from streams.processor import DictStateStore, Message, Processor
from streams.sink import ClickHouseSink


def load(
    values: Iterable[bytes],
    client_factory: Callable[[], Client],
    *,
    topic: str = "offline",
    batch_size: int = 10_000,
    idle_threshold_ms: int = 100_000,
    now: datetime | None = None,
    on_batch: Callable[[int], None] = lambda stored: None,
) -> int:
    """Process and store every message; returns how many were read. `on_batch` gets the running total."""
    processor = Processor(tasks=DictStateStore())
    tracker = ActivityTracker(annotators=DictStateStore(), idle_threshold_ms=idle_threshold_ms)
    sink = ClickHouseSink(client_factory, topic)
    activity_sink = ClickHouseSink(client_factory, f"{topic}.by-annotator")
    read = activity_offset = 0
    for chunk in _chunks(values, batch_size):
        messages = [Message(topic, 0, read + i, None, value) for i, value in enumerate(chunk)]
        batch = processor.process(messages, now=now or datetime.now(UTC))
        sink.write(batch)
        activity = []
        for annotator_id, entries in batch.activity.items():
            value = encode_activity(annotator_id, entries, batch.activity_floors, 1)
            activity.append(Message(activity_sink.topic, 0, activity_offset, annotator_id.encode(), value))
            activity_offset += 1
        activity_sink.write(tracker.process(activity))
        read += len(messages)
        on_batch(read)
    return read


def _chunks(values: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
