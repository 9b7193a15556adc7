"""What every tool's webhook mapping shares: its result, its refusal, how it reads fields and times, and how
it builds an event and its id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class MalformedWebhook(ValueError):
    """The body is not a webhook (or export) of the tool we can read; the message says what and where."""


@dataclass(frozen=True)
class Delivery:
    """What one webhook delivery maps to: contract documents, or why it maps to nothing."""

    action: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: str = ""  # why nothing was mapped; empty when events were


def iso_time(container: dict[str, Any], key: str, where: str) -> str:
    """`container[key]` as an ISO 8601 time with its zone, or MalformedWebhook naming where."""
    value = container.get(key)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise MalformedWebhook(f"{where}: '{key}' must be an ISO 8601 time with a zone, got {value!r:.80}")
    return moment.isoformat()


def json_object(body: bytes) -> dict[str, Any]:
    """A webhook's body as the JSON object every tool sends. Raises MalformedWebhook."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhook(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedWebhook(f"body must be a JSON object, got {type(document).__name__}")
    return document


def require_object(container: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """`container[key]`, which must be a JSON object; else MalformedWebhook naming where."""
    value = container.get(key)
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{where}: '{key}' must be an object, got {value!r:.80}")
    return value


def require_int_id(container: Any, key: str, where: str) -> str:
    """`container[key]`, an integer id (not a bool), as text; else MalformedWebhook naming where."""
    value = container.get(key) if isinstance(container, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedWebhook(f"{where}: '{key}' must be an integer id, got {value!r:.80}")


def require_text(container: dict[str, Any], key: str, where: str) -> str:
    """`container[key]`, a non-empty string; else MalformedWebhook naming where."""
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"{where}: '{key}' must be a non-empty string, got {value!r:.80}")
    return value


def derived_id(prefix: str, *parts: str) -> str:
    """An event id made from what the event is about, so the same fact gets the same id whichever delivery (or
    backfill) carries it, and the workers drop the repeat."""
    return f"{prefix}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:32]}"


def event_skeleton(
    source_system: str, event_type: str, event_id: str, project_id: str, task_id: str = ""
) -> dict[str, Any]:
    """The fields every mapped event starts with (task_id only where there is one)."""
    document: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "project_id": project_id,
    }
    if task_id:
        document["task_id"] = task_id
    return document | {"source_system": source_system}
