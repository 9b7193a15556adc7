"""A message that kills the worker process is set aside after the second death, not replayed forever.

The worker dying is played by dropping the journal without `done` and opening a new one on the same
directory, as a restarted worker does; the processor does the rest as it does in the worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schema.rows import DEAD_LETTER_COLUMNS, EVENT_COLUMNS
from streams.crash_journal import CrashJournal, process_noting
from streams.processor import DictStateStore, Message, Processor

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def messages(first: int, last: int) -> list[Message]:
    return [
        Message(
            "events",
            0,
            offset,
            b"k",
            json.dumps(
                {
                    "event_id": f"e{offset}",
                    "event_type": "annotation_submitted",
                    "schema_version": 1,
                    "occurred_at": "2026-11-23T11:00:00Z",
                    "project_id": "p",
                    "task_id": f"t{offset}",
                    "annotator_id": "a",
                    "label": "cat",
                }
            ).encode(),
        )
        for offset in range(first, last + 1)
    ]


class Died(BaseException):
    """The process ending on a message, as a native crash would: nothing after it runs."""


class DeadlyTask(DictStateStore):
    """Task state whose one task kills the process."""

    def get(self, key: str) -> dict[str, Any] | None:
        if key == "t6":
            raise Died
        return super().get(key)


def run(directory: Path, records: list[Message]) -> tuple[list[str], list[str]]:
    """One life of a restarted worker over `records`; returns the ids stored and the rules set aside."""
    batch = process_noting(Processor(tasks=DeadlyTask()), CrashJournal(directory), records, now=NOW)
    stored = [dict(zip(EVENT_COLUMNS, row, strict=True))["event_id"] for row in batch.rows("events")]
    aside = [dict(zip(DEAD_LETTER_COLUMNS, row, strict=True))["rule"] for row in batch.rows("dead_letters")]
    return stored, aside


def test_a_message_that_kills_the_worker_twice_is_set_aside_and_the_rest_is_stored(tmp_path: Path) -> None:
    batch = messages(0, 9)
    for _ in range(2):  # dies in the batch, then on the message itself when processing one at a time
        with pytest.raises(Died):
            run(tmp_path, batch)
    stored, aside = run(tmp_path, batch)
    assert stored == [f"e{offset}" for offset in range(10) if offset != 6]
    assert aside == ["crashed_worker"]
    assert list(tmp_path.iterdir()) == [], "nothing suspect is left"


def test_a_worker_that_died_once_for_another_reason_processes_everything_again(tmp_path: Path) -> None:
    CrashJournal(tmp_path).note(messages(0, 5))  # killed mid-batch, e.g. by an operator
    stored, aside = run(tmp_path, messages(0, 5))
    assert (len(stored), aside) == (6, [])


def test_an_unreadable_note_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "processing-0.json").write_text("{half")
    assert CrashJournal(tmp_path).suspects == {}


def test_a_note_on_one_topic_leaves_the_same_offsets_of_another_alone(tmp_path: Path) -> None:
    backfill = [Message("events.backfill", 0, offset, b"k", b"{}") for offset in range(3)]
    CrashJournal(tmp_path).note(backfill)  # died while processing history
    again = CrashJournal(tmp_path)
    assert again.suspect(backfill[1]) is not None
    assert again.suspect(Message("events", 0, 1, b"k", b"{}")) is None, "the live partition 0 is not suspect"
    again.done(backfill)
    assert again.suspects == {} and list(tmp_path.iterdir()) == []
