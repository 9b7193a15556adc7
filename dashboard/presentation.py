"""How the views present numbers: text, changes against the previous period, outlier flags, alert episodes.

Pure, on plain numbers and DataFrames. The metrics themselves are defined once, in schema.metric_definitions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd

from schema.metric_definitions import eta_hours


def eta(backlog: int, completed_per_hour: float) -> timedelta | None:
    """schema.metric_definitions.eta_hours as a duration; None when it would never clear."""
    hours = eta_hours(backlog, completed_per_hour)
    return None if math.isinf(hours) else timedelta(hours=hours)


def delta(current: float | None, previous: float | None) -> float | None:
    """Relative change against the previous period, or None when there is no previous value."""
    if current is None or not previous:
        return None
    return (current - previous) / previous


def bar_range(target: float) -> tuple[float, float]:
    """The min and max of a progress bar for a share held to `target`: the bar's middle, where Streamlit's
    "auto" colour turns from red to green (green only above it), lies just under the target, so a share that
    meets the target is green."""
    middle = min(max(target, 0.01), 0.99) - 1e-9  # a bar needs some width on each side of its middle
    return (2 * middle - 1, 1.0) if middle >= 0.5 else (0.0, 2 * middle)


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "never at the current rate"
    minutes = value.total_seconds() / 60
    if minutes < 1:
        return "done" if value.total_seconds() == 0 else "< 1 min"
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def format_age(seconds: float) -> str:
    """How long ago, for freshness: seconds, then minutes, then hours."""
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_count(value: float | None) -> str:
    """Readable at any size: 1,234 / 12.3k / 4.5M / 7.8B."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    for threshold, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / unit:.1f}{suffix}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def format_share(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def alert_episodes(transitions: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Firing episodes overlapping [start, end) from transitions into firing / resolved, one row per
    episode: rule, labels, project, summary, fired_at, resolved_at (None while still firing)."""
    rows = []
    for _, group in transitions.sort_values("at").groupby("fingerprint", sort=False):
        episode: dict | None = None
        for row in group.itertuples():
            if row.state == "firing":
                episode = {"rule": row.rule, "labels": dict(row.labels), "summary": row.summary, "fired_at": row.at}
            elif row.state == "resolved" and episode is not None:
                rows.append({**episode, "resolved_at": row.at})
                episode = None
        if episode is not None:
            rows.append({**episode, "resolved_at": None})
    columns = ["rule", "labels", "project", "summary", "fired_at", "resolved_at"]
    episodes = pd.DataFrame(rows, columns=[c for c in columns if c != "project"])
    episodes["project"] = [labels.get("project", "") for labels in episodes["labels"]]
    start_ts, end_ts = pd.Timestamp(start).tz_localize(None), pd.Timestamp(end).tz_localize(None)
    ends = pd.to_datetime(episodes["resolved_at"]).astype("datetime64[ns]").fillna(end_ts)
    overlapping = (pd.to_datetime(episodes["fired_at"]) < end_ts) & (ends > start_ts)
    return episodes.loc[overlapping, columns].reset_index(drop=True)
