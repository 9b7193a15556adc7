"""What the command line shows people: progress lines and plain text tables."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any, TextIO


def say(line: str) -> None:
    """Progress for the user, shown at once even when stdout is a pipe or a log file."""
    print(line, flush=True)


class Progress:
    """Long work's progress: on a terminal one line per phase, rewritten in place, with a bar, the percentage and
    the counts; elsewhere (a pipe, a log, CI) a plain line each time a phase reaches another tenth of its total."""

    def __init__(self, stream: TextIO, live: bool, width: int = 24) -> None:
        self.stream, self.live, self.width = stream, live, width
        self._phase = ""  # the phase shown last
        self._tenths: dict[str, int] = {}  # off a terminal: the last tenth shown, per phase

    def update(self, phase: str, done: int, total: int, counts: str) -> None:
        percent = min(100, 100 * done // total) if total > 0 else 100
        if self.live:
            if self._phase and phase != self._phase:
                print(file=self.stream)  # the finished phase's line stays
            line = f"{phase} {bar(done, total, self.width)} {percent:3d}% {counts}"
            print(f"\r  {line}\x1b[K", end="", file=self.stream, flush=True)
        elif percent // 10 > self._tenths.get(phase, -1):
            self._tenths[phase] = percent // 10
            print(f"  {phase} {percent:3d}% {counts}", file=self.stream, flush=True)
        self._phase = phase

    def close(self) -> None:
        """Ends the line being rewritten (on a terminal)."""
        if self.live and self._phase:
            print(file=self.stream, flush=True)
        self._phase = ""


def bar(done: int, total: int, width: int) -> str:
    """A progress bar `width` characters inside its brackets: [######------]. Full when there is nothing to do."""
    filled = width * min(done, total) // total if total > 0 else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def size_text(size: int) -> str:
    """A number of bytes for people: 512 B, 1.2 KB, 80.0 MB."""
    amount = float(size)
    for unit in ("B", "KB", "MB"):
        if amount < 1024:
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


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
