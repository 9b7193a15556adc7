"""Expected answers computed independently of ClickHouse, with pandas, for tests to compare views with."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client

from schema.events import ContractLimits, EventError, validate_event

# project_throughput_minute column -> the event_type it counts
THROUGHPUT_COLUMNS = {
    "tasks_created": "task_created",
    "annotations_submitted": "annotation_submitted",
    "annotations_skipped": "annotation_skipped",
    "reviews_completed": "review_completed",
    "tasks_completed": "task_completed",
    "annotations_updated": "annotation_updated",
    "annotations_deleted": "annotation_deleted",
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
    got_keys = set(zip(got["project_id"], got["minute"].dt.tz_localize(None), strict=True))
    want_keys = set(zip(expected["project_id"], expected["minute"].dt.tz_localize(None), strict=True))
    only_stored, only_sent = sorted(got_keys - want_keys)[:5], sorted(want_keys - got_keys)[:5]
    assert got_keys == want_keys, f"minutes only stored: {only_stored}, only sent: {only_sent}"
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


def expected_from(
    values: list[bytes],
    limits: ContractLimits = ContractLimits(),  # noqa: B008 - frozen
) -> tuple[pd.DataFrame, Counter[str]]:
    """Valid unique events as a DataFrame, and dead letters by rule — from the validator alone."""
    valid, refused, seen = [], Counter[str](), set()
    for value in values:
        result = validate_event(value, limits=limits)
        if isinstance(result, EventError):
            refused[result.rule] += 1
        elif result.event_id not in seen:
            seen.add(result.event_id)
            valid.append(json.loads(value))
    frame = pd.DataFrame(valid)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame, refused


MAX_HANDLE_TIME_MS = 86_400_000
REVIEW_COLUMNS = [
    "project_id", "task_id", "annotator_id", "reviewer_id", "event_id", "ts_ms", "round", "verdict", "first_pass",
    "rework",
]  # fmt: skip


def sorted_events(events: pd.DataFrame) -> pd.DataFrame:
    """The events in the one order every derived metric is defined on: occurred_at, ties by event_id."""
    frame = events.copy()
    frame["ts_ms"] = frame["occurred_at"].astype("datetime64[ms, UTC]").astype("int64")
    for column in ("annotator_id", "reviewer_id", "label", "gold_label", "verdict"):
        if column not in frame:
            frame[column] = None
    return frame.sort_values(["ts_ms", "event_id"], kind="stable", ignore_index=True)


def _label(value: object) -> object:
    """A label as stored: a class name as is, a structured one as canonical JSON."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return value


def expected_handle_times(events: pd.DataFrame) -> set[tuple[object, ...]]:
    """(project, annotator, task, submission_id, submitted_ms, handle_ms, measured_by) of every submission with
    a handle time: the tool's duration_ms, else the time since the annotator's latest start on the task before
    it (at most a day)."""
    frame = sorted_events(events)
    rows = set()
    latest_start: dict[tuple[str, str], int] = {}
    for event in frame.itertuples():
        key = (event.task_id, event.annotator_id)
        if event.event_type == "annotation_started":
            latest_start[key] = event.ts_ms
        elif event.event_type == "annotation_submitted":
            duration = getattr(event, "duration_ms", None)
            if duration is not None and not pd.isna(duration):
                rows.add((event.project_id, event.annotator_id, event.task_id, event.event_id, event.ts_ms,
                          int(duration), "tool"))  # fmt: skip
            elif key in latest_start and 0 <= event.ts_ms - latest_start[key] <= MAX_HANDLE_TIME_MS:
                rows.add((event.project_id, event.annotator_id, event.task_id, event.event_id, event.ts_ms,
                          event.ts_ms - latest_start[key], "start_to_submit"))  # fmt: skip
    return rows


def expected_gold_answers(events: pd.DataFrame) -> set[tuple[object, ...]]:
    """(project, annotator, task, submission_id, answered_ms, label, gold_label, correct) of every submission
    on a task with a gold label: its own, else the one of the task's earliest gold task_created."""
    frame = sorted_events(events)
    is_gold = frame["is_gold"].fillna(False).astype(bool) if "is_gold" in frame else pd.Series(False, frame.index)
    declared = frame[(frame["event_type"] == "task_created") & is_gold]
    task_gold = {task: _label(label) for task, label in declared.groupby("task_id")["gold_label"].first().items()}
    rows = set()
    submissions = frame[frame["event_type"] == "annotation_submitted"]
    for index, event in submissions.iterrows():
        own = _label(event["gold_label"]) if is_gold[index] and event["gold_label"] is not None else None
        gold = own if own is not None else task_gold.get(event["task_id"])
        if gold is not None:
            label = _label(event["label"])
            rows.add((event["project_id"], event["annotator_id"], event["task_id"], event["event_id"],
                      event["ts_ms"], label, gold, label == gold))  # fmt: skip
    return rows


