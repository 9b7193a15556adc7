"""The dead-letter topic's wire format: the headers a refused message's copy carries, written by ingest and by
the workers alike, so a reader of the topic finds the same headers whoever refused the message."""

from __future__ import annotations

REASON_CHARS = 4096  # a reason is a sentence; a longer one is cut rather than let it crowd out the message


def dead_letter_copy(
    value: bytes, *, rule: str, reason: str, source: str, room: int, whole_at: str | None = None
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The value and headers of a refused message's copy: `rule` it broke, `reason` in words, `source` it came
    from. A value larger than `room` bytes (what the producer may still send) is cut, and a header says so and,
    when known, `whole_at` where the original is."""
    headers = [
        ("labelpulse-rule", rule.encode()),
        ("labelpulse-reason", reason[:REASON_CHARS].encode()),
        ("labelpulse-source", source.encode()),
    ]
    if len(value) > room:
        where = f"; whole at {whole_at}" if whole_at else ""
        headers.append(("labelpulse-truncated", f"{len(value)} bytes cut to {room}{where}".encode()))
        value = value[:room]
    return value, headers
