"""Which messages the worker was processing when it died, so that one that kills it is set aside, not
replayed forever.

A Python exception on a message is caught by the processor (the message becomes a dead letter). A
message that kills the process itself — a native library, the memory limit — would be read again
after the restart and kill it again: a crash loop that stops the stream. So before processing a batch
the worker notes its offsets in a small file, and clears the note when done. After a restart, a noted
range is suspect: its messages are processed one at a time, each noted first, and a message the
worker died on twice is set aside as a dead letter (rule `crashed_worker`) without being processed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.processor import ProcessedBatch, Processor, Record

log = logging.getLogger("labelpulse.crash_journal")


@dataclass(frozen=True)
class Suspect:
    """Offsets of one partition the worker was processing when it died, and how often it died there."""

    first: int
    last: int
    crashes: int

    def covers(self, offset: int) -> bool:
        return self.first <= offset <= self.last


class CrashJournal:
    """Notes in `directory`, one file per topic partition (the events and the backfill topic have the same
    partition numbers): a partition is processed by one worker at a time, and after a rebalance its next
    owner finds what the last one died on."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.suspects = self._load()
        for (topic, partition), suspect in self.suspects.items():
            log.warning(
                "a worker died while processing %s partition %d, offsets %d-%d (%d time(s)): processing them one "
                "at a time%s",
                topic or "a", partition, suspect.first, suspect.last, suspect.crashes,
                "; the one it died on again is set aside as a dead letter" if suspect.crashes > 1 else "",
            )  # fmt: skip

    def _path(self, topic: str, partition: int) -> Path:
        return self.directory / f"processing-{partition}-{topic}.json"  # topic names are safe in file names

    def _load(self) -> dict[tuple[str, int], Suspect]:
        suspects = {}
        for path in self.directory.glob("processing-*.json"):
            try:
                first, last, crashes = json.loads(path.read_text())
                partition, _, topic = path.stem.removeprefix("processing-").partition("-")  # no topic: any (older)
                suspects[(topic, int(partition))] = Suspect(first, last, crashes + 1)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring an unreadable crash journal note %s: %s", path, exc)
        return suspects

    def note(self, records: Iterable[Record], crashes: Mapping[int, int] | None = None) -> None:
        """Records about to be processed (in offset order per partition)."""
        ranges: dict[tuple[str, int], list[int]] = {}
        for record in records:
            first_last = ranges.setdefault((record.topic, record.partition), [record.offset, record.offset])
            first_last[1] = record.offset
        for (topic, partition), (first, last) in ranges.items():
            path = self._path(topic, partition)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps([first, last, (crashes or {}).get(partition, 0)]))
            os.replace(temporary, path)  # never a half-written note

    def done(self, records: Iterable[Record]) -> None:
        """The records were processed without dying: their notes go, and so does what was suspect in them."""
        last_offsets = {(record.topic, record.partition): record.offset for record in records}
        for (topic, partition), last in last_offsets.items():
            self._path(topic, partition).unlink(missing_ok=True)
            for key in ((topic, partition), ("", partition)):
                suspect = self.suspects.get(key)
                if suspect is not None and last >= suspect.last:
                    del self.suspects[key]

    def suspect(self, record: Record) -> Suspect | None:
        suspect = self.suspects.get((record.topic, record.partition)) or self.suspects.get(("", record.partition))
        return suspect if suspect is not None and suspect.covers(record.offset) else None

    def set_aside(self, record: Record) -> bool:
        """True for the message a worker died on alone, twice or more: not to be processed again."""
        suspect = self.suspect(record)
        return suspect is not None and suspect.crashes > 1 and suspect.first == suspect.last


def process_noting(
    processor: Processor, journal: CrashJournal, records: Sequence[Record], **options: Any
) -> ProcessedBatch:
    """`processor.process(records, **options)`, noted in `journal`; after a death in these offsets, one
    message at a time, setting aside the one a worker died on twice."""

    def one_at_a_time(record: Record) -> str | None:
        if journal.set_aside(record):
            return "a worker died twice while processing this message; set aside unprocessed (see the worker's log)"
        suspect = journal.suspect(record)
        journal.note([record], {record.partition: suspect.crashes if suspect else 0})
        return None

    careful = journal.suspects and any(journal.suspect(record) for record in records)
    journal.note(records)
    batch = processor.process(records, before_each=one_at_a_time if careful else None, **options)
    journal.done(records)
    return batch
