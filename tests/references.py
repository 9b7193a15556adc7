"""Expected answers computed independently of ClickHouse, with pandas, for tests to compare views with."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from clickhouse_connect.driver.client import Client

from schema.events import EventError, validate_event

# project_throughput_minute column -> the event_type it counts
THROUGHPUT_COLUMNS = {
    "tasks_created": "task_created",
    "annotations_submitted": "annotation_submitted",
    "annotations_skipped": "annotation_skipped",
    "reviews_completed": "review_completed",
    "tasks_completed": "task_completed",
}


def assert_throughput_per_minute_matches(client: Client, events: pd.DataFrame) -> None:
    """project_throughput_minute equals a pandas count of `events` (one row per valid event)."""
    got = client.query_df("SELECT * FROM project_throughput_minute ORDER BY project_id, minute")
    minutes = events.assign(minute=events["occurred_at"].dt.floor("min"))
    expected = (
        minutes.pivot_table(index=["project_id", "minute"], columns="event_type", values="event_id", aggfunc="count")
        .fillna(0)
        .astype(int)
        .reset_index()
    )
    assert len(got) == len(expected)
    for column, event_type in THROUGHPUT_COLUMNS.items():
        want = expected[event_type] if event_type in expected else pd.Series(0, index=expected.index)
        assert got[column].tolist() == want.tolist(), column


def expected_active_time(events: pd.DataFrame, idle_threshold_ms: int) -> pd.DataFrame:
    """Active ms and sessions per annotator, project and hour, from all annotation events sorted by
    time: gaps shorter than the threshold are active and credited to the later event; the first
    event and every event after a longer gap start a session."""
    work = events[
        events["event_type"].isin(["annotation_started", "annotation_submitted", "annotation_skipped"])
        & events["annotator_id"].fillna("").ne("")
    ].copy()
    work["ts_ms"] = work["occurred_at"].astype("datetime64[ms, UTC]").astype("int64")
    work = work.sort_values(["annotator_id", "ts_ms", "event_id"])
    gap = work.groupby("annotator_id")["ts_ms"].diff()
    work["active_ms"] = gap.where(gap < idle_threshold_ms, 0).fillna(0).astype("int64")
    work["sessions"] = (gap.isna() | (gap >= idle_threshold_ms)).astype("int64")
    work["hour"] = work["occurred_at"].dt.floor("h").dt.tz_localize(None)
    return (
        work.groupby(["annotator_id", "project_id", "hour"])[["active_ms", "sessions"]]
        .sum()
        .reset_index()
        .sort_values(["annotator_id", "project_id", "hour"], ignore_index=True)
    )


def expected_from(values: list[bytes]) -> tuple[pd.DataFrame, Counter[str]]:
    """Valid unique events as a DataFrame, and dead letters by rule — from the validator alone."""
    valid, refused, seen = [], Counter[str](), set()
    for value in values:
        result = validate_event(value)
        if isinstance(result, EventError):
            refused[result.rule] += 1
        elif result.event_id not in seen:
            seen.add(result.event_id)
            valid.append(json.loads(value))
    frame = pd.DataFrame(valid)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame, refused


def expected_review_rounds(events: pd.DataFrame) -> pd.DataFrame:
    """Per reviewed annotator: reviews, first-pass acceptances (accepted, no earlier rejection of the
    task) and rework reviews (round 2 or later), from reviews in the order they were sent."""
    reviews = events[events["event_type"] == "review_completed"].copy()
    by_task = reviews.groupby("task_id")
    reviews["round"] = by_task.cumcount() + 1
    rejected = reviews["verdict"].eq("rejected")
    reviews["rejected_before"] = rejected.groupby(reviews["task_id"]).transform(
        lambda flags: flags.shift(fill_value=False).cummax()
    )
    reviews["first_pass"] = reviews["verdict"].eq("accepted") & ~reviews["rejected_before"]
    reviews["rework"] = reviews["round"] > 1
    return (
        reviews.groupby("annotator_id")
        .agg(reviews=("verdict", "size"), first_pass_accepted=("first_pass", "sum"), rework_reviews=("rework", "sum"))
        .sort_index()
    )
