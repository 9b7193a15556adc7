"""Events stored straight into ClickHouse at chosen times, for the alert conditions and their evaluator."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.offline import load

NOW = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)  # a Monday, mid-day, mid-minute


def event(event_type: str, at: datetime, project: str = "p", task: str | None = None, **fields: Any) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": at.isoformat(),
            "project_id": project,
            "task_id": task or f"t-{uuid.uuid4().hex[:8]}",
            **fields,
        }
    ).encode()


def store(client: Client, values: list[bytes], received_at: datetime = NOW) -> None:
    # A topic of its own per call: the sink drops offsets it has stored before as replays.
    load(values, lambda: client, now=received_at, topic=f"crafted-{uuid.uuid4().hex[:8]}")
