"""Backfilling history from a labeling tool's export: `labelpulse import label-studio EXPORT.json`.

The export is mapped with the webhooks' own event ids (ingest.label_studio.map_export), judged by the contract,
and sent to the events topic; what Kafka has not acknowledged is not counted as sent. Importing the same export
twice, or history that live webhooks already delivered, stores nothing twice: the workers drop repeated ids.
"""

from __future__ import annotations

import asyncio
import json
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
    tasks: int = 0
    accepted: int = 0  # events the contract accepts
    sent: int = 0  # of those, acknowledged by Kafka
    refused: list[EventError] = field(default_factory=list)


def import_label_studio(
    path: Path,
    kafka: KafkaSettings,
    *,
    limits: ContractLimits = ContractLimits(),  # noqa: B008 - frozen
    timeout_s: float = 30.0,
    idempotence: bool = True,
    dry_run: bool = False,
) -> ImportReport:
    """Map, judge and (unless `dry_run`) send a Label Studio JSON export. Raises MalformedWebhook for a file
    that is not one, KafkaUnavailable when Kafka does not acknowledge (what was reported sent before is in)."""
    try:
        tasks = json.loads(path.read_bytes())
    except ValueError as exc:
        raise label_studio.MalformedWebhook(f"{path} is not JSON: {exc}") from None
    events = label_studio.map_export(tasks)
    report = ImportReport(tasks=len(tasks))
    now = datetime.now(UTC)
    accepted: list[Outgoing] = []
    for document in events:
        raw = json.dumps(document, ensure_ascii=False).encode()
        result = validate_event(raw, now=now, limits=limits)
        if isinstance(result, EventError):
            report.refused.append(result)
        else:
            accepted.append(Outgoing(kafka.events_topic, result.task_id.encode(), raw))
    report.accepted = len(accepted)
    if dry_run:
        return report

    async def send() -> None:
        publisher = KafkaPublisher(kafka, timeout_s, idempotence=idempotence)
        try:
            for start in range(0, len(accepted), CHUNK):
                await publisher.publish(accepted[start : start + CHUNK])
                report.sent += len(accepted[start : start + CHUNK])
        finally:
            await publisher.close()

    asyncio.run(send())
    return report