def expected_review_rows(events: pd.DataFrame) -> set[tuple[object, ...]]:
    """(project, task, annotator, reviewer, review_id, reviewed_ms, round, verdict, first_pass, rework) of every
    review, judged per (task, annotator) on the reviews sorted by time."""
    reviews = sorted_events(events)
    reviews = reviews[reviews["event_type"] == "review_completed"].copy()
    by_work = reviews.groupby(["task_id", "annotator_id"], sort=False)
    reviews["round"] = by_work.cumcount() + 1
    rejected = reviews["verdict"].eq("rejected")
    reviews["rework"] = rejected.groupby([reviews["task_id"], reviews["annotator_id"]]).transform(
        lambda flags: flags.shift(fill_value=False).cummax()
    )
    reviews["first_pass"] = reviews["verdict"].eq("accepted") & ~reviews["rework"]
    return {tuple(row) for row in reviews[REVIEW_COLUMNS].itertuples(index=False, name=None)}


def first_answers(events: pd.DataFrame) -> pd.DataFrame:
    """Each annotator's first answer (earliest submission) on each task two or more annotators answered."""
    frame = sorted_events(events)
    submissions = frame[frame["event_type"] == "annotation_submitted"].copy()
    submissions["label"] = submissions["label"].map(_label)
    first = submissions.drop_duplicates(["task_id", "annotator_id"], keep="first")
    return first.groupby("task_id").filter(lambda answers: len(answers) >= 2)


def expected_agreement_rows(events: pd.DataFrame) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """task_agreement rows (project, task, labeled_ms, raters, label counts, agreeing pairs) and pair_agreement
    rows (project, task, labeled_ms, a, b, label_a, label_b) from the first answers."""
    tasks, pairs = set(), set()
    for task_id, answers in first_answers(events).groupby("task_id"):
        counts = answers["label"].value_counts()
        project = answers["project_id"].iloc[0]
        tasks.add((project, task_id, int(answers["ts_ms"].max()), len(answers),
                   tuple(sorted((label, int(n)) for label, n in counts.items())),
                   int(sum(n * (n - 1) for n in counts))))  # fmt: skip
        ordered = answers.sort_values("annotator_id")
        for (_, a), (_, b) in itertools.combinations(ordered.iterrows(), 2):
            pairs.add((project, task_id, int(max(a["ts_ms"], b["ts_ms"])), a["annotator_id"], b["annotator_id"],
                       a["label"], b["label"]))  # fmt: skip
    return tasks, pairs


def expected_review_rounds(events: pd.DataFrame) -> pd.DataFrame:
    """Per reviewed annotator: reviews, first-pass acceptances and rework reviews (after a rejection of the
    same work), judged per (task, annotator) on the reviews sorted by time."""
    rows = pd.DataFrame(
        sorted(expected_review_rows(events)),
        columns=REVIEW_COLUMNS,
    )
    return (
        rows.groupby("annotator_id")
        .agg(reviews=("verdict", "size"), first_pass_accepted=("first_pass", "sum"), rework_reviews=("rework", "sum"))
        .sort_index()
    )


# -- the analyst views against the references ------------------------------------------------------

WIDE_WINDOW = {"from": "2000-01-01 00:00:00", "to": "2100-01-01 00:00:00"}


def _rows(client: Client, sql: str, parameters: dict[str, str] | None = None) -> set[tuple[object, ...]]:
    """Rows of a query, times as epoch ms and maps as sorted pairs, to compare with the references."""
    out = set()
    for row in client.query(sql, parameters=parameters).result_rows:
        values = []
        for value in row:
            if hasattr(value, "timestamp"):
                value = round(value.timestamp() * 1000)
            elif isinstance(value, dict):
                value = tuple(sorted(value.items()))
            values.append(value)
        out.add(tuple(values))
    return out


