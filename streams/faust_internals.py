"""Everything the worker takes from Faust beyond its public API, in one place.

Faust (faust-streaming, pinned exactly in pyproject.toml) gives no public way to consume a fetch
as a batch, to send records (changelog, activity) in whole record batches, or to read a memory
table's dict; the worker needs all three for throughput. Each use of a private Faust, mode or
aiokafka name is in this module, and tests/streams/test_faust_internals.py fingerprints the code
it mirrors or relies on, so an upgrade that changes any of it fails that test before it can fail
in production.

The batching transport: its consumer hands whole fetches of chosen topics to a batch handler.

Faust delivers every message on its own: consumer -> conductor (a lock per message) -> channel
queue -> stream -> agent, each delivery wrapped in an `asyncio.wait` over two new tasks. That
costs ~100-150 µs of event-loop time per message and caps any agent at ~7-10k messages/s,
whatever the broker or the sink can do (bench/RESULTS.md). The worker's job is batch-shaped
anyway, so for its topics this consumer skips the per-message path: the records of each fetch
(aiokafka's own, not converted into Faust messages) go to the topic's batch handler in one call.

A handler works in two steps, so that the next fetch is processed while the previous one is
being written: `await handler(records)` processes the records and returns a coroutine that
makes them durable. That coroutine runs as a task, after the topic's previous batch is durable
(in order, none after a failure), while the consumer fetches and processes the next batch; the
records are acknowledged — and so become committable — only when it succeeds. Until then they
count as pending for Faust, so a rebalance or a shutdown waits for the batches in flight before
giving their partitions away; a processed batch is always written, never dropped, since its
changes to task state are made. If writing fails, the worker stops: nothing of the batch is
acknowledged, and a restarted worker reads it again.

Every other topic (table changelogs, Faust's own) still takes Faust's normal path, so group
membership, rebalancing, table recovery and offset commits are Faust's, unchanged.

Use the URL scheme `labelpulse-kafka://` for the broker and register handlers with
`register_batch_handler(topic, handler)` before the worker starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from functools import partial
from time import monotonic
from typing import Any, ClassVar, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

# Per partition, encoded (key, value) records to send; a None value is a tombstone.
RecordsByPartition = dict[int, list[tuple[bytes, bytes | None]]]
# Processes the records; returns the coroutine that makes them durable.
BatchHandler = Callable[[Sequence[Any]], Awaitable[Coroutine[Any, Any, None]]]
# Called when a partition's offsets went back without a seek of ours: raises if the topic was recreated.
RewindCheck = Callable[[TP], Awaitable[None]]
# The first offset of a partition not yet durable: reading never starts later than that.
FirstUnstored = Callable[[TP], Awaitable[int]]
SCHEME = "labelpulse-kafka"
log = logging.getLogger("labelpulse.transport")
# Batches of a topic processed but not yet durable (their inserts under way or queued, their
# changelog waiting for the batch before). More than one keeps the event loop busy while
# ClickHouse takes longer with a batch than the processing of the next (bench/RESULTS.md); each
# holds a fetch of records and rows in memory. 6 caught up ~10 % faster but doubled freshness p95 at a
# steady rate: more, smaller batches queue more inserts, each with the fixed cost of the materialized
# views (bench/RESULTS.md, 2026-12-01).
MAX_IN_FLIGHT = 3


class InFlight:
    """A batch on its way to being durable. Faust's `wait_empty` (before a rebalance gives
    partitions away, and at shutdown) waits while anything in `_unacked_messages` is not acked;
    one of these stands there for all the batch's records."""

    refcount = 1  # read by Faust's wait_empty log line

    def __init__(self, ranges: dict[TP, tuple[int, int]]) -> None:
        self.ranges = ranges  # per partition: first and last offset the batch covers
        self.acked = False

    def __repr__(self) -> str:
        return f"<batch {', '.join(f'{tp.topic}/{tp.partition}:{lo}-{hi}' for tp, (lo, hi) in self.ranges.items())}>"


