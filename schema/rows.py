"""Rows for the tables the workers write, in their column order: the one mapping from contract to storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from schema.events import Event, EventError, extra_fields
from schema.tables import (
    ACTIVE_TIME,
    DEAD_LETTERS,
    EVENTS,
    GOLD_ANSWER_CHANGES,
    HANDLE_TIME_CHANGES,
    PAIR_AGREEMENT_CHANGES,
    REVIEW_ROUND_CHANGES,
    TASK_AGREEMENT_CHANGES,
)

EVENT_COLUMNS = EVENTS.column_names
DEAD_LETTER_COLUMNS = DEAD_LETTERS.column_names
# Every table a worker writes, by name: each row keeps the Kafka position it came from.
WORKER_TABLES = {
    table.name: table
    for table in (
        EVENTS,
        DEAD_LETTERS,
        HANDLE_TIME_CHANGES,
        GOLD_ANSWER_CHANGES,
        REVIEW_ROUND_CHANGES,
        TASK_AGREEMENT_CHANGES,
        PAIR_AGREEMENT_CHANGES,
        ACTIVE_TIME,
    )
}


def positions(table: str, rows: list[list[Any]]) -> list[tuple[int, int]]:
    """The (partition, offset) each of a worker table's rows came from."""
    return list(zip(*position_columns(table, rows), strict=True))


def position_columns(table: str, rows: list[list[Any]]) -> tuple[list[int], list[int]]:
    """The partition and the offset each of a worker table's rows came from, as two columns: without a Python
    loop a row, nor a tuple (half the time of `positions` on the sink's batches, more on fresh memory)."""
    partition, offset = _POSITION_OF[table]
    return list(map(partition, rows)), list(map(offset, rows))


_POSITION_OF = {
    name: tuple(itemgetter(table.column_names.index(column)) for column in ("kafka_partition", "kafka_offset"))
    for name, table in WORKER_TABLES.items()
}


# Where a row came from, as its last columns store it: topic, the topic's incarnation (its Kafka id),
# partition, offset.
Position = tuple[str, str, int, int]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """A DateTime64(3) value as ClickHouse stores it. The worker sends `events` times this way:
    clickhouse-connect writes ints as they are, but converts datetimes one by one in Python
    (~2.5 µs a row on a 10,000-row insert)."""
    return (moment - EPOCH) // MILLISECOND


def label_text(label: str | dict[str, Any] | None) -> str:
    """A class name as is; a structured label as canonical JSON, so equal labels compare equal."""
    if label is None:
        return ""
    if isinstance(label, str):
        return label
    return json.dumps(label, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_row(
    event: Event, *, received_ms: int, too_late: bool = False, position: Position, occurred_ms: int | None = None
) -> list[Any]:
    """The `events` row of a valid event, in EVENT_COLUMNS order; times in epoch ms (`epoch_ms`).
    Enum fields are StrEnums: stored as they are (reading `.value` costs more than the rest of the row)."""
    extra = extra_fields(event)
    return [
        event.event_id,
        event.event_type,
        event.schema_version,
        epoch_ms(event.occurred_at) if occurred_ms is None else occurred_ms,
        received_ms,
        event.project_id,
        event.task_id,
        event.annotation_id or "",
        event.annotator_id or "",
        event.reviewer_id or "",
        event.session_id or "",
        event.stage or "",
        event.source or "",
        event.source_system or "",
        label_text(event.label),
        event.duration_ms,
        bool(event.is_gold),
        label_text(event.gold_label),
        event.verdict or "",
        event.reason or "",
        label_text(event.model_label),
        event.model_confidence,
        json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str) if extra else "",
        too_late,
        *position,
    ]


def dead_letter_row(
    error: EventError,
    raw: bytes,
    *,
    key: bytes | None,
    received_at: datetime,
    position: Position,
) -> list[Any]:
    """The `dead_letters` row of a refused message, in DEAD_LETTER_COLUMNS order."""
    return [
        received_at,
        *position,
        key or b"",
        raw,
        error.rule,
        error.field or "",
        error.message,
        error.event_id or "",
    ]


def active_time_row(
    project_id: str, annotator_id: str, hour: datetime, active_ms: int, sessions: int, *, position: Position
) -> list[Any]:
    """The `active_time` row of a change to an annotator's active time and sessions in one project-hour."""
    return [project_id, annotator_id, hour, active_ms, sessions, *position]
