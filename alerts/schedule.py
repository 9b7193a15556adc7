"""When a rule may fire: working hours and weekdays, in UTC (rule params `working_hours`, `weekdays`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


@dataclass(frozen=True)
class Schedule:
    start_minute: int = 0  # minutes after midnight, UTC, inclusive
    end_minute: int = 24 * 60  # exclusive; may be before start for a shift over midnight
    weekdays: frozenset[int] = frozenset(range(7))  # Monday = 0

    def contains(self, moment: datetime) -> bool:
        minute = moment.hour * 60 + moment.minute
        if self.start_minute <= self.end_minute:
            in_hours = self.start_minute <= minute < self.end_minute
        else:
            in_hours = minute >= self.start_minute or minute < self.end_minute
        return in_hours and moment.weekday() in self.weekdays

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Schedule:
        """The schedule of a rule's params `working_hours` and `weekdays`, as alerts.rules parsed them."""
        start, end = params["working_hours"]
        return cls(start, end, params["weekdays"])


def parse_hours(text: str) -> tuple[int, int]:
    """'07:00-19:00' → (420, 1140); '22:00-06:00' spans midnight; '00:00-24:00' is all day."""
    match = _HOURS.match(str(text).strip())
    if not match:
        raise ValueError(f"expected working hours like 07:00-19:00 (UTC), got {text!r}")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r} is not a time range within a day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{text!r} is an empty range; use 00:00-24:00 for all day")
    return start, end


def parse_weekdays(text: str) -> frozenset[int]:
    """'mon-fri', 'sat,sun', 'mon-wed,fri' → weekday numbers (Monday = 0); ranges may wrap (fri-mon)."""
    days: set[int] = set()
    for part in str(text).lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"expected weekdays like mon-fri or sat,sun, got {text!r}")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(day % 7 for day in range(a, b + 1 if b >= a else b + 8))
    return frozenset(days)
