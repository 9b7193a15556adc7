"""Turns Kafka messages into rows. Pure: no I/O, no clocks of its own, no globals.

One call handles one batch of messages: each is decoded and validated against the event
contract; refused ones become dead-letter rows with their reason; repeats of an event_id seen
recently on the same partition are dropped. Valid events become `events` rows as received, and
per-task state (streams.tasks) derives what SQL views cannot do well — handle times, gold answers,
review rounds, agreement statistics — as changes that ClickHouse sums, so that they come out the
same whatever order the events arrive in. Annotation events are also collected per annotator for
the activity topic (streams.activity).

Time is event time. Each partition's watermark is the newest `occurred_at` seen on it, in offset
order, so a replay of the partition sees the same watermarks as live delivery did. An event more
than the lateness bound older than its partition's watermark is too late for derived metrics: it
is stored and counted in raw throughput, flagged `too_late`, and counted; its derived updates are
skipped. A task's state is released once the watermark is the lateness bound past its completion
(or past its last event by the open-task retention, for tools that never complete tasks).

The backfill topic (`labelpulse import`) is read by a second processor, a *lane* of its own: same
task state, its own watermarks and releases, so history in time order is never too late however far
ahead live events are. A task is released by the lane of its newest event.

State lives in the objects passed in, so the worker backs it with a Faust table (changelog
topic) and tests with a dict. All task state is keyed by task_id, and all events of a task
share a Kafka partition, so one worker sees every event of the tasks it owns.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from schema.events import ContractLimits, Event, EventError, validate_event
from schema.rows import Position, dead_letter_row, epoch_ms, event_row
from streams import task_state
from streams.privacy import WITHHELD, Pseudonymizer

log = logging.getLogger("labelpulse.processor")

# An annotation event as the activity topic carries it (streams.activity): occurred_at in epoch ms,
# event_id (orders ties in time, and makes replays recognisable), project_id.
ActivityEntry = tuple[int, str, str]
ANNOTATION_WORK = frozenset({"annotation_started", "annotation_submitted", "annotation_skipped"})


class Record(Protocol):
    """A Kafka message as the processor reads it: aiokafka's ConsumerRecord as the worker gets
    it (streams.faust_internals), or a Message."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Message:
    """A Record made up: for tests and tools that have no Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class ProcessedBatch:
    """What processing one fetch of messages made: rows per table, counts, the refused messages,
    and (from the events topic) the annotation events for the activity topic."""

    # Rows per table in message order; each row holds the Kafka position it came from (schema.rows.positions).
    tables: defaultdict[str, list[list[Any]]] = field(default_factory=lambda: defaultdict(list))
    events_by_type: dict[str, int] = field(default_factory=dict)
    events_by_source: dict[str, int] = field(default_factory=dict)  # by source_system; "" when not given
    dead_letters_by_rule: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[tuple[Record, EventError]] = field(default_factory=list)
    newest_occurred_ms: int = 0  # epoch ms of the newest valid event (0: none): for the freshness metric
    # Events later than the lateness bound, by type: stored, left out of derived metrics.
    too_late: dict[str, int] = field(default_factory=dict)
    released: int = 0  # task states released: nothing within the lateness bound can change them any more
    # Annotation events per annotator, for the activity topic (replays included: it drops repeats).
    activity: defaultdict[str, list[ActivityEntry]] = field(default_factory=lambda: defaultdict(list))
    # Per partition of the batch: no event older than this goes to the activity topic from it any more.
    activity_floors: dict[int, int] = field(default_factory=dict)

    def rows(self, table: str) -> list[list[Any]]:
        return self.tables[table]


class StateStore(Protocol):
    """State per key (a task_id, or an annotator_id for streams.activity) as a JSON-able dict;
    writes name the partition of the key's messages, which is where the state must live.
    States are replaced on change, never modified in place: the one put for a batch is
    published only once that batch is durable, while the next batch is already processed."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def put(self, key: str, state: dict[str, Any], partition: int) -> None: ...

    def delete(self, key: str, partition: int) -> None: ...

    def items(self) -> Iterable[tuple[str, Mapping[str, Any] | None]]: ...


class DictStateStore(dict[str, dict[str, Any]]):
    """A StateStore in memory: for tests and tools."""

    def put(self, key: str, state: dict[str, Any], partition: int) -> None:
        self[key] = state

    def delete(self, key: str, partition: int) -> None:
        self.pop(key, None)


