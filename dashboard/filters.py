"""Filters <-> URL query parameters, so a link reproduces the view. Pure.

?range=6h                                  a quick range ending now
?range=custom&from=2026-11-01T00:00&to=…   a fixed range (UTC, ISO 8601)
&project=a&project=b&annotator=…&label=…&source=manual
&refresh=30                                seconds between refreshes; 0 pauses
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schema.queries import Filters

QUICK_RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RANGE_LABELS = {
    "15m": "Last 15 minutes",
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "custom": "Custom range",
}
DEFAULT_RANGE = "6h"
REFRESH_CHOICES = (0, 5, 10, 30, 60, 300)
SOURCES = ("manual", "model_assisted", "imported")
MAX_VALUES = 200  # values per list parameter: a URL is not a bulk-export channel


@dataclass(frozen=True)
class ViewState:
    filters: Filters
    range_key: str
    refresh_s: int
    problems: tuple[str, ...] = ()  # what in the URL was ignored, and why


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def from_params(get_all: Callable[[str], list[str]], now: datetime, default_refresh_s: int) -> ViewState:
    """The view a URL asks for. Values that make no sense are reported and replaced by defaults;
    they never raise."""
    problems: list[str] = []

    def one(name: str) -> str | None:
        values = get_all(name)
        return values[-1] if values else None

    range_key = one("range") or DEFAULT_RANGE
    if range_key not in RANGE_LABELS:
        problems.append(f"range={range_key!r} is not one of {', '.join(RANGE_LABELS)}; showing the last 6 hours")
        range_key = DEFAULT_RANGE
    end = now
    start = now - QUICK_RANGES.get(range_key, QUICK_RANGES[DEFAULT_RANGE])
    if range_key == "custom":
        try:
            start, end = _parse_time(one("from") or ""), _parse_time(one("to") or "")
            if start >= end:
                raise ValueError("from must be before to")
            if end - start > timedelta(days=3660):
                raise ValueError("at most ten years")
        except ValueError as error:
            problems.append(f"custom range from={one('from')!r} to={one('to')!r}: {error}; showing the last 6 hours")
            range_key, start, end = DEFAULT_RANGE, now - QUICK_RANGES[DEFAULT_RANGE], now

    def many(name: str) -> tuple[str, ...]:
        values = [value for value in get_all(name) if value != ""]
        if len(values) > MAX_VALUES:
            problems.append(f"only the first {MAX_VALUES} {name} values are used")
        return tuple(dict.fromkeys(values[:MAX_VALUES]))

    sources = many("source")
    unknown = [source for source in sources if source not in SOURCES]
    if unknown:
        problems.append(f"source {', '.join(map(repr, unknown))} unknown (one of {', '.join(SOURCES)}); ignored")
        sources = tuple(source for source in sources if source in SOURCES)

    refresh_s = default_refresh_s
    raw_refresh = one("refresh")
    if raw_refresh is not None:
        try:
            refresh_s = int(raw_refresh)
            if refresh_s < 0 or refresh_s > 3600:
                raise ValueError
        except ValueError:
            problems.append(f"refresh={raw_refresh!r} must be 0 (paused) to 3600 seconds; using {default_refresh_s}")
            refresh_s = default_refresh_s
    filters = Filters(start, end, many("project"), many("annotator"), many("label"), sources)
    return ViewState(filters, range_key, refresh_s, tuple(problems))


def to_params(state: ViewState) -> dict[str, str | list[str]]:
    """The URL parameters that reproduce `state` (quick ranges stay relative to now)."""
    params: dict[str, str | list[str]] = {"range": state.range_key}
    if state.range_key == "custom":
        params["from"] = state.filters.start.strftime("%Y-%m-%dT%H:%M")
        params["to"] = state.filters.end.strftime("%Y-%m-%dT%H:%M")
    for name, values in (
        ("project", state.filters.projects),
        ("annotator", state.filters.annotators),
        ("label", state.filters.labels),
        ("source", state.filters.sources),
    ):
        if values:
            params[name] = list(values)
    params["refresh"] = str(state.refresh_s)
    return params
