"""The worker's batch steps: what happens to one fetch of the events (or activity) topic.

Per fetch of the events topic (`process_events`, then the `make_events_durable` it returns, which
the transport runs while the next fetch is processed):
  processor (pure)  -> rows for `events`, `dead_letters` and the derived tables; task state
  sink (ClickHouse) -> durable, replay-safe (streams.sink)
  changelog         -> the batch's task state, once its rows are stored
  dead-letter topic -> refused messages, as sent, with the reason in headers
  activity topic    -> annotation events again, keyed by annotator (streams.activity)
and only then are the batch's offsets acknowledged, so no offset is committed whose event is not
durable in ClickHouse. The backfill topic (`labelpulse import`) takes the same steps as the events
topic, in a lane of its own (`process_backfill`): its own processor, watermarks and sink, no age
limit, and a check of each batch's event ids against everything stored, so history imported
twice, or already delivered live, is stored once. The activity topic goes the same way
(`process_activity`): per-annotator state -> active time rows -> ClickHouse -> changelog -> acknowledge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from aiokafka.errors import KafkaError
from faust.types import TP

from kafka_admin.dead_letters import dead_letter_copy
from schema.client import connect
from schema.events import ContractLimits, EventError
from streams import telemetry as metrics
from streams.activity import ActivityTracker, encode_activity
from streams.changelog import Changes, TableStateStore
from streams.crash_journal import CrashJournal, process_noting
from streams.faust_internals import aiokafka_producer, send_keyed
from streams.incarnations import Incarnations, topic_ids
from streams.privacy import Pseudonymizer
from streams.processor import ProcessedBatch, Processor, RecentIds, Record
from streams.settings import WorkerSettings
from streams.sink import ClickHouseSink, PendingWrite

if TYPE_CHECKING:
    from streams.app import WorkerApp

log = logging.getLogger("labelpulse.worker")
# Room a dead letter's key, headers and record framing may take beside its value, in bytes.
DEAD_LETTER_OVERHEAD = 16 << 10
BACKFILL = "backfill"  # the backfill topic's lane (streams.processor): watermarks and activity of its own


@dataclass
class Lane:
    """A topic of events, read with its own processor (watermarks, releases) and sink (offsets stored)."""

    topic: str
    processor: Processor
    sink: ClickHouseSink
    # Per partition seen since the last (re)start or rebalance: the last offset stored before it,
    # so re-read events are known as replays (they rebuild state; the sink drops their rows).
    replayed_through: dict[int, int] = field(default_factory=dict)


class _EventKey(msgspec.Struct):
    event_id: str = ""
    occurred_at: str = ""


_EVENT_KEY = msgspec.json.Decoder(_EventKey)


class PublishError(RuntimeError):
    """Kafka did not take what a batch produced: the batch must not be acknowledged."""


class Pipeline:
    """The batch steps of one worker, with what they share: processor, sinks, state stores."""

    def __init__(
        self,
        app: WorkerApp,
        settings: WorkerSettings,
        *,
        tasks: TableStateStore,
        annotators: TableStateStore,
        dead_letter_topic: Any,
    ) -> None:
        self.app = app
        self.settings = settings
        self.tasks = tasks
        self.annotators = annotators
        self.dead_letter_topic = dead_letter_topic
        # Both lanes share task state and recent ids: a task's events may come by either, and an
        # event delivered live and then imported (or the other way round) is the same event.
        self._recent: dict[int, RecentIds] = {}
        self.live = self._lane(settings.kafka.events_topic, "", settings.limits)
        self.backfill = self._lane(settings.kafka.backfill_topic, BACKFILL, settings.limits.for_history())
        self.tracker = ActivityTracker(annotators=annotators, idle_threshold_ms=settings.idle_threshold_s * 1000)
        self.activity_sink = ClickHouseSink(lambda: connect(settings.clickhouse), settings.kafka.activity_topic)
        self.journal = CrashJournal(settings.state_dir)
        self.throughput = Throughput()
        self.step = Step()
        # Checked before every batch: a topic that started again at offset 0 must not pass for a replay.
        self.incarnations = Incarnations(lambda topics: topic_ids(aiokafka_producer(app).client, topics))

    def _lane(self, topic: str, name: str, limits: ContractLimits) -> Lane:
        settings = self.settings
        processor = Processor(
            tasks=self.tasks,
            limits=limits,
            dedup_window=settings.dedup_window,
            pseudonymizer=Pseudonymizer(settings.pseudonymize_key) if settings.pseudonymize_key else None,
            lateness_bound_ms=settings.lateness_bound_s * 1000,
            open_task_retention_ms=settings.open_task_retention_s * 1000,
            lane=name,
            recent=self._recent,
        )
        return Lane(topic, processor, ClickHouseSink(lambda: connect(settings.clickhouse), topic))

    # -- the events topic ------------------------------------------------------------------------

    async def process_events(self, records: Sequence[Record]) -> Coroutine[Any, Any, None]:
        """One fetch of the events topic: processed now; returns what makes it durable, which
        the transport runs while it processes the next fetch, and acknowledges when it is done."""
        return await self._process(self.live, records)

    async def process_backfill(self, records: Sequence[Record]) -> Coroutine[Any, Any, None]:
        """One fetch of the backfill topic. Its ids are first looked up among all stored events: history
        may be imported long after the same events were stored (live, or by an earlier import), beyond
        what the recent ids remember. Repeats within the batch, or of batches not yet stored, are the
        recent ids' to find (shared with the live lane)."""
        return await self._process(self.backfill, records, drop_stored=True)

    async def _process(
        self, lane: Lane, records: Sequence[Record], drop_stored: bool = False
    ) -> Coroutine[Any, Any, None]:
        self.step.enter(f"checking the incarnation of {lane.topic}")
        lane.sink.topic_id = await self.incarnations.check(lane.topic)
        last_offsets = {record.partition: record.offset for record in records}  # offset order per partition
        for partition in last_offsets.keys() - lane.replayed_through:  # after a (re)start or a rebalance
            self.step.enter("reading recent event ids and stored offsets from ClickHouse")
            lane.replayed_through[partition] = await lane.sink.run("events", self._seed, lane, partition)
        messages, repeats = len(records), 0
        if drop_stored:
            self.step.enter("looking up the batch's event ids in ClickHouse")
            stored = await lane.sink.run("events", self._stored_elsewhere, lane, records)
            fresh = [record for record in records if (record.partition, record.offset) not in stored]
            repeats, records = len(records) - len(fresh), fresh
        batch = process_noting(
            lane.processor,
            self.journal,
            records,
            now=datetime.now(UTC),
            replayed_through=lane.replayed_through,
            topic_id=lane.sink.topic_id,
        )
        batch.duplicates += repeats
        # The inserts start now, each table after the batches before: they need not wait for
        # the previous batch's changelog, only its rows (see make_events_durable).
        changes = self.tasks.take_changes()
        writing = lane.sink.submit(batch)
        return self.make_events_durable(batch, writing, messages, last_offsets, changes, lane)

    def _seed(self, lane: Lane, partition: int) -> int:
        """Duplicate detection resumes with the partition's recent ids; returns its last stored offset."""
        recent = lane.sink.recent_event_ids(partition, self.settings.dedup_window)
        lane.processor.recent_ids(partition).remember(recent)
        return lane.sink.stored_through("events", partition)

    def _stored_elsewhere(self, lane: Lane, records: Sequence[Record]) -> set[tuple[int, int]]:
        """The (partition, offset) of the records, not replays, whose event ids are stored already (from any topic,
        however long ago): repeats, dropped before processing."""
        keys: dict[str, list[tuple[int, int]]] = {}
        times: list[datetime] = []
        for record in records:
            if record.offset <= lane.replayed_through.get(record.partition, -1):
                continue  # a replay: it rebuilds task state, and the sink drops its rows
            try:
                key = _EVENT_KEY.decode(record.value or b"")
                occurred = datetime.fromisoformat(key.occurred_at)
            except (msgspec.DecodeError, ValueError):
                continue  # not an event: the processor refuses it, with the reason
            if occurred.tzinfo is None:
                continue  # refused too (the contract wants a time zone)
            times.append(occurred)
            keys.setdefault(key.event_id, []).append((record.partition, record.offset))
        if not keys:
            return set()
        # A second either side: a stored time is cut to milliseconds.
        since, until = min(times) - timedelta(seconds=1), max(times) + timedelta(seconds=1)
        return {place for event_id in lane.sink.stored_event_ids(list(keys), since, until) for place in keys[event_id]}

    async def make_events_durable(
        self,
        batch: ProcessedBatch,
        writing: PendingWrite,
        messages: int,
        last_offsets: dict[int, int],
        changes: Changes,
        lane: Lane | None = None,
    ) -> None:
        lane = lane or self.live
        self.step.enter("inserting into ClickHouse")
        result = await writing.done()
        record_batch_metrics(batch, messages, result.seconds, live=lane is self.live)
        if result.replayed_rows_skipped:
            metrics.REPLAYED_ROWS.inc(result.replayed_rows_skipped)
            log.info(
                "%d rows of messages read again (a replay) were stored already: kept once", result.replayed_rows_skipped
            )
        # Only now is the batch's task state published: recovery must never find state from
        # events whose rows are not stored (a replay would not derive those rows again).
        published = await self.tasks.publish(changes)
        self.step.enter("sending dead letters")
        for message, error in batch.refused:
            value, headers = dead_letter(message, error, self.app.conf.producer_max_request_size)
            published.append(await self.dead_letter_topic.send(key=message.key, value=value, headers=headers))
        self.step.enter("sending activity")
        activity = [
            (
                annotator_id.encode(),
                encode_activity(
                    annotator_id, entries, batch.activity_floors, self.app.events_partitions, lane.processor.lane
                ),
            )
            for annotator_id, entries in batch.activity.items()
        ]
        published += await send_keyed(aiokafka_producer(self.app), self.settings.kafka.activity_topic, activity)
        # Changelog, dead letters and activity are in Kafka before the batch is acknowledged: a
        # rebalance's recovery reads the changelog up to its end, and must find this batch's state.
        await self.confirm(published, "the batch's changelog, dead letters and activity")
        await self.confirm(await self.tasks.end_markers(), "the task changelog's end markers")
        for partition, last in last_offsets.items():  # how far behind the end of each partition this batch left us
            tp = TP(lane.topic, partition)
            metrics.LAG.labels(tp.topic, str(partition)).set(max(self.app.consumer.highwater(tp) - last - 1, 0))
        self.throughput.add(messages, result.events_written, result.dead_letters_written, batch.duplicates)
        self.throughput.too_late += sum(batch.too_late.values())
        metrics.TASK_STATES.set(len(self.tasks.table.data))
        log.debug("batch of %d messages stored in %.0f ms", messages, result.seconds * 1000)

    async def first_unstored_event(self, tp: TP) -> int:
        sink = self.backfill.sink if tp.topic == self.backfill.topic else self.live.sink
        sink.topic_id = await self.incarnations.check(tp.topic)
        # Every message leaves an event or a dead letter (or was a duplicate: re-reading one is harmless).
        tables = ("events", "dead_letters")
        return max([await sink.run(table, sink.stored_through, table, tp.partition) for table in tables]) + 1

    # -- the activity topic ----------------------------------------------------------------------

    async def process_activity(self, records: Sequence[Record]) -> Coroutine[Any, Any, None]:
        """One fetch of the activity topic: processed now; returns what makes it durable."""
        self.step.enter("checking the activity topic's incarnation")
        self.activity_sink.topic_id = await self.incarnations.check(self.settings.kafka.activity_topic)
        batch = self.tracker.process(records, topic_id=self.activity_sink.topic_id)
        return self.make_activity_durable(self.activity_sink.submit(batch), self.annotators.take_changes())

    async def make_activity_durable(self, writing: PendingWrite, changes: Changes) -> None:
        self.step.enter("inserting active time into ClickHouse")
        metrics.REPLAYED_ROWS.inc((await writing.done()).replayed_rows_skipped)
        await self.confirm(await self.annotators.publish(changes), "the annotators' changelog")
        await self.confirm(await self.annotators.end_markers(), "the annotator changelog's end markers")

    async def first_unstored_activity(self, tp: TP) -> int:
        self.activity_sink.topic_id = await self.incarnations.check(tp.topic)
        stored = await self.activity_sink.run(
            "active_time", self.activity_sink.stored_through, "active_time", tp.partition
        )
        return stored + 1

    # -- shared ----------------------------------------------------------------------------------

    async def confirm(self, published: list[Awaitable[Any]], what: str) -> None:
        """Wait until Kafka has every message sent for a batch, or fail the worker.

        Faust's producer.flush() alone is not enough: its buffer gives up after 0.1 s, and a
        message the broker never takes would wait there for the producer's request timeout.
        Failing instead leaves the batch unacknowledged: a restarted worker replays it, and
        the sink's deduplication makes the replay harmless.
        """
        self.step.enter(f"waiting for Kafka to take {what}")
        try:
            await asyncio.wait_for(self._all_sent(published), self.settings.publish_timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise PublishError(
                f"Kafka did not take {what} within {self.settings.publish_timeout_s:.0f}s ({exc!r}); stopping so the "
                "batch is replayed by a restarted worker (LABELPULSE_PUBLISH_TIMEOUT_S)"
            ) from exc
        self.step.leave()

    async def _all_sent(self, published: list[Awaitable[Any]]) -> None:
        await self.app.producer.flush()
        await asyncio.gather(*published)

    async def check_incarnation(self, tp: TP) -> None:
        await self.incarnations.check(tp.topic)

    async def check_incarnations(self) -> None:
        """A recreated topic whose consumer waits at its old offsets would deliver no batch to check."""
        for topic in list(self.incarnations.ids):
            await self.incarnations.check(topic)

    def forget_partitions(self) -> None:
        """After a rebalance: another worker may have written to partitions we get now; re-read what is stored."""
        for lane in (self.live, self.backfill):
            lane.sink.forget_partitions()
            lane.processor.forget_partitions()
            lane.replayed_through.clear()
        self.activity_sink.forget_partitions()

    def report(self) -> None:
        """The periodic log lines: throughput, events left out of derived metrics, a batch that hangs."""
        line = self.throughput.report()
        if line:
            log.info(line)
        tracker = self.tracker
        if tracker.too_late:
            log.warning(
                "%d annotation events fell before all that was kept of their annotator's history (%d events at most): "
                "left out of active time",
                tracker.too_late,
                tracker.max_entries,
            )
            metrics.ACTIVITY_DROPPED.inc(tracker.too_late)
            tracker.too_late = 0
        late = self.throughput.take_too_late()
        if late:
            log.warning(
                "%d events arrived more than %ds behind their partition's newest event: stored and counted in "
                "throughput, left out of derived metrics (LABELPULSE_LATENESS_BOUND_S)",
                late,
                self.settings.lateness_bound_s,
            )
        stuck = self.step.stuck()
        if stuck:
            log.warning(stuck)


def dead_letter(message: Record, error: EventError, max_request_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of a refused message's copy in the dead-letter topic. A message as large
    as the events topic took may be larger than our producer may send: the copy is then cut, and its
    headers say so and where the original is (the events topic, and the dead_letters table)."""
    source = f"{message.topic}/{message.partition}/{message.offset}"
    room = max_request_bytes - DEAD_LETTER_OVERHEAD - len(message.key or b"")
    return dead_letter_copy(
        message.value or b"", rule=error.rule, reason=error.message, source=source, room=room, whole_at=source
    )


def record_batch_metrics(batch: ProcessedBatch, messages: int, insert_seconds: float, *, live: bool = True) -> None:
    """`live`: False for history (the backfill topic), which says nothing of how fresh the live data is."""
    for event_type, count in batch.events_by_type.items():
        metrics.EVENTS.labels(event_type).inc(count)
    for source_system, count in batch.events_by_source.items():
        metrics.EVENTS_BY_SOURCE.labels(metrics.source_label(source_system)).inc(count)
    for rule, count in batch.dead_letters_by_rule.items():
        metrics.DEAD_LETTERS.labels(rule).inc(count)
    metrics.DUPLICATES.inc(batch.duplicates)
    for event_type, count in batch.too_late.items():
        metrics.TOO_LATE.labels(event_type).inc(count)
    metrics.TASK_STATES_RELEASED.inc(batch.released)
    metrics.BATCH_SIZE.observe(messages)
    metrics.INSERT_SECONDS.observe(insert_seconds)
    now = datetime.now(UTC)
    metrics.LAST_BATCH.set(now.timestamp())
    if batch.newest_occurred_ms and live:
        metrics.FRESHNESS.set(max(now.timestamp() - batch.newest_occurred_ms / 1000, 0.0))


class Step:
    """What the batch handlers are waiting on, so a batch that hangs is named in the log."""

    STUCK_AFTER_S = 30.0

    def __init__(self) -> None:
        self.leave()

    def enter(self, what: str) -> None:
        self.what, self.since = what, time.monotonic()

    def leave(self) -> None:
        self.what, self.since = "", 0.0

    def stuck(self) -> str:
        waited = time.monotonic() - self.since
        if not self.what or waited < self.STUCK_AFTER_S:
            return ""
        return f"a batch has been {self.what} for {waited:.0f}s; nothing is consumed meanwhile"


class Throughput:
    """Counts for a periodic log line (rates over the last interval; /metrics has the running totals)."""

    def __init__(self) -> None:
        self.too_late = 0  # events too late for derived metrics since the last warning about them
        self.reset()

    def reset(self) -> None:
        self.messages = self.events = self.dead_letters = self.duplicates = 0
        self.since = time.monotonic()

    def take_too_late(self) -> int:
        late, self.too_late = self.too_late, 0
        return late

    def add(self, messages: int, events: int, dead_letters: int, duplicates: int) -> None:
        self.messages += messages
        self.events += events
        self.dead_letters += dead_letters
        self.duplicates += duplicates

    def report(self) -> str:
        elapsed = time.monotonic() - self.since
        if not self.messages:
            return ""
        line = (
            f"{self.messages / elapsed:,.0f} messages/s over {elapsed:.0f}s: {self.events} events stored, "
            f"{self.dead_letters} dead letters, {self.duplicates} duplicates dropped"
        )
        self.reset()
        return line