class RecentIds:
    """Event ids seen lately on one partition: where producer retries land. At least the last
    `capacity` ids are remembered, at most twice as many, in two generations of sets: a lookup
    and an add per event, where a least-recently-used order (OrderedDict) cost ~3 % of the
    worker's time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._current: set[str] = set()
        self._previous: set[str] = set()  # the generation before, dropped when _current fills up

    def seen(self, event_id: str) -> bool:
        """True if event_id was seen before; remembers it either way."""
        if event_id in self._current:
            return True
        seen_before = event_id in self._previous
        if self.capacity:
            self._current.add(event_id)
            if len(self._current) >= self.capacity:
                self._previous, self._current = self._current, set()
        return seen_before

    def remember(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            self.seen(event_id)


WATERMARK = "\x00watermark:"  # + partition: a key no task id is (it starts with NUL)
# In a task's state: the lane (see Processor) whose watermark releases it, that of its newest event; absent: live.
LANE = "lane"
# Stale release entries tolerated beyond twice the live tasks before the heap is rebuilt.
REINDEX_SLACK = 10_000


class Processor:
    def __init__(
        self,
        *,
        tasks: StateStore,
        limits: ContractLimits = ContractLimits(),  # noqa: B008 - frozen
        dedup_window: int = 100_000,
        pseudonymizer: Pseudonymizer | None = None,
        lateness_bound_ms: int = 3_600_000,
        open_task_retention_ms: int = 7 * 86_400_000,
        lane: str = "",
        recent: dict[int, RecentIds] | None = None,
    ) -> None:
        """`lane`: "" for the events topic; another name (the backfill topic's) for a topic read apart with
        watermarks of its own, sharing the task state (`tasks`) and, given `recent`, the recent ids."""
        self.tasks = tasks
        self.lane = lane
        self._watermark_key = f"{WATERMARK}{lane}:" if lane else WATERMARK
        self.pseudonymizer = pseudonymizer
        self.limits = limits
        self.dedup_window = dedup_window
        self.lateness_bound_ms = lateness_bound_ms
        self.open_task_retention_ms = open_task_retention_ms
        self._recent: dict[int, RecentIds] = {} if recent is None else recent
        # Per partition: (release due at this watermark, task_id), earliest first; built from the
        # store the first time a partition is processed after a start or a rebalance. A task has
        # an entry from when it was first seen and another from its completion; stale ones are
        # skipped when due, and the heap is rebuilt once it holds twice the tasks it was built with.
        self._releases: dict[int, list[tuple[int, str]]] = {}
        self._indexed: dict[int, int] = {}  # per partition: the tasks the heap was last built with

    def recent_ids(self, partition: int) -> RecentIds:
        if partition not in self._recent:
            self._recent[partition] = RecentIds(self.dedup_window)
        return self._recent[partition]

    def forget_partitions(self) -> None:
        """After a rebalance: task state of the partitions owned now was recovered, not processed here."""
        self._releases.clear()

    def process(
        self,
        messages: Sequence[Record],
        *,
        now: datetime,
        replayed_through: Mapping[int, int] | None = None,
        topic_id: str = "",
        before_each: Callable[[Record], str | None] | None = None,
    ) -> ProcessedBatch:
        """`replayed_through`: per partition, the last offset already stored. Such messages are
        replays after a restart, not producer duplicates: they rebuild task state like any other
        (their rows are dropped by the sink), though their ids were seen before. `topic_id`: the
        incarnation of the topic the messages come from (streams.incarnations). `before_each`, when
        given, is called before each message is processed; a reason it returns sets the message
        aside unprocessed, as a dead letter (streams.crash_journal)."""
        batch = ProcessedBatch()
        replayed = replayed_through or {}
        received_ms = epoch_ms(now)
        watermarks: dict[int, int] = {}
        for message in messages:
            position = (message.topic, topic_id, message.partition, message.offset)
            if before_each is not None and (reason := before_each(message)):
                self._refuse(message, position, EventError("crashed_worker", None, None, reason), now, batch)
                continue
            if message.partition not in watermarks:
                watermarks[message.partition] = self.watermark(message.partition)
            replay = message.offset <= replayed.get(message.partition, -1)
            try:
                self._process_one(message, position, now, received_ms, batch, replay, watermarks)
            except Exception as exc:  # a bug of ours, not the sender's: set the message aside, go on
                log.exception(
                    "failed on %s/%d/%d; set aside as a dead letter", message.topic, message.partition, message.offset
                )
                reason = f"the worker failed on this message ({type(exc).__name__}: {exc}); reported as a bug"
                self._refuse(message, position, EventError("unprocessable", None, None, reason), now, batch)
        if unindexed := [partition for partition in watermarks if partition not in self._releases]:
            self._index(unindexed)  # the first batch of partitions after a start or a rebalance
        for partition, watermark in watermarks.items():
            if watermark != self.watermark(partition):
                self.tasks.put(f"{self._watermark_key}{partition}", {"newest": watermark}, partition)
            batch.activity_floors[partition] = watermark - self.lateness_bound_ms
            self._release(partition, watermark, batch)
        return batch

    def watermark(self, partition: int) -> int:
        """The newest occurred_at (epoch ms) seen on the partition; 0 before any."""
        state = self.tasks.get(f"{self._watermark_key}{partition}")
        return int(state["newest"]) if state else 0

    def _process_one(
        self,
        message: Record,
        position: Position,
        now: datetime,
        received_ms: int,
        batch: ProcessedBatch,
        replay: bool,
        watermarks: dict[int, int],
    ) -> None:
        result = (
            validate_event(message.value, now=now, limits=self.limits)
            if message.value is not None
            else EventError("malformed_json", None, None, "message has no value (a tombstone?)")
        )
        if isinstance(result, EventError):
            self._refuse(message, position, result, now, batch)
            return
        if self.recent_ids(message.partition).seen(result.event_id) and not replay:
            batch.duplicates += 1
            return
        event = self.pseudonymizer.event(result) if self.pseudonymizer else result
        occurred_ms = epoch_ms(event.occurred_at)
        watermark = watermarks[message.partition]
        too_late = occurred_ms < watermark - self.lateness_bound_ms
        if too_late:
            if not replay:
                batch.too_late[event.event_type] = batch.too_late.get(event.event_type, 0) + 1
        else:
            if event.event_type in task_state.DERIVING:
                self._track_task(event, occurred_ms, message, position, batch)
            if event.event_type in ANNOTATION_WORK and event.annotator_id:
                batch.activity[event.annotator_id].append((occurred_ms, event.event_id, event.project_id))
        if occurred_ms > watermark:
            watermarks[message.partition] = occurred_ms
        row = event_row(event, received_ms=received_ms, too_late=too_late, position=position, occurred_ms=occurred_ms)
        batch.tables["events"].append(row)
        batch.events_by_type[event.event_type] = batch.events_by_type.get(event.event_type, 0) + 1
        source_system = event.source_system or ""
        batch.events_by_source[source_system] = batch.events_by_source.get(source_system, 0) + 1
        if occurred_ms > batch.newest_occurred_ms:
            batch.newest_occurred_ms = occurred_ms

    def _refuse(
        self, message: Record, position: Position, error: EventError, now: datetime, batch: ProcessedBatch
    ) -> None:
        batch.refused.append((message, error))
        if self.pseudonymizer:  # the message may name people: it stays in the dead-letter topic only
            error = replace(error, message=WITHHELD)
        row = dead_letter_row(
            error,
            b"" if self.pseudonymizer else message.value or b"",
            key=message.key,
            received_at=now,
            position=position,
        )
        batch.tables["dead_letters"].append(row)
        batch.dead_letters_by_rule[error.rule] = batch.dead_letters_by_rule.get(error.rule, 0) + 1

    def _track_task(
        self, event: Event, occurred_ms: int, message: Record, position: Position, batch: ProcessedBatch
    ) -> None:
        """Put the event into its task's state, and write what that changes in the derived tables."""
        before = self._task(event.task_id)
        after, scopes = task_state.with_event(before, event, message.partition, occurred_ms)
        if after is None:
            return
        moved = after.get(LANE, "") != self.lane and occurred_ms >= after["newest"]
        if moved:  # its newest event came by this lane: this lane's watermark releases it
            after[LANE] = self.lane
        self.tasks.put(event.task_id, after, message.partition)
        if before is None or after["completed"] != before["completed"] or moved:
            # Due again: completion brings the release forward (an event that only postpones it is
            # found when the earlier entry comes due, and due again then).
            self._due(message.partition, event.task_id, after)
        for table, rows in task_state.changes(before, after, scopes).items():
            batch.tables[table].extend(task_state.stored_rows(table, rows, position))

    def _task(self, task_id: str) -> Mapping[str, Any] | None:
        state = self.tasks.get(task_id)
        return state if state is not None and "submissions" in state else None  # None too for a legacy state

    # -- releasing state nothing within the lateness bound can change any more ------------------

    def _release_at(self, state: Mapping[str, Any]) -> int:
        """The watermark past which a task's state is released."""
        if state["completed"] is not None:
            return max(state["newest"], state["completed"]) + self.lateness_bound_ms
        return state["newest"] + self.open_task_retention_ms

    def _due(self, partition: int, task_id: str, state: Mapping[str, Any]) -> None:
        if partition in self._releases:
            due = self._releases[partition]
            heapq.heappush(due, (self._release_at(state), task_id))
            if len(due) > 2 * self._indexed[partition] + REINDEX_SLACK:
                self._index(list(self._releases))  # one pass over the store for every partition: their heaps grow alike

    def _release(self, partition: int, watermark: int, batch: ProcessedBatch) -> None:
        due = self._releases[partition]
        while due and due[0][0] < watermark:
            _, task_id = heapq.heappop(due)
            state = self._task(task_id)
            if state is None or state.get("partition") != partition or state.get(LANE, "") != self.lane:
                continue
            if (release_at := self._release_at(state)) < watermark:
                self.tasks.delete(task_id, partition)
                batch.released += 1
            else:  # an event since: due later
                heapq.heappush(due, (release_at, task_id))

    def _index(self, partitions: list[int]) -> None:
        """Build the release heaps of `partitions` from the store, in one pass over it."""
        heaps: dict[int, list[tuple[int, str]]] = {partition: [] for partition in partitions}
        for key, state in list(self.tasks.items()):
            if key.startswith("\x00") or state is None:
                continue
            # Legacy states (no submissions) are replaced; another lane's are released by its watermark.
            if (
                "submissions" in state
                and state.get(LANE, "") == self.lane
                and (due := heaps.get(state["partition"])) is not None
            ):
                due.append((self._release_at(state), key))
        for partition, due in heaps.items():
            heapq.heapify(due)
            self._releases[partition] = due
            self._indexed[partition] = len(due)
