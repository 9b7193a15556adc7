"""Turns Kafka messages into rows. Pure: no I/O, no clocks of its own, no globals.

One call handles one batch of messages: each is decoded and validated against the event
contract; refused ones become dead-letter rows with their reason; repeats of an event_id seen
recently on the same partition are dropped; and per-task state is kept to derive what SQL
views cannot do well: honeypot submissions get the gold answer their task was created with,
submissions get their handle time (also when start and submit arrive out of order), reviews
get their round and whether they accept on the first pass, and when a task labeled by several
annotators completes, its agreement statistics are emitted as rows of their own. Annotation
events are also collected per annotator for the activity topic (streams.activity).

State lives in the objects passed in, so the worker backs it with a Faust table (changelog
topic) and tests with a dict. All task state is keyed by task_id, and all events of a task
share a Kafka partition, so one worker sees every event of the tasks it owns.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from schema.events import (
    AnnotationStarted,
    AnnotationSubmitted,
    ContractLimits,
    Event,
    EventError,
    ReviewCompleted,
    TaskCompleted,
    TaskCreated,
    validate_event,
    with_changes,
)
from schema.rows import (
    EVENT_COLUMNS,
    Position,
    agreement_rows,
    dead_letter_row,
    epoch_ms,
    event_row,
    handle_time_row,
    label_text,
    review_round_row,
)
from streams.privacy import WITHHELD, Pseudonymizer

log = logging.getLogger("labelpulse.processor")

# An annotation event as the activity topic carries it (streams.activity): occurred_at in epoch ms,
# event_id (orders ties in time, and makes replays recognisable), project_id.
ActivityEntry = tuple[int, str, str]
ANNOTATION_WORK = frozenset({"annotation_started", "annotation_submitted", "annotation_skipped"})

OCCURRED_AT = EVENT_COLUMNS.index("occurred_at")  # in an `events` row, as epoch ms
# Longer than this between start and submission is not handle time (the contract's duration_ms limit).
MAX_HANDLE_TIME_MS = 86_400_000


class Record(Protocol):
    """A Kafka message as the processor reads it: aiokafka's ConsumerRecord as the worker gets
    it (streams.transport), or a Message."""

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
class TableRows:
    """Rows for one table in message order, each with the (partition, offset) it came from."""

    rows: list[list[Any]] = field(default_factory=list)
    positions: list[tuple[int, int]] = field(default_factory=list)

    def add(self, row: list[Any], message: Record) -> None:
        self.rows.append(row)
        self.positions.append((message.partition, message.offset))


@dataclass
class Batch:
    tables: defaultdict[str, TableRows] = field(default_factory=lambda: defaultdict(TableRows))
    events_by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_by_rule: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[tuple[Record, EventError]] = field(default_factory=list)
    newest_occurred_ms: int = 0  # epoch ms of the newest valid event (0: none): for the freshness metric
    # Annotation events per annotator, for the activity topic (replays included: it drops repeats).
    activity: defaultdict[str, list[ActivityEntry]] = field(default_factory=lambda: defaultdict(list))

    def rows(self, table: str) -> list[list[Any]]:
        return self.tables[table].rows


class StateStore(Protocol):
    """State per key (a task_id, or an annotator_id for streams.activity) as a JSON-able dict;
    writes name the partition of the key's messages, which is where the state must live.
    States are replaced on change, never modified in place: the one put for a batch is
    published only once that batch is durable, while the next batch is already processed."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def put(self, key: str, state: dict[str, Any], partition: int) -> None: ...

    def delete(self, key: str, partition: int) -> None: ...


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


def state_ms(moment: int | str) -> int:
    """A time kept in task state, in epoch ms (as `events` stores it; cheaper than text to keep and
    compare). Earlier versions kept ISO 8601 text, and a changelog may still hold some."""
    return moment if isinstance(moment, int) else epoch_ms(datetime.fromisoformat(moment))


