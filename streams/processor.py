"""Turns Kafka messages into rows. Pure: no I/O, no clocks of its own, no globals.

One call handles one batch of messages: each is decoded and validated against the event
contract; refused ones become dead-letter rows with their reason; repeats of an event_id seen
recently on the same partition are dropped; honeypot submissions are enriched with the gold
answer their task was created with. State lives in the objects passed in, so the worker can
back it with Faust tables (changelog topics) and tests with plain dicts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from schema.events import AnnotationSubmitted, ContractLimits, EventError, TaskCreated, validate_event
from schema.rows import dead_letter_row, event_row, label_text


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Batch:
    """Rows ready for the sink, each list in message order, with the offsets they came from."""

    event_rows: list[list[Any]] = field(default_factory=list)
    event_offsets: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset) per event row
    dead_letter_rows: list[list[Any]] = field(default_factory=list)
    dead_letter_offsets: list[tuple[int, int]] = field(default_factory=list)
    dead_letters_by_rule: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[tuple[Message, EventError]] = field(default_factory=list)


class GoldStore(Protocol):
    """Gold answers of honeypot tasks by task_id; `put` names the partition the task's events are on."""

    def get(self, task_id: str) -> str | None: ...

    def put(self, task_id: str, gold_label: str, partition: int) -> None: ...


class DictGoldStore(dict[str, str]):
    """A GoldStore in memory: for tests and tools."""

    def put(self, task_id: str, gold_label: str, partition: int) -> None:
        self[task_id] = gold_label


class RecentIds:
    """The last `capacity` event_ids seen on one partition: where producer retries land."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        """True if event_id was seen before; remembers it either way."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def remember(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            self.seen(event_id)


class Processor:
    def __init__(
        self,
        *,
        gold_labels: GoldStore,
        limits: ContractLimits = ContractLimits(),  # noqa: B008 - frozen
        dedup_window: int = 100_000,
    ) -> None:
        self.gold_labels = gold_labels
        self.limits = limits
        self.dedup_window = dedup_window
        self._recent: dict[int, RecentIds] = {}

    def recent_ids(self, partition: int) -> RecentIds:
        if partition not in self._recent:
            self._recent[partition] = RecentIds(self.dedup_window)
        return self._recent[partition]

    def process(self, messages: Sequence[Message], *, now: datetime) -> Batch:
        batch = Batch()
        for message in messages:
            self._process_one(message, now, batch)
        return batch

    def _process_one(self, message: Message, now: datetime, batch: Batch) -> None:
        result = (
            validate_event(message.value, now=now, limits=self.limits)
            if message.value is not None
            else EventError("malformed_json", None, None, "message has no value (a tombstone?)")
        )
        position = (message.partition, message.offset)
        if isinstance(result, EventError):
            batch.refused.append((message, result))
            batch.dead_letter_rows.append(
                dead_letter_row(
                    result,
                    message.value or b"",
                    key=message.key,
                    received_at=now,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                )
            )
            batch.dead_letter_offsets.append(position)
            batch.dead_letters_by_rule[result.rule] = batch.dead_letters_by_rule.get(result.rule, 0) + 1
            return
        if self.recent_ids(message.partition).seen(result.event_id):
            batch.duplicates += 1
            return
        if isinstance(result, TaskCreated) and result.is_gold and result.gold_label is not None:
            self.gold_labels.put(result.task_id, label_text(result.gold_label), message.partition)
        elif isinstance(result, AnnotationSubmitted) and not result.is_gold:
            gold = self.gold_labels.get(result.task_id)
            if gold is not None:
                result = result.model_copy(update={"is_gold": True, "gold_label": gold})
        batch.event_rows.append(
            event_row(result, received_at=now, topic=message.topic, partition=message.partition, offset=message.offset)
        )
        batch.event_offsets.append(position)
        batch.events_by_type[result.event_type] = batch.events_by_type.get(result.event_type, 0) + 1
