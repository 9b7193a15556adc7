"""The Faust app: events topic -> validate, dedup, enrich -> ClickHouse, refused ones -> dead letters.

Run it with `labelpulse worker` or `faust -A streams.app worker -l info`. Settings come from
LABELPULSE_* variables (see streams.settings); workers sharing LABELPULSE_CONSUMER_GROUP
split the topic's partitions between them.

Flow per batch (one fetch from Kafka, at most LABELPULSE_BATCH_MAX_EVENTS events, handed over
whole by streams.transport instead of one message at a time):
  processor (pure)  -> rows for `events` and `dead_letters`
  sink (ClickHouse) -> durable, replay-safe (see streams.sink)
  dead-letter topic -> refused messages, as sent, with the reason in headers
  activity topic    -> annotation events again, keyed by annotator (streams.activity)
and only then are the batch's offsets acknowledged, so Faust never commits an offset whose
event is not yet durable in ClickHouse. The activity topic is consumed by the same workers
the same way: per-annotator state -> active time rows -> ClickHouse -> acknowledge.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
import msgspec
from aiokafka.errors import KafkaError
from faust.types import TP

from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import create_topics
from schema.client import connect
from schema.events import EventError
from streams import metrics
from streams.activity import ActivityTracker, encode_activity
from streams.crash_journal import CrashJournal, process_noting
from streams.incarnations import Incarnations, topic_ids
from streams.privacy import Pseudonymizer
from streams.processor import Batch, Processor, Record
from streams.settings import WorkerSettings, faust_credentials
from streams.sink import ClickHouseSink, PendingWrite
from streams.transport import SCHEME, register_batch_handler

log = logging.getLogger("labelpulse.worker")
# Net allocations between young-generation collections (Python's default: 700). The worker keeps
# ~17 tracked objects an event (records, events, rows, state) until its batch is durable: at
# 100,000 a young collection ran every ~6,000 events and rescanned the batches in flight, ~18 ms
# a pass, ~10 % of the worker's time (bench/RESULTS.md).
GC_THRESHOLD = 1_000_000
# Task (or annotator) state changed by a batch, as it was then: key -> (partition, state; None if deleted).
Changes = dict[str, tuple[int, dict[str, Any] | None]]


def create_app(settings: WorkerSettings) -> faust.App:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = _WorkerApp(
        settings.kafka,
        settings.consumer_group,
        broker=[f"{SCHEME}://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings.kafka.security),
        store="memory://",  # table state is rebuilt from its changelog topic on start
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        datadir=str(settings.state_dir),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        # One fetch is one batch: at most this many events, gathered for at most ~fetch wait.
        broker_max_poll_records=settings.batch_max_events,
        # Per partition and fetch (Faust's default is 1 MB): the next fetch is then under way while
        # a batch is processed, and the event loop does not wait on the broker between batches.
        consumer_max_fetch_size=8 << 20,
        # A message Kafka does not take fails after this, instead of Faust's default 20 minutes.
        producer_request_timeout=settings.publish_timeout_s,
    )
    partitions = settings.kafka.partitions  # topics and tables alike: a key's state lives with its events

    def topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, partitions=partitions, internal=True)

    events_topic = topic(settings.kafka.events_topic)
    dead_letter_topic = topic(settings.kafka.dead_letter_topic)
    activity_topic = topic(settings.kafka.activity_topic)
    # Per-task state (gold answer, first label of each annotator), keyed by task_id like the events.
    # Values are plain JSON objects (no value_type): Faust decodes them back to dicts on recovery.
    task_table = app.Table("tasks", default=None, partitions=partitions, key_type=str)
    tasks = TableStateStore(task_table)
    processor = Processor(
        tasks=tasks,
        limits=settings.limits,
        dedup_window=settings.dedup_window,
        pseudonymizer=Pseudonymizer(settings.pseudonymize_key) if settings.pseudonymize_key else None,
        lateness_bound_ms=settings.lateness_bound_s * 1000,
        open_task_retention_ms=settings.open_task_retention_s * 1000,
    )
    sink = ClickHouseSink(lambda: connect(settings.clickhouse), settings.kafka.events_topic)
    # Per-annotator state (recent annotation events), keyed by annotator_id like the activity topic.
    annotators = TableStateStore(app.Table("annotators", default=None, partitions=partitions, key_type=str))
    tracker = ActivityTracker(
        annotators=annotators,
        idle_threshold_ms=settings.idle_threshold_s * 1000,
    )
    activity_sink = ClickHouseSink(lambda: connect(settings.clickhouse), settings.kafka.activity_topic)
    # Per partition seen since the last (re)start or rebalance: the last offset stored before it,
    # so re-read events are known as replays (they rebuild state; the sink drops their rows).
    replayed_through: dict[int, int] = {}
    journal = CrashJournal(settings.state_dir)
    throughput = _Throughput()
    step = _Step()
    # Checked before every batch: a topic that started again at offset 0 must not pass for a replay.
    incarnations = Incarnations(lambda topics: topic_ids(_kafka_client(app), topics))

    async def store_batch(records: Sequence[Record]) -> Coroutine[Any, Any, None]:
        """One fetch of the events topic: processed now; returns what makes it durable, which
        the transport runs while it processes the next fetch, and acknowledges when it is done."""
        step.enter("checking the events topic's incarnation")
        sink.topic_id = await incarnations.check(settings.kafka.events_topic)
        last_offsets = {record.partition: record.offset for record in records}  # offset order per partition
        for partition in last_offsets.keys() - replayed_through:  # after a (re)start or a rebalance
            step.enter("reading recent event ids and stored offsets from ClickHouse")
            replayed_through[partition] = await sink.run("events", seed, partition)
        now = datetime.now(UTC)
        batch = process_noting(
            processor, journal, records, now=now, replayed_through=replayed_through, topic_id=sink.topic_id
        )
        # The inserts start now, each table after the batches before: they need not wait for
        # the previous batch's changelog, only its rows (see make_durable).
        return make_durable(batch, sink.submit(batch), len(records), last_offsets, tasks.take_changes())

    def seed(partition: int) -> int:
        """Duplicate detection resumes with the partition's recent ids; returns its last stored offset."""
        processor.recent_ids(partition).remember(sink.recent_event_ids(partition, settings.dedup_window))
        return sink.stored_through("events", partition)

    async def make_durable(
        batch: Batch, writing: PendingWrite, messages: int, last_offsets: dict[int, int], changes: Changes
    ) -> None:
        step.enter("inserting into ClickHouse")
        result = await writing.done()
        record_batch_metrics(batch, messages, result.seconds)
        if result.replayed_rows_skipped:
            metrics.REPLAYED_ROWS.inc(result.replayed_rows_skipped)
            log.info(
                "%d rows of messages read again (a replay) were stored already: kept once", result.replayed_rows_skipped
            )
        # Only now is the batch's task state published: recovery must never find state from
        # events whose rows are not stored (a replay would not derive those rows again).
        published = await tasks.publish(changes)
        step.enter("sending dead letters")
        for message, error in batch.refused:
            value, headers = dead_letter(message, error, app.conf.producer_max_request_size)
            published.append(await dead_letter_topic.send(key=message.key, value=value, headers=headers))
        step.enter("sending activity")
        for annotator_id, entries in batch.activity.items():
            value = encode_activity(annotator_id, entries, batch.activity_floors, app.events_partitions)
            published.append(await activity_topic.send(key=annotator_id.encode(), value=value))
        # Changelog, dead letters and activity are in Kafka before the batch is acknowledged: a
        # rebalance's recovery reads the changelog up to its end, and must find this batch's state.
        await confirm(published, "the batch's changelog, dead letters and activity")
        await confirm(await tasks.end_markers(), "the task changelog's end markers")
        for partition, last in last_offsets.items():  # how far behind the end of each partition this batch left us
            tp = TP(settings.kafka.events_topic, partition)
            metrics.LAG.labels(tp.topic, str(partition)).set(max(app.consumer.highwater(tp) - last - 1, 0))
        throughput.add(messages, result.events_written, result.dead_letters_written, batch.duplicates)
        throughput.too_late += sum(batch.too_late.values())
        metrics.TASK_STATES.set(len(task_table.data))
        log.debug("batch of %d messages stored in %.0f ms", messages, result.seconds * 1000)

    async def store_activity(records: Sequence[Record]) -> Coroutine[Any, Any, None]:
        """One fetch of the activity topic: processed now; returns what makes it durable."""
        step.enter("checking the activity topic's incarnation")
        activity_sink.topic_id = await incarnations.check(settings.kafka.activity_topic)
        batch = tracker.process(records, topic_id=activity_sink.topic_id)
        return make_activity_durable(activity_sink.submit(batch), annotators.take_changes())

    async def make_activity_durable(writing: PendingWrite, changes: Changes) -> None:
        step.enter("inserting active time into ClickHouse")
        metrics.REPLAYED_ROWS.inc((await writing.done()).replayed_rows_skipped)
        await confirm(await annotators.publish(changes), "the annotators' changelog")
        await confirm(await annotators.end_markers(), "the annotator changelog's end markers")

    async def confirm(published: list[Awaitable[Any]], what: str) -> None:
        """Wait until Kafka has every message sent for a batch, or fail the worker.

        Faust's producer.flush() alone is not enough: its buffer gives up after 0.1 s, and a
        message the broker never takes would wait there for the producer's request timeout.
        Failing instead leaves the batch unacknowledged: a restarted worker replays it, and
        the sink's deduplication makes the replay harmless.
        """
        step.enter(f"waiting for Kafka to take {what}")
        try:
            await asyncio.wait_for(_all_sent(app, published), settings.publish_timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise PublishError(
                f"Kafka did not take {what} within {settings.publish_timeout_s:.0f}s ({exc!r}); stopping so the "
                "batch is replayed by a restarted worker (LABELPULSE_PUBLISH_TIMEOUT_S)"
            ) from exc
        step.leave()

    async def check_incarnation(tp: TP) -> None:
        await incarnations.check(tp.topic)

    async def first_unstored_event(tp: TP) -> int:
        sink.topic_id = await incarnations.check(tp.topic)
        # Every message leaves an event or a dead letter (or was a duplicate: re-reading one is harmless).
        tables = ("events", "dead_letters")
        return max([await sink.run(table, sink.stored_through, table, tp.partition) for table in tables]) + 1

    async def first_unstored_activity(tp: TP) -> int:
        activity_sink.topic_id = await incarnations.check(tp.topic)
        return await activity_sink.run("active_time", activity_sink.stored_through, "active_time", tp.partition) + 1

    register_batch_handler(
        settings.kafka.events_topic, store_batch, rewind_check=check_incarnation, first_unstored=first_unstored_event
    )
    register_batch_handler(
        settings.kafka.activity_topic,
        store_activity,
        rewind_check=check_incarnation,
        first_unstored=first_unstored_activity,
    )

    # The agents declare the subscriptions; messages arrive in whole fetches at the handlers above.
    @app.agent(events_topic)
    async def ingest(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.agent(activity_topic)
    async def activity(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _forget_partitions(sender: Any, **_: Any) -> None:
        # Another worker may have written to partitions we get now: re-read what is stored.
        sink.forget_partitions()
        activity_sink.forget_partitions()
        processor.forget_partitions()
        replayed_through.clear()

    @app.timer(interval=5.0)
    async def _watch_incarnations() -> None:
        # A recreated topic whose consumer waits at its old offsets would deliver no batch to check.
        for topic in list(incarnations.ids):
            await incarnations.check(topic)

    @app.timer(interval=10.0)
    async def _report() -> None:
        line = throughput.report()
        if line:
            log.info(line)
        if tracker.too_late:
            log.warning(
                "%d annotation events fell before all that was kept of their annotator's history (%d events at most): "
                "left out of active time",
                tracker.too_late,
                tracker.max_entries,
            )
            metrics.ACTIVITY_DROPPED.inc(tracker.too_late)
            tracker.too_late = 0
        late = throughput.take_too_late()
        if late:
            log.warning(
                "%d events arrived more than %ds behind their partition's newest event: stored and counted in "
                "throughput, left out of derived metrics (LABELPULSE_LATENESS_BOUND_S)",
                late,
                settings.lateness_bound_s,
            )
        stuck = step.stuck()
        if stuck:
            log.warning(stuck)

    return app


def _kafka_client(app: faust.App) -> Any:
    """aiokafka's client of the app's producer (started by Faust), for requests Faust does not make."""
    return cast(Any, app.producer)._ensure_producer().client


class PublishError(RuntimeError):
    """Kafka did not take what a batch produced: the batch must not be acknowledged."""


async def _all_sent(app: faust.App, published: list[Awaitable[Any]]) -> None:
    await app.producer.flush()
    await asyncio.gather(*published)


class _WorkerApp(faust.App):
    """The Faust app, creating LabelPulse's topics before anything is consumed or produced."""

    def __init__(self, kafka: KafkaSettings, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kafka = kafka
        self.events_partitions = kafka.partitions  # as the events topic has them, once created or found

    async def on_first_start(self) -> None:
        await super().on_first_start()
        # A batch allocates ~30 objects per event, nearly all freed by reference counting; with
        # Python's default thresholds the cycle collector still runs hundreds of times per batch
        # and keeps rescanning the long-lived state (task tables, dedup windows): 10-30% of the
        # processing time in bench/RESULTS.md. Collect less often, and never what start-up made.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        counts = await create_topics(self.kafka)
        self.events_partitions = counts[self.kafka.events_topic]
        log.info("topics: %s", ", ".join(f"{topic} ({n} partitions)" for topic, n in counts.items()))
        if counts[self.kafka.events_topic] != self.kafka.partitions:
            log.warning(
                "%s has %d partitions, LABELPULSE_EVENTS_PARTITIONS says %d: at most %d workers share the load",
                self.kafka.events_topic,
                counts[self.kafka.events_topic],
                self.kafka.partitions,
                counts[self.kafka.events_topic],
            )


# Room a dead letter's key, headers and record framing may take beside its value, in bytes.
DEAD_LETTER_OVERHEAD = 16 << 10


def dead_letter(message: Record, error: EventError, max_request_bytes: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of a refused message's copy in the dead-letter topic. A message as large
    as the events topic took may be larger than our producer may send: the copy is then cut, and its
    headers say so and where the original is (the events topic, and the dead_letters table)."""
    source = f"{message.topic}/{message.partition}/{message.offset}"
    value = message.value or b""
    headers = [
        ("labelpulse-rule", error.rule.encode()),
        ("labelpulse-reason", error.message[:4096].encode()),
        ("labelpulse-source", source.encode()),
    ]
    room = max_request_bytes - DEAD_LETTER_OVERHEAD - len(message.key or b"")
    if len(value) > room:
        headers.append(("labelpulse-truncated", f"{len(value)} bytes cut to {room}; whole at {source}".encode()))
        value = value[:room]
    return value, headers


def record_batch_metrics(batch: Batch, messages: int, insert_seconds: float) -> None:
    for event_type, count in batch.events_by_type.items():
        metrics.EVENTS.labels(event_type).inc(count)
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
    if batch.newest_occurred_ms:
        metrics.FRESHNESS.set(max(now.timestamp() - batch.newest_occurred_ms / 1000, 0.0))


ChangelogRecords = dict[int, list[tuple[bytes, bytes | None]]]  # partition -> encoded (key, value)


def encode_key(key: str) -> bytes:
    """A changelog key byte for byte as Faust's json serializer writes it (the tables' key
    serializer): compaction and partitioning compare keys as bytes."""
    return json.dumps(key, separators=(",", ":")).encode()


def encode_state(state: dict[str, Any]) -> bytes:
    """A state as JSON, which the tables' json value serializer reads back on recovery. msgspec
    rather than json.dumps: an annotator's activity state holds up to thousands of entries and
    is written every batch it changes in (~0.1 ms against ~0.8 ms for 2,000 entries)."""
    return msgspec.json.encode(state)


END_MARKER = "\x00labelpulse-end"  # a key no real task or annotator id is (it starts with NUL)


class TableStateStore:
    """State per task (or per annotator) in a Faust table (changelog-backed, so it survives restarts and rebalances).

    Faust writes a key's changelog to the partition of the event being processed; a batch
    spans partitions, so the partition is given here: that of the task's own events, which is
    where its state must live. Changes are published once per key per batch (`take_changes`,
    then `publish` once the batch is durable), not on every event: a task's events often share
    a batch, and each changelog write costs a JSON encoding and a producer message.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._changed: dict[str, int] = {}  # key -> partition, since the last take_changes
        self._touched: set[int] = set()  # changelog partitions written since the last end markers

    @property
    def _states(self) -> dict[str, Any]:
        """The plain dict behind the table's in-memory store: its own Mapping methods are Python-level
        (a miss raises and catches KeyError), a tenth of the processor's time on task state."""
        return self.table.data.data

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self._states.get(key)  # no copy: states are replaced, never modified (StateStore)

    def put(self, key: str, state: dict[str, Any], partition: int) -> None:
        self._states[key] = state
        self._changed[key] = partition

    def delete(self, key: str, partition: int) -> None:
        self._states.pop(key, None)
        self._changed[key] = partition

    def items(self) -> Iterable[tuple[str, Mapping[str, Any] | None]]:
        return self._states.items()

    def take_changes(self) -> Changes:
        """Every key changed since the last call, with its state as it is now (states are
        replaced on change, never modified, so this is a snapshot)."""
        changes = {key: (partition, self._states.get(key)) for key, partition in self._changed.items()}
        self._changed.clear()
        return changes

    async def publish(self, changes: Changes) -> list[Awaitable[Any]]:
        """Send the changes to the changelog (a deleted key as a tombstone); returns futures,
        done when Kafka has them."""
        records: ChangelogRecords = defaultdict(list)
        for key, (partition, state) in changes.items():
            records[partition].append((encode_key(key), None if state is None else encode_state(state)))
        self._touched.update(records)
        return await self._send(records)

    async def end_markers(self) -> list[Awaitable[Any]]:
        """One tombstone of a key no state uses, per changelog partition written since the last
        call. Send them only once everything published is in Kafka, so each is a batch of its own.

        Recovery after a rebalance reads a changelog partition up to the end offset the broker
        reports, and the embedded broker (Tansu 0.6) reports the last record *batch's* base
        offset + 1: every record of a multi-record last batch but its first would be left
        unread, and that task state lost. A single-record last batch makes that offset the true
        end. On Kafka, where the end is right anyway, it is one small record per partition."""
        marker = encode_key(END_MARKER)
        records: ChangelogRecords = {partition: [(marker, None)] for partition in self._touched}
        self._touched.clear()
        return await self._send(records)

    async def _send(self, records: ChangelogRecords) -> list[Awaitable[Any]]:
        """Records per partition, in as few Kafka record batches as fit (aiokafka's batch API).
        A batch changes thousands of keys, and Faust's send path costs tens of µs of event-loop
        time per message: the largest share of the worker's time after processing itself."""
        producer = self.table.app.producer._ensure_producer()  # aiokafka's own, started by Faust
        topic = self.table.changelog_topic.get_topic_name()
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


class _Step:
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


class _Throughput:
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


def __getattr__(name: str) -> faust.App:
    """`faust -A streams.app worker` finds the app here, built from LABELPULSE_* when first asked for:
    importing this module builds nothing, so `labelpulse worker` builds its one app from its own settings."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = globals()["app"] = create_app(WorkerSettings.from_env())
    return app
