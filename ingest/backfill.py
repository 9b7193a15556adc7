"""Backfilling history: `labelpulse import label-studio EXPORT.json` and `labelpulse import ndjson FILE`.

Each event is judged by the contract (with no age limit: history is kept however old) and sent to the backfill
topic, keyed by its task like the events topic, in time order, in chunks that Kafka acknowledges before the next is
sent: what the report counts as sent is in Kafka. The workers read the backfill topic apart from the live events,
with event-time watermarks of its own: history in time order is never too late for derived metrics, and a big
import does not queue ahead of live events. Label Studio exports are mapped with the webhooks' own event ids
(ingest.label_studio.map_export), so importing a file twice, or history the webhooks already delivered, stores
nothing twice: the workers look each backfilled id up among the stored events and drop repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO

from ingest import label_studio
from ingest.publisher import KafkaPublisher, Outgoing
from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import create_topics
from schema.events import ContractLimits, EventError, validate_event

CHUNK = 1000  # events handed to Kafka, and acknowledged, at a time
RUN = 200_000  # events sorted in memory at a time (~100 MB); more are sorted in runs on disk, then merged
# An accepted event: occurred_at and event_id (the order it is sent in), its Kafka key, the document as read.
Accepted = tuple[datetime, str, bytes, bytes]


@dataclass
class ImportReport:
    records: int = 0  # tasks of an export, lines of an NDJSON file
    accepted: int = 0  # events the contract accepts
    sent: int = 0  # of those, acknowledged by Kafka
    handled: int = 0  # of those, through the sending step (sent, or in a dry run counted): the progress
    # How far reading and judging is, of how much (all of it is done before anything is sent): bytes of an NDJSON
    # file; events of an export (which is mapped to events at once)
    size: int = 0
    read: int = 0
    phase: str = "reading"  # then "sending", once every event is judged
    refused: list[tuple[str, EventError]] = field(default_factory=list)  # where (line, event id) and why


@dataclass(frozen=True)
class Importer:
    kafka: KafkaSettings
    limits: ContractLimits = ContractLimits()  # noqa: RUF009 - frozen
    timeout_s: float = 30.0
    idempotence: bool = True
    dry_run: bool = False
    progress: Callable[[ImportReport], None] = lambda report: None  # every CHUNK events read, and sent

    def label_studio(self, path: Path) -> ImportReport:
        """A Label Studio JSON export. Raises MalformedWebhook for a file that is not one, KafkaUnavailable (of
        ingest.publisher, or of kafka_admin.topics when the topics cannot be made) when Kafka does not acknowledge
        (what was reported sent before is in)."""
        try:
            tasks = json.loads(path.read_bytes())
        except ValueError as exc:
            raise label_studio.MalformedWebhook(f"{path} is not JSON: {exc}") from None
        events = label_studio.map_export(tasks)
        report = ImportReport(records=len(tasks), size=len(events))

        def documents() -> Iterator[tuple[str, bytes]]:
            for event in events:
                report.read += 1
                yield event["event_id"], json.dumps(event, ensure_ascii=False).encode()

        return self._send(documents(), report)

    def ndjson(self, path: Path) -> ImportReport:
        """Contract events, one per line, in any order (any file size: see in_time_order)."""
        report = ImportReport(size=path.stat().st_size)

        def lines() -> Iterator[tuple[str, bytes]]:
            with path.open("rb") as file:
                for number, line in enumerate(file, start=1):
                    report.records, report.read = number, report.read + len(line)
                    if line.strip():
                        yield f"line {number}", line.rstrip(b"\r\n")

        return self._send(lines(), report)

    def _send(self, documents: Iterable[tuple[str, bytes]], report: ImportReport) -> ImportReport:
        now = datetime.now(UTC)
        limits = self.limits.for_history()

        def accepted() -> Iterator[Accepted]:
            for judged, (where, raw) in enumerate(documents, start=1):
                result = validate_event(raw, now=now, limits=limits)
                if isinstance(result, EventError):
                    report.refused.append((where, result))
                else:
                    report.accepted += 1
                    yield result.occurred_at, result.event_id, result.task_id.encode(), raw
                if judged % CHUNK == 0:
                    self.progress(report)
            self.progress(report)  # all read
            report.phase = "sending"

        async def send() -> None:
            if not self.dry_run:  # with the events topic's partitions, not what the broker would auto-create
                await create_topics(self.kafka, self.timeout_s)
            publisher = KafkaPublisher(self.kafka, self.timeout_s, idempotence=self.idempotence)
            chunk: list[Outgoing] = []
            try:
                # In time order: the workers judge lateness against the newest event of each backfill partition.
                for _, _, key, raw in in_time_order(accepted()):
                    chunk.append(Outgoing(self.kafka.backfill_topic, key, raw))
                    if len(chunk) == CHUNK:
                        await self._flush(publisher, chunk, report)
                await self._flush(publisher, chunk, report)
            finally:
                await publisher.close()

        asyncio.run(send())
        return report

    async def _flush(self, publisher: KafkaPublisher, chunk: list[Outgoing], report: ImportReport) -> None:
        if chunk and not self.dry_run:
            await publisher.publish(chunk)
            report.sent += len(chunk)
        report.handled += len(chunk)
        chunk.clear()
        self.progress(report)


def in_time_order(events: Iterable[Accepted], run: int = RUN) -> Iterator[Accepted]:
    """The events by occurred_at, ties by event_id (the order derived metrics are defined on), holding at most
    `run` of them in memory: a longer input is sorted in runs written to temporary files, then merged."""
    iterator = iter(events)
    with contextlib.ExitStack() as files:
        runs: list[Iterator[Accepted]] = []
        while part := sorted(islice(iterator, run), key=_time_key):
            if not runs and len(part) < run:  # all of it fits in memory
                yield from part
                return
            file = files.enter_context(tempfile.TemporaryFile())
            for event in part:
                pickle.dump(event, file)
            file.seek(0)
            runs.append(_read_back(file))
        yield from heapq.merge(*runs, key=_time_key)


def _time_key(event: Accepted) -> tuple[datetime, str]:
    return event[0], event[1]


def _read_back(file: IO[bytes]) -> Iterator[Accepted]:
    """A run as written (by us, moments ago: unpickling it is safe)."""
    while True:
        try:
            yield pickle.load(file)
        except EOFError:
            return