class BatchingConsumer(faust_aiokafka.Consumer):
    # topic -> handler, per app (one worker process runs one app).
    handlers: ClassVar[dict[str, BatchHandler]] = {}
    rewind_checks: ClassVar[dict[str, RewindCheck]] = {}
    first_unstored: ClassVar[dict[str, FirstUnstored]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per topic, the tasks making batches durable, oldest first. Kept here, not in
        # _drain_messages, because Faust may restart that loop while batches are in flight.
        self.in_flight: defaultdict[str, deque[asyncio.Task[None]]] = defaultdict(deque)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Seek to the committed offsets (Faust), but never past what is durable: a committed offset
        beyond it belongs to an earlier incarnation of the topic (deleted and created again; some
        brokers keep the group's offsets of a deleted topic), and reading from there would skip events."""
        await super().perform_seek()
        # As sought, before any await: the fetch loop runs meanwhile, and moves _read_offset on.
        committed_offsets = {tp: self._read_offset[tp] for tp in self.assignment() if tp.topic in self.first_unstored}
        for tp, committed in committed_offsets.items():
            first_unstored = await self.first_unstored[tp.topic](tp)
            if committed is not None and committed > first_unstored:
                log.warning(
                    "%s/%d: the committed offset %d is past the last one stored (%d); reading from %d",
                    tp.topic, tp.partition, committed, first_unstored - 1, first_unstored,
                )  # fmt: skip
                await self.seek(tp, first_unstored)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by the worker tests
        # Mirrors faust.transport.consumer.Consumer._drain_messages and getmany, batching the chosen topics.
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)
                if self.should_stop:
                    break
                self._raise_failed_batch()
                records, active_partitions = await self._wait_next_records(1.0)
                if records is None or self.should_stop:
                    break
                if not self.flow_active:  # a rebalance began: Faust seeks back to the committed offsets
                    await self.perform_seek()
                    continue
                batches: dict[str, dict[TP, Sequence[Any]]] = {}
                for tp, tp_records in records.items():
                    if not (active_partitions is None or tp in active_partitions or tp in self._buffered_partitions):
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in self.handlers:
                        batches.setdefault(tp.topic, {})[tp] = tp_records
                    else:
                        await self._deliver_each(tp, tp_records)
                for topic, fetched in batches.items():
                    await self._deliver_batch(topic, fetched)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver_batch(self, topic: str, fetched: dict[TP, Sequence[Any]]) -> None:
        """One fetch of a topic (all its partitions) to its handler: one batch, one insert."""
        ranges: dict[TP, tuple[int, int]] = {}
        records: list[Any] = []
        for tp, tp_records in fetched.items():
            previous = self._read_offset[tp]
            if previous is not None and tp_records[0].offset < previous:
                # Fetched before a seek — or the topic started again at 0 (recreated), which the check raises.
                if topic in self.rewind_checks:
                    await self.rewind_checks[topic](tp)
                tp_records = [record for record in tp_records if record.offset >= previous]
                if not tp_records:
                    continue
            first, last = tp_records[0].offset, tp_records[-1].offset
            if previous is not None and first - previous > 1:
                first = previous + 1  # offsets without a record (compaction, transaction markers) are done too
            self._read_offset[tp] = last
            ranges[tp] = (first, last)
            records.extend(tp_records)
        if not records:
            return
        batch = InFlight(ranges)
        self._unacked_messages.add(batch)  # type: ignore[arg-type]  # pending until acknowledged
        try:
            make_durable = await self.handlers[topic](records)
        except BaseException:  # nothing processed: Faust must not wait for these records
            self._unacked_messages.discard(batch)  # type: ignore[arg-type]
            raise
        in_flight = self.in_flight[topic]
        task = asyncio.get_running_loop().create_task(in_order(in_flight[-1] if in_flight else None, make_durable))
        task.add_done_callback(partial(self._batch_done, batch))
        in_flight.append(task)
        while len(in_flight) > MAX_IN_FLIGHT or (in_flight and in_flight[0].done()):
            # Shielded: when Faust stops this loop (a rebalance, shutdown), the batches still
            # finish, and Faust's wait_empty waits for them; a processed batch is never dropped,
            # as its changes to task state are already made.
            await asyncio.shield(in_flight[0])  # raises the error of a batch that failed
            in_flight.popleft()

    def _batch_done(self, batch: InFlight, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._ack_batch(batch)
        else:  # not durable: left unacknowledged (the fetch loop raises the error, stopping the worker)
            self._unacked_messages.discard(batch)  # type: ignore[arg-type]

    def _raise_failed_batch(self) -> None:
        """A batch that could not be made durable stops the worker (its records stay unacknowledged)."""
        for tasks in self.in_flight.values():
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    def _ack_batch(self, batch: InFlight) -> None:
        """Faust's `ack` for every offset of the batch at once."""
        with ack_lock:
            batch.acked = True
            self._unacked_messages.discard(batch)  # type: ignore[arg-type]
            now = monotonic()
            for tp, (first, last) in batch.ranges.items():
                if not self.app.topics.acks_enabled_for(tp.topic):
                    continue
                committed = self._committed_offset[tp]
                new = set(range(max(first, committed or 0), last + 1)) - self._acked_index[tp]
                self._acked_index[tp].update(new)
                self._acked[tp].extend(sorted(new))
                self._n_acked += len(new)
                if self.app.monitor is not None:  # Faust's stall diagnostics look here for progress
                    self.app.monitor.stream_inbound_time[tp] = now
            notify(self._waiting_for_ack)

    async def _deliver_each(self, tp: TP, records: Sequence[Any]) -> None:
        """Faust's own path, message by message (changelogs, Faust's internal topics)."""
        read_offset = self._read_offset
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        for record in records:
            offset = record.offset
            previous = read_offset[tp]
            if previous is not None and offset < previous:
                continue  # already delivered before a seek
            if previous and offset - previous > 1 and acks_enabled:
                await self._add_gap(tp, previous + 1, offset)
            read_offset[tp] = offset
            await self.callback(self._to_message(tp, record))


async def in_order(earlier: asyncio.Task[None] | None, make_durable: Coroutine[Any, Any, None]) -> None:
    """Batches of a topic become durable one after the other, in order; none after a failed one."""
    if earlier is not None:
        try:
            await asyncio.shield(earlier)
        except BaseException:
            make_durable.close()
            raise
    await make_durable


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its aiokafka consumer asking the broker to wait `fetch_max_wait_ms` at most
    for data, where Faust fixes 1.5 s. Kafka answers a fetch as soon as it has data, whatever the wait; the
    embedded broker (Tansu) sleeps half the wait left even when it has some, so at 1.5 s each fetch took
    ~0.75 s and the newest events reached ClickHouse 1.7 s late at p95 (bench/RESULTS.md)."""

    fetch_max_wait_ms: ClassVar[int] = 1500

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read when it starts, by the Fetcher it makes
        return consumer


class Transport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def set_fetch_max_wait(milliseconds: int) -> None:
    """How long the broker may hold a fetch while it has no data (before the worker starts)."""
    ConsumerThread.fetch_max_wait_ms = milliseconds


def register_batch_handler(
    topic: str, handler: BatchHandler, *, rewind_check: RewindCheck, first_unstored: FirstUnstored
) -> None:
    BatchingConsumer.handlers[topic] = handler
    BatchingConsumer.rewind_checks[topic] = rewind_check
    BatchingConsumer.first_unstored[topic] = first_unstored


def aiokafka_producer(app: faust.App) -> AIOKafkaProducer:
    """aiokafka's producer under the app's (started by Faust): for its batch API, and its client
    for requests Faust does not make."""
    return cast(Any, app.producer)._ensure_producer()


def table_dict(table: faust.Table) -> dict[str, Any]:
    """The plain dict behind a table with a memory store. The table's own Mapping methods are
    Python-level (a miss raises and catches KeyError): a tenth of the processor's time on task state."""
    return cast(Any, table).data.data


async def send_records(producer: AIOKafkaProducer, topic: str, records: RecordsByPartition) -> list[Awaitable[Any]]:
    """Records per partition, in as few Kafka record batches as fit (aiokafka's batch API); returns
    futures, done when Kafka has them. A batch changes thousands of keys, and Faust's send path
    costs tens of µs of event-loop time per message, and yields to the event loop at each: between
    two messages the next fetch may be processed, so a batch's messages sent one by one took seconds
    to be sent (bench/RESULTS.md, 2026-12-01 (morning))."""
    sent: list[Awaitable[Any]] = []
    for partition, pairs in records.items():
        batch = producer.create_batch()
        for key, value in pairs:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send, start the next
                sent.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # the first record always fits
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent


async def send_keyed(
    producer: AIOKafkaProducer, topic: str, messages: Iterable[tuple[bytes, bytes]]
) -> list[Awaitable[Any]]:
    """Keyed messages as `send_records` sends them, each to the partition the producer's partitioner
    gives its key: the one `topic.send` would have chosen, so a key keeps its partition."""
    await producer.client._wait_on_metadata(topic)
    records: RecordsByPartition = defaultdict(list)
    for key, value in messages:
        records[producer._partition(topic, None, key, value, key, value)].append((key, value))
    return await send_records(producer, topic, records)
