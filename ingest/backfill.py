"""Backfilling history: `labelpulse import label-studio EXPORT.json` and `labelpulse import ndjson FILE`.

Each event is judged by the contract and sent to the events topic, keyed by its task, in chunks that Kafka
acknowledges before the next is sent: what the report counts as sent is in Kafka. Label Studio exports are mapped
with the webhooks' own event ids (ingest.label_studio.map_export), so importing a file twice, or history the
webhooks already delivered, stores nothing twice: the workers drop repeated ids.
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
        # In time order: the workers judge lateness against the newest event of each partition.
        events = sorted(label_studio.map_export(tasks), key=lambda event: datetime.fromisoformat(event["occurred_at"]))
        report = ImportReport(records=len(tasks))
        documents = ((event["event_id"], json.dumps(event, ensure_ascii=False).encode()) for event in events)
        return self._send(documents, report)

    def ndjson(self, path: Path) -> ImportReport:
        """Contract events, one per line, read as they are sent (any file size)."""
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

        async def send() -> None:
            publisher = KafkaPublisher(self.kafka, self.timeout_s, idempotence=self.idempotence)
            chunk: list[Outgoing] = []
            try:
                for where, raw in documents:
                    result = validate_event(raw, now=now, limits=self.limits)
                    if isinstance(result, EventError):
                        report.refused.append((where, result))
                        continue
                    report.accepted += 1
                    chunk.append(Outgoing(self.kafka.events_topic, result.task_id.encode(), raw))
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
