"""Rows for the tables the workers write, in their column order: the one mapping from contract to storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from schema.events import Event, EventError, ReviewCompleted, extra_fields
from schema.tables import (
    ACTIVE_TIME,
    DEAD_LETTERS,
    EVENTS,
    HANDLE_TIMES,
    PAIR_AGREEMENT,
    REVIEW_ROUNDS,
    TASK_AGREEMENT,
)

EVENT_COLUMNS = EVENTS.column_names
DEAD_LETTER_COLUMNS = DEAD_LETTERS.column_names
# Every table a worker writes, by name: each row keeps the Kafka position it came from.
WORKER_TABLES = {
    table.name: table
    for table in (EVENTS, DEAD_LETTERS, HANDLE_TIMES, TASK_AGREEMENT, PAIR_AGREEMENT, ACTIVE_TIME, REVIEW_ROUNDS)
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


def event_row(event: Event, *, received_ms: int, position: Position) -> list[Any]:
    """The `events` row of a valid event, in EVENT_COLUMNS order; times in epoch ms (`epoch_ms`).
    Enum fields are StrEnums: stored as they are (reading `.value` costs more than the rest of the row)."""
    extra = extra_fields(event)
    return [
        event.event_id,
        event.event_type,
        event.schema_version,
        epoch_ms(event.occurred_at),
        received_ms,
        event.project_id,
        event.task_id,
        event.annotator_id or "",
        event.reviewer_id or "",
        event.session_id or "",
        event.stage or "",
        event.source or "",
        label_text(event.label),
        event.duration_ms,
        bool(event.is_gold),
        label_text(event.gold_label),
        event.verdict or "",
        event.reason or "",
        label_text(event.model_label),
        event.model_confidence,
        json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str) if extra else "",
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


def agreement_rows(
    project_id: str,
    task_id: str,
    completed_at: datetime,
    labels_by_annotator: dict[str, str],
    *,
    position: Position,
) -> tuple[list[Any], list[list[Any]]]:
    """The `task_agreement` row and the `pair_agreement` rows of a task labeled by two or more annotators."""
    counts: dict[str, int] = {}
    for label in labels_by_annotator.values():
        counts[label] = counts.get(label, 0) + 1
    task = [
        project_id,
        task_id,
        completed_at,
        len(labels_by_annotator),
        counts,
        sum(n * (n - 1) for n in counts.values()),
        *position,
    ]
    pairs = [
        [project_id, task_id, completed_at, a, b, labels_by_annotator[a], labels_by_annotator[b], *position]
        for a, b in combinations(sorted(labels_by_annotator), 2)
    ]
    return task, pairs


def handle_time_row(
    project_id: str,
    annotator_id: str,
    task_id: str,
    submitted_ms: int,
    handle_time_ms: int,
    measured_by: str,
    *,
    position: Position,
) -> list[Any]:
    """The `handle_times` row of a submission whose handle time is known; `submitted_ms` in epoch ms (`epoch_ms`)."""
    return [project_id, annotator_id, task_id, submitted_ms, handle_time_ms, measured_by, *position]


def review_round_row(
    event: ReviewCompleted, review_round: int, first_pass_accepted: bool, *, position: Position
) -> list[Any]:
    """The `review_rounds` row of a review, given its round and whether it accepts work never rejected before."""
    return [
        event.project_id,
        event.task_id,
        event.annotator_id,
        event.reviewer_id,
        event.occurred_at,
        min(review_round, 65_535),  # UInt16
        event.verdict,
        first_pass_accepted,
        *position,
    ]


def active_time_row(
    project_id: str, annotator_id: str, hour: datetime, active_ms: int, sessions: int, *, position: Position
) -> list[Any]:
    """The `active_time` row of a change to an annotator's active time and sessions in one project-hour."""
    return [project_id, annotator_id, hour, active_ms, sessions, *position]
