"""What the command line shows people: progress lines and plain text tables."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any


def say(line: str) -> None:
    """Progress for the user, shown at once even when stdout is a pipe or a log file."""
    print(line, flush=True)


def plain(value: Any) -> Any:
    """A value as text or a JSON scalar: times in ISO 8601, decimals and UUIDs as text, bytes decoded."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def render_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A plain text table: numbers right-aligned, NULL shown as NULL, long cells cut."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(plain(value))
        text = text.replace("\n", "\\n")
        return text if len(text) <= 60 else text[:59] + "…"

    cells = [[cell(value) for value in row] for row in rows]
    numeric = [
        any(row[i] is not None for row in rows)
        and all(isinstance(row[i], int | float | decimal.Decimal) for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " │ ".join(
            value.rjust(width) if numeric[i] else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    rule = "─┼─".join("─" * width for width in widths)
    return "\n".join([line(columns), rule, *(line(row) for row in cells)])