def assert_derived_views_match(client: Client, events: pd.DataFrame) -> None:
    """Every derived analyst view equals the reference computed from the events sorted by time: rows exactly,
    quantiles exactly as pandas computes them, agreement to 1e-9 of statsmodels and the krippendorff package."""
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa

    handle = expected_handle_times(events)
    assert _rows(client, "SELECT * FROM handle_times") == handle
    gold = expected_gold_answers(events)
    assert _rows(client, "SELECT * FROM gold_answers") == gold
    reviews = expected_review_rows(events)
    assert _rows(client, "SELECT * FROM review_rounds") == reviews
    tasks, pairs = expected_agreement_rows(events)
    assert _rows(client, "SELECT * FROM task_agreement") == tasks
    assert _rows(client, "SELECT * FROM pair_agreement") == pairs

    def hour(ts_ms: object) -> int:
        return int(ts_ms) // 3_600_000 * 3_600_000  # type: ignore[call-overload]

    timed = pd.DataFrame(sorted(handle), columns=["project_id", "annotator_id", "task_id", "id", "ts", "ms", "by"])
    timed["hour"] = timed["ts"].map(hour)
    per_hour = timed.groupby(["project_id", "annotator_id", "hour"])["ms"]
    want_handle = {
        key: (float(values.quantile(0.5)), float(values.quantile(0.9)), float(values.mean()))
        for key, values in per_hour
    }
    got_handle = {
        (project, annotator, at): (p50, p90, mean)
        for project, annotator, at, p50, p90, mean in _rows(
            client,
            "SELECT project_id, annotator_id, hour, handle_time_p50_ms, handle_time_p90_ms, handle_time_mean_ms "
            "FROM annotator_productivity_hour WHERE handle_time_mean_ms IS NOT NULL",
        )
    }
    assert got_handle.keys() == want_handle.keys()
    for key, want in want_handle.items():
        assert got_handle[key] == pytest.approx(want, abs=1e-9), key

    judged = pd.DataFrame(sorted(reviews), columns=REVIEW_COLUMNS)
    judged["hour"] = judged["ts_ms"].map(hour)
    want_rounds = {
        key: (len(group), int(group["first_pass"].sum()), int(group["rework"].sum()), int(group["round"].max()))
        for key, group in judged.groupby(["project_id", "annotator_id", "hour"])
    }
    got_rounds = {
        (project, annotator, at): (n, first_pass, rework, most)
        for project, annotator, at, n, first_pass, rework, most in _rows(
            client,
            "SELECT project_id, annotator_id, hour, reviews, first_pass_accepted, rework_reviews, max_round "
            "FROM first_pass_hour WHERE reviews != 0",
        )
    }
    assert got_rounds == want_rounds

    answers = pd.DataFrame(sorted(gold), columns=["project_id", "annotator_id", "t", "id", "ts", "l", "g", "correct"])
    answers["hour"] = answers["ts"].map(hour)
    want_gold = {
        key: (len(group), int(group["correct"].sum()))
        for key, group in answers.groupby(["project_id", "annotator_id", "hour"])
    }
    got_gold = {
        (project, annotator, at): (n, correct)
        for project, annotator, at, n, correct in _rows(
            client,
            "SELECT project_id, annotator_id, hour, gold_answers, gold_correct FROM gold_accuracy_hour "
            "WHERE gold_answers != 0",
        )
    }
    assert got_gold == want_gold

    first = first_answers(events)
    summary = client.query_df(
        "SELECT * FROM agreement_summary(from={from:String}, to={to:String})", parameters=WIDE_WINDOW
    ).set_index("project_id")
    assert set(summary.index) == set(first["project_id"])
    for project, group in first.groupby("project_id"):
        assert summary.loc[project, "tasks"] == group["task_id"].nunique()
        assert summary.loc[project, "ratings"] == len(group)
        if group["label"].nunique() == 1:  # one label: no disagreement to expect, alpha undefined
            assert pd.isna(summary.loc[project, "krippendorff_alpha"])
            continue
        matrix = group.pivot(index="annotator_id", columns="task_id", values="label")
        codes = {label: float(i) for i, label in enumerate(sorted(group["label"].unique()))}
        alpha = krippendorff.alpha(
            reliability_data=matrix.replace(codes).to_numpy(dtype=float), level_of_measurement="nominal"
        )
        assert summary.loc[project, "krippendorff_alpha"] == pytest.approx(alpha, abs=1e-9)
    kappas = client.query_df(
        "SELECT * FROM pair_kappa(from={from:String}, to={to:String})", parameters=WIDE_WINDOW
    ).to_dict("records")
    assert len(kappas) == len({(project, a, b) for project, _, _, a, b, _, _ in pairs})
    for row in kappas:
        both = [(la, lb) for p, _, _, a, b, la, lb in pairs if (p, a, b) == (row["project_id"], *_pair(row))]
        labels = sorted({label for pair in both for label in pair})
        table = pd.crosstab(
            pd.Categorical([x for x, _ in both], categories=labels),
            pd.Categorical([y for _, y in both], categories=labels),
            dropna=False,
        ).to_numpy()
        assert row["items"] == len(both)
        with np.errstate(invalid="ignore", divide="ignore"):  # statsmodels' standard errors of a 1x1 table
            kappa = cohens_kappa(table).kappa
        if row["cohen_kappa"] is None or pd.isna(row["cohen_kappa"]):
            assert len(labels) == 1, row  # chance agreement 1: no kappa
        else:
            assert row["cohen_kappa"] == pytest.approx(kappa, abs=1e-9), row


def _pair(row: dict[str, object]) -> tuple[object, object]:
    return row["annotator_a"], row["annotator_b"]
