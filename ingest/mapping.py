"""What every tool's webhook mapping shares: its result, its refusal, and how it reads times."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The contract's limit on duration_ms: more than a day of work on one item is a broken clock.
MAX_DURATION_MS = 86_400_000


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
