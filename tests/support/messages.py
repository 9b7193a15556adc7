"""Contract events and Kafka messages built by hand, for the worker's pure parts."""

from __future__ import annotations

import json
from typing import Any

from streams.processor import Message


def event(event_id: str = "e1", event_type: str = "annotation_submitted", **fields: Any) -> bytes:
    document = {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2026-11-23T11:00:00Z",
        "project_id": "p",
        "task_id": "t1",
        "annotator_id": "a1",
        "label": "cat",
        **fields,
    }
    return json.dumps(document).encode()


def message(value: bytes | None, partition: int = 0, offset: int = 0, key: bytes | None = b"t1") -> Message:
    return Message("events", partition, offset, key, value)