class Processor:
    def __init__(
        self,
        *,
        tasks: StateStore,
        limits: ContractLimits = ContractLimits(),  # noqa: B008 - frozen
        dedup_window: int = 100_000,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> None:
        self.tasks = tasks
        self.pseudonymizer = pseudonymizer
        self.limits = limits
        self.dedup_window = dedup_window
        self._recent: dict[int, RecentIds] = {}

    def recent_ids(self, partition: int) -> RecentIds:
        if partition not in self._recent:
            self._recent[partition] = RecentIds(self.dedup_window)
        return self._recent[partition]

    def process(
        self,
        messages: Sequence[Record],
        *,
        now: datetime,
        replayed_through: Mapping[int, int] | None = None,
        topic_id: str = "",
        before_each: Callable[[Record], str | None] | None = None,
    ) -> Batch:
        """`replayed_through`: per partition, the last offset already stored. Such messages are
        replays after a restart, not producer duplicates: they rebuild task state like any other
        (their rows are dropped by the sink), though their ids were seen before. `topic_id`: the
        incarnation of the topic the messages come from (streams.incarnations). `before_each`, when
        given, is called before each message is processed; a reason it returns sets the message
        aside unprocessed, as a dead letter (streams.crash_journal)."""
        batch = Batch()
        replayed = replayed_through or {}
        received_ms = epoch_ms(now)
        for message in messages:
            position = (message.topic, topic_id, message.partition, message.offset)
            if before_each is not None and (reason := before_each(message)):
                self._refuse(message, position, EventError("crashed_worker", None, None, reason), now, batch)
                continue
            replay = message.offset <= replayed.get(message.partition, -1)
            try:
                self._process_one(message, position, now, received_ms, batch, replay)
            except Exception as exc:  # a bug of ours, not the sender's: set the message aside, go on
                log.exception(
                    "failed on %s/%d/%d; set aside as a dead letter", message.topic, message.partition, message.offset
                )
                reason = f"the worker failed on this message ({type(exc).__name__}: {exc}); reported as a bug"
                self._refuse(message, position, EventError("unprocessable", None, None, reason), now, batch)
        return batch

    def _process_one(
        self, message: Record, position: Position, now: datetime, received_ms: int, batch: Batch, replay: bool
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
        if self.pseudonymizer:
            result = self.pseudonymizer.event(result)
        event = self._track_task(result, message, position, batch)
        row = event_row(event, received_ms=received_ms, position=position)
        batch.tables["events"].add(row, message)
        occurred_ms: int = row[OCCURRED_AT]
        if event.event_type in ANNOTATION_WORK and event.annotator_id:
            batch.activity[event.annotator_id].append((occurred_ms, event.event_id, event.project_id))
        batch.events_by_type[event.event_type] = batch.events_by_type.get(event.event_type, 0) + 1
        if occurred_ms > batch.newest_occurred_ms:
            batch.newest_occurred_ms = occurred_ms

    def _refuse(self, message: Record, position: Position, error: EventError, now: datetime, batch: Batch) -> None:
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
        batch.tables["dead_letters"].add(row, message)
        batch.dead_letters_by_rule[error.rule] = batch.dead_letters_by_rule.get(error.rule, 0) + 1

    def _track_task(self, event: Event, message: Record, position: Position, batch: Batch) -> Event:
        """Update the task's state; emit what it completes; return the event, enriched where the state says so."""
        if isinstance(event, TaskCreated) and event.is_gold and event.gold_label is not None:
            state = self.tasks.get(event.task_id) or {}
            self.tasks.put(event.task_id, {**state, "gold": label_text(event.gold_label)}, message.partition)
        elif isinstance(event, AnnotationStarted):
            self._started(event, message, position, batch)
        elif isinstance(event, AnnotationSubmitted):
            return self._submitted(event, message, position, batch)
        elif isinstance(event, ReviewCompleted):
            self._reviewed(event, message, position, batch)
        elif isinstance(event, TaskCompleted):
            self._completed(event, message, position, batch)
        return event

    def _reviewed(self, event: ReviewCompleted, message: Record, position: Position, batch: Batch) -> None:
        """Which round of review this is, and whether it accepts work never rejected before. Reviews
        are remembered by event_id, so a replay after a restart gets the round it had."""
        state = self.tasks.get(event.task_id) or {}
        reviews: list[str] = state.get("reviews", [])
        rejected: list[str] = state.get("rejected", [])  # ids of rejecting reviews
        if event.event_id not in reviews:
            reviews = [*reviews, event.event_id]
        earlier = reviews[: reviews.index(event.event_id)]
        first_pass = event.verdict == "accepted" and not any(review in rejected for review in earlier)
        row = review_round_row(event, len(earlier) + 1, first_pass, position=position)
        batch.tables["review_rounds"].add(row, message)
        if event.verdict == "rejected" and event.event_id not in rejected:
            rejected = [*rejected, event.event_id]
        self.tasks.put(event.task_id, {**state, "reviews": reviews, "rejected": rejected}, message.partition)

    def _started(self, event: AnnotationStarted, message: Record, position: Position, batch: Batch) -> None:
        state = self.tasks.get(event.task_id) or {}
        started_ms = epoch_ms(event.occurred_at)
        started = {**state.get("started", {}), event.annotator_id: started_ms}
        waiting = dict(state.get("waiting", {}))
        submitted_at = waiting.pop(event.annotator_id, None)
        if submitted_at is not None:  # the submission came first: its handle time is known now
            self._derived_handle_time(
                event.project_id, event.annotator_id, event.task_id, started_ms, state_ms(submitted_at), message,
                position, batch,
            )  # fmt: skip
        self.tasks.put(event.task_id, {**state, "started": started, "waiting": waiting}, message.partition)

    def _submitted(self, event: AnnotationSubmitted, message: Record, position: Position, batch: Batch) -> Event:
        state = self.tasks.get(event.task_id) or {}
        changed = dict(state)
        labels: dict[str, str] = state.get("labels", {})
        if event.annotator_id not in labels:  # agreement compares first, independent answers
            changed["labels"] = {**labels, event.annotator_id: label_text(event.label)}
        started_at = state.get("started", {}).get(event.annotator_id)
        submitted_ms = epoch_ms(event.occurred_at)
        if event.duration_ms is not None:
            batch.tables["handle_times"].add(
                handle_time_row(
                    event.project_id, event.annotator_id, event.task_id, submitted_ms, event.duration_ms,
                    "tool", position=position,
                ),
                message,
            )  # fmt: skip
        elif started_at is not None:
            self._derived_handle_time(
                event.project_id, event.annotator_id, event.task_id, state_ms(started_at), submitted_ms, message,
                position, batch,
            )  # fmt: skip
        else:  # its annotation_started has not arrived (yet): wait for it
            changed["waiting"] = {**state.get("waiting", {}), event.annotator_id: submitted_ms}
        if changed != state:
            self.tasks.put(event.task_id, changed, message.partition)
        if state.get("gold") is not None and not event.is_gold:
            return with_changes(event, is_gold=True, gold_label=state["gold"])
        return event

    def _completed(self, event: TaskCompleted, message: Record, position: Position, batch: Batch) -> None:
        state = self.tasks.get(event.task_id) or {}
        labels = state.get("labels", {})
        if len(labels) >= 2:
            task_row, pair_rows = agreement_rows(
                event.project_id,
                event.task_id,
                event.occurred_at,
                labels,
                position=position,
            )
            batch.tables["task_agreement"].add(task_row, message)
            for row in pair_rows:
                batch.tables["pair_agreement"].add(row, message)
        if state:  # the task is done: forget it (the worker publishes that only once the batch is durable)
            self.tasks.delete(event.task_id, message.partition)

    @staticmethod
    def _derived_handle_time(
        project_id: str,
        annotator_id: str,
        task_id: str,
        started_ms: int,
        submitted_ms: int,
        message: Record,
        position: Position,
        batch: Batch,
    ) -> None:
        handle_ms = submitted_ms - started_ms
        if not 0 <= handle_ms <= MAX_HANDLE_TIME_MS:
            return  # a start after its submission, or a day apart: clocks we cannot trust
        row = handle_time_row(
            project_id, annotator_id, task_id, submitted_ms, handle_ms, "start_to_submit", position=position
        )  # fmt: skip
        batch.tables["handle_times"].add(row, message)
