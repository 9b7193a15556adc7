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
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest import label_studio
from ingest.publisher import KafkaPublisher, Outgoing
from kafka_admin.settings import KafkaSettings
from schema.events import ContractLimits, EventError, validate_event

CHUNK = 1000  # events handed to Kafka, and acknowledged, at a time


@dataclass
class ImportReport:
    records: int = 0  # tasks of an export, lines of an NDJSON file
    accepted: int = 0  # events the contract accepts
    sent: int = 0  # of those, acknowledged by Kafka
    refused: list[tuple[str, EventError]] = field(default_factory=list)  # where (line, event id) and why


@dataclass(frozen=True)
class Importer:
    kafka: KafkaSettings
    limits: ContractLimits = ContractLimits()  # noqa: RUF009 - frozen
    timeout_s: float = 30.0
    idempotence: bool = True
    dry_run: bool = False
    progress: Callable[[ImportReport], None] = lambda report: None  # after each chunk

    def label_studio(self, path: Path) -> ImportReport:
        """A Label Studio JSON export. Raises MalformedWebhook for a file that is not one, KafkaUnavailable when
        Kafka does not acknowledge (what was reported sent before is in)."""
        try:
            tasks = json.loads(path.read_bytes())
        except ValueError as exc:
            raise label_studio.MalformedWebhook(f"{path} is not JSON: {exc}") from None
        report = ImportReport(records=len(tasks))
        events = label_studio.map_export(tasks)
        documents = ((event["event_id"], json.dumps(event, ensure_ascii=False).encode()) for event in events)
        return self._send(documents, report)

    def ndjson(self, path: Path) -> ImportReport:
        """Contract events, one per line, in any order."""
        report = ImportReport()

        def lines() -> Iterator[tuple[str, bytes]]:
            with path.open("rb") as file:
                for number, line in enumerate(file, start=1):
                    report.records = number
                    if line.strip():
                        yield f"line {number}", line.rstrip(b"\r\n")

        return self._send(lines(), report)

    def _send(self, documents: Iterable[tuple[str, bytes]], report: ImportReport) -> ImportReport:
        now = datetime.now(UTC)
        limits = self.limits.for_history()
        accepted: list[tuple[datetime, str, bytes, bytes]] = []
        for where, raw in documents:
            result = validate_event(raw, now=now, limits=limits)
            if isinstance(result, EventError):
                report.refused.append((where, result))
                continue
            report.accepted += 1
            accepted.append((result.occurred_at, result.event_id, result.task_id.encode(), raw))
        # In time order (ties by id, as the derived metrics order them): the workers judge lateness against the
        # newest event of each backfill partition. Sorting holds the accepted events in memory (about the file's
        # size); split a file larger than memory by time, and import the parts oldest first.
        accepted.sort(key=lambda item: item[:2])

        async def send() -> None:
            publisher = KafkaPublisher(self.kafka, self.timeout_s, idempotence=self.idempotence)
            chunk: list[Outgoing] = []
            try:
                for _, _, key, raw in accepted:
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
        chunk.clear()
        self.progress(report)
