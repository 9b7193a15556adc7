"""Raw events in, analyst views out: the numbers equal an independent pandas computation."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client

from schema import metric_definitions as metric
from schema import migrations, queries
from schema.client import ClickHouseSettings, connect
from schema.events import EventError, validate_event
from schema.rows import EVENT_COLUMNS, epoch_ms, event_row
from streams.processor import DictStateStore, Message, Processor
from streams.sink import ClickHouseSink
from tests.support.references import assert_throughput_per_minute_matches, expected_gold_answers

pytestmark = pytest.mark.clickhouse

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LABELS = ["cat", "dog", "bird"]
# Which tool sent a task's events, by task number; None: the events name no source_system.
SOURCE_SYSTEMS = ["label-studio", "cvat", None, "api"]


def labeling_day(seed: int = 7, tasks: int = 400) -> list[dict[str, Any]]:
    """Events of two projects over a few hours: creation, work, skips, gold, reviews, completion."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []

    def emit(event_type: str, at: datetime, project: str, task: str, **fields: Any) -> None:
        source_system = SOURCE_SYSTEMS[int(task.rsplit("-t", 1)[1]) % len(SOURCE_SYSTEMS)]
        events.append(
            {
                "event_id": f"e{len(events)}",
                "event_type": event_type,
                "schema_version": 1,
                "occurred_at": at.isoformat(),
                "project_id": project,
                "task_id": task,
                **({"source_system": source_system} if source_system else {}),
                **fields,
            }
        )

    for number in range(tasks):
        project = rng.choice(["proj-a", "proj-b"])
        task = f"{project}-t{number}"
        at = START + timedelta(seconds=rng.randint(0, 4 * 3600))
        gold = rng.random() < 0.15
        truth = rng.choice(LABELS)
        emit("task_created", at, project, task, **({"is_gold": True, "gold_label": truth} if gold else {}))
        annotator = rng.choice(["ann-1", "ann-2", "ann-3", "ann-4"])
        at += timedelta(seconds=rng.randint(1, 120))
        emit("annotation_started", at, project, task, annotator_id=annotator)
        duration = rng.randint(2_000, 90_000)
        at += timedelta(milliseconds=duration)
        if rng.random() < 0.1:
            emit(
                "annotation_skipped", at, project, task, annotator_id=annotator, duration_ms=duration, reason="unclear"
            )
            continue
        label = truth if rng.random() < 0.8 else rng.choice(LABELS)
        assisted = rng.random() < 0.4
        fields: dict[str, Any] = {"annotator_id": annotator, "label": label, "duration_ms": duration}
        if assisted:
            fields |= {"source": "model_assisted", "model_label": rng.choice(LABELS), "model_confidence": 0.9}
        emit("annotation_submitted", at, project, task, **fields)
        if rng.random() < 0.1:  # edited later (rework), sometimes by someone else: changes no metric of the work
            edit = {"annotator_id": annotator, "label": rng.choice(LABELS), "annotation_id": f"{task}-a"}
            emit("annotation_updated", at + timedelta(seconds=rng.randint(1, 300)), project, task, **edit)
        if rng.random() < 0.05:  # deleted in the tool: the work stays counted
            emit("annotation_deleted", at + timedelta(seconds=400), project, task, annotation_id=f"{task}-a")
        if rng.random() < 0.7:
            at += timedelta(seconds=rng.randint(5, 600))
            verdict = rng.choices(["accepted", "fixed", "rejected"], weights=[6, 2, 2])[0]
            reason = "wrong class" if verdict == "rejected" else None
            emit(
                "review_completed",
                at,
                project,
                task,
                annotator_id=annotator,
                reviewer_id="rev-1",
                verdict=verdict,
                duration_ms=rng.randint(1_000, 20_000),
                **({"reason": reason} if reason else {}),
            )
        emit("task_completed", at + timedelta(seconds=1), project, task)
    return events


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    frame = pd.DataFrame(labeling_day())
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame


@pytest.fixture
def loaded(clickhouse: ClickHouseSettings, migrated: Client) -> Client:
    """The day's events through the worker's own path: processor, then sink, in blocks of 250."""
    processor = Processor(tasks=DictStateStore(), dedup_window=10_000)
    sink = ClickHouseSink(lambda: connect(clickhouse), "events")
    in_time_order = sorted(labeling_day(), key=lambda document: document["occurred_at"])
    messages = [
        Message("events", 0, offset, document["task_id"].encode(), json.dumps(document).encode())
        for offset, document in enumerate(in_time_order)
    ]
    for start in range(0, len(messages), 250):
        batch = processor.process(messages[start : start + 250], now=NOW)
        assert not batch.refused, batch.refused[:1]
        sink.write(batch)
    return migrated


def view(client: Client, sql: str) -> pd.DataFrame:
    return client.query_df(sql)


def test_project_throughput_per_minute_counts_every_event_type(loaded: Client, events: pd.DataFrame) -> None:
    assert_throughput_per_minute_matches(loaded, events)
    got = view(loaded, "SELECT * FROM project_throughput_minute")
    assert got["ingest_lag_p50_ms"].gt(0).all()


def test_active_annotators_per_minute(loaded: Client, events: pd.DataFrame) -> None:
    got = view(loaded, "SELECT project_id, minute, active_annotators FROM project_throughput_minute")
    work = events[events["event_type"].isin(["annotation_started", "annotation_submitted", "annotation_skipped"])]
    expected = work.groupby(["project_id", work["occurred_at"].dt.floor("min")])["annotator_id"].nunique()
    got_map = {(r.project_id, pd.Timestamp(r.minute, tz="UTC")): r.active_annotators for r in got.itertuples()}
    for (project, minute), count in expected.items():
        assert got_map[(project, minute)] == count


def expected_per_source_minute(events: pd.DataFrame) -> pd.DataFrame:
    """Events and the newest occurred_at per project, source system and minute; no source_system: 'unspecified'."""
    frame = events.assign(
        source_system=events["source_system"].fillna(metric.UNSPECIFIED_SOURCE),
        minute=events["occurred_at"].dt.floor("min"),
    )
    grouped = frame.groupby(["project_id", "source_system", "minute"])["occurred_at"]
    return pd.DataFrame({"events": grouped.size(), "last_occurred_at": grouped.max()}).sort_index()


SOURCE_MINUTE_SQL = f"""
SELECT project_id, source_system, minute, {metric.SOURCE_EVENTS.sql()} AS events,
    max(rollup_source_minute.last_occurred_at) AS last_occurred_at
FROM rollup_source_minute
GROUP BY project_id, source_system, minute
"""


def per_source_minute(client: Client) -> pd.DataFrame:
    got = client.query_df(SOURCE_MINUTE_SQL)
    got["minute"] = pd.to_datetime(got["minute"], utc=True)
    got["last_occurred_at"] = pd.to_datetime(got["last_occurred_at"], utc=True)
    got["events"] = got["events"].astype("int64")
    return got.set_index(["project_id", "source_system", "minute"]).sort_index()


def test_events_per_source_and_minute_equal_pandas(loaded: Client, events: pd.DataFrame) -> None:
    want = expected_per_source_minute(events)
    assert set(want.index.get_level_values("source_system")) == {"label-studio", "cvat", "api", "unspecified"}
    pd.testing.assert_frame_equal(per_source_minute(loaded), want, check_dtype=False, check_index_type=False)


def test_events_in_per_second_count_every_event_type_as_the_source_rollup_does(
    loaded: Client, events: pd.DataFrame
) -> None:
    filters = queries.Filters(START, START + timedelta(hours=8))
    bucket = queries.bucket_seconds(filters.span)

    def events_per_bucket(query: queries.Query) -> dict[Any, int]:
        frame = loaded.query_df(query.sql, parameters=query.parameters)
        assert (frame["in_range_s"] == bucket).all()  # the range is whole buckets
        per_bucket = (frame["events_per_s"] * bucket).round().astype("int64").groupby(frame["bucket"]).sum()
        return per_bucket.to_dict()

    want = events.groupby(events["occurred_at"].dt.floor(f"{bucket}s").dt.tz_localize(None)).size().to_dict()
    assert sum(want.values()) == len(events)
    assert events_per_bucket(queries.ingest_over_time(filters)) == want
    assert events_per_bucket(queries.events_by_source_system(filters)) == want


@pytest.mark.parametrize("query", [queries.ingest_over_time, queries.events_by_source_system])
def test_events_in_per_second_of_a_bucket_the_range_cuts_counts_only_the_seconds_inside_it(
    loaded: Client, events: pd.DataFrame, query: Any
) -> None:
    """A range ending now cuts its last bucket short: dividing by the whole bucket would read low."""
    # A whole minute (rollups are per minute) among the events, two minutes into a 5-minute bucket.
    cut = events["occurred_at"].quantile(0.5).floor("5min").to_pydatetime() + timedelta(minutes=2)
    filters = queries.Filters(cut - timedelta(minutes=307), cut)
    bucket = queries.bucket_seconds(filters.span)
    assert bucket == 300
    frame = loaded.query_df(query(filters).sql, parameters=query(filters).parameters)
    last = frame[frame["bucket"] == frame["bucket"].max()]
    inside = events[
        (events["occurred_at"] >= last["bucket"].iloc[0].tz_localize("UTC")) & (events["occurred_at"] < cut)
    ]
    seconds = (cut - last["bucket"].iloc[0].tz_localize("UTC").to_pydatetime()).total_seconds()
    assert seconds < bucket and (last["in_range_s"] == seconds).all()
    assert last["events_per_s"].sum() == pytest.approx(len(inside) / seconds)


def test_migration_0009_fills_the_source_rollup_from_the_events_stored_before_it(
    clickhouse: ClickHouseSettings, ch_client: Client, events: pd.DataFrame
) -> None:
    migrations.migrate(ch_client, to=8)
    sink = ClickHouseSink(lambda: connect(clickhouse), "events")
    processor = Processor(tasks=DictStateStore(), dedup_window=10_000)
    messages = [
        Message("events", 0, offset, document["task_id"].encode(), json.dumps(document).encode())
        for offset, document in enumerate(sorted(labeling_day(), key=lambda document: document["occurred_at"]))
    ]
    sink.write(processor.process(messages, now=NOW))
    migrations.migrate(ch_client)
    pd.testing.assert_frame_equal(
        per_source_minute(ch_client), expected_per_source_minute(events), check_dtype=False, check_index_type=False
    )


def test_annotator_productivity_per_hour(loaded: Client, events: pd.DataFrame) -> None:
    got = view(loaded, "SELECT * FROM annotator_productivity_hour ORDER BY project_id, annotator_id, hour")
    work = events[events["event_type"].isin(["annotation_started", "annotation_submitted", "annotation_skipped"])]
    work = work.assign(hour=work["occurred_at"].dt.floor("h"))
    keys = ["project_id", "annotator_id", "hour"]
    submitted = work[work["event_type"] == "annotation_submitted"]
    expected = pd.DataFrame(
        {
            "annotations_submitted": submitted.groupby(keys).size(),
            "annotations_model_assisted": submitted[submitted["source"] == "model_assisted"].groupby(keys).size(),
            "annotations_skipped": work[work["event_type"] == "annotation_skipped"].groupby(keys).size(),
            "handle_time_mean_ms": submitted.groupby(keys)["duration_ms"].mean(),
            "handle_time_p50_ms": submitted.groupby(keys)["duration_ms"].quantile(0.5),
            "handle_time_p90_ms": submitted.groupby(keys)["duration_ms"].quantile(0.9),
            "tasks": work.groupby(keys)["task_id"].nunique(),
        },
        index=work.groupby(keys).size().index,
    )
    expected[["annotations_submitted", "annotations_model_assisted", "annotations_skipped"]] = (
        expected[["annotations_submitted", "annotations_model_assisted", "annotations_skipped"]].fillna(0).astype(int)
    )
    expected = expected.reset_index()
    assert len(got) == len(expected)
    for column in ("annotations_submitted", "annotations_model_assisted", "annotations_skipped", "tasks"):
        assert got[column].tolist() == expected[column].tolist(), column
    skip_rate = expected["annotations_skipped"] / (expected["annotations_submitted"] + expected["annotations_skipped"])
    assert got["skip_rate"].tolist() == pytest.approx(skip_rate.tolist())
    with_work = expected["annotations_submitted"] > 0
    assert got["handle_time_mean_ms"][with_work].tolist() == pytest.approx(
        expected["handle_time_mean_ms"][with_work].tolist()
    )
    assert got["handle_time_mean_ms"][~with_work].isna().all()
    for quantile in ("handle_time_p50_ms", "handle_time_p90_ms"):  # exact, as pandas computes them
        assert got[quantile][with_work].tolist() == pytest.approx(expected[quantile][with_work].tolist(), abs=1e-9)
        assert got[quantile][~with_work].isna().all()


def test_label_throughput_and_prelabel_acceptance(loaded: Client, events: pd.DataFrame) -> None:
    got = view(loaded, "SELECT * FROM label_throughput_hour")
    submitted = events[events["event_type"] == "annotation_submitted"].copy()
    submitted["source"] = submitted["source"].fillna("manual")
    submitted["hour"] = submitted["occurred_at"].dt.floor("h")
    keys = ["project_id", "label", "source", "hour"]
    counts = submitted.groupby(keys).size()
    assert int(got["annotations"].sum()) == len(submitted)
    assert len(got) == len(counts)
    offered = submitted[submitted["model_label"].notna()]
    kept = offered[offered["label"] == offered["model_label"]]
    total = got.groupby("project_id")[["prelabeled"]].sum()["prelabeled"].to_dict()
    assert total == offered.groupby("project_id").size().to_dict()
    assisted = got[got["prelabeled"] > 0]
    assert (assisted["prelabel_acceptance"] * assisted["prelabeled"]).sum() == pytest.approx(len(kept))


def test_review_outcomes(loaded: Client, events: pd.DataFrame) -> None:
    got = view(loaded, "SELECT * FROM review_outcomes_hour ORDER BY project_id, annotator_id, hour")
    reviews = events[events["event_type"] == "review_completed"]
    reviews = reviews.assign(hour=reviews["occurred_at"].dt.floor("h"))
    expected = reviews.pivot_table(
        index=["project_id", "annotator_id", "hour"], columns="verdict", values="event_id", aggfunc="count"
    ).fillna(0)
    expected["reviewed"] = expected.sum(axis=1)
    expected = expected.reset_index()
    assert got["reviewed"].tolist() == expected["reviewed"].astype(int).tolist()
    for verdict in ("accepted", "fixed", "rejected"):
        assert got[verdict].tolist() == expected[verdict].astype(int).tolist()
    assert got["acceptance_score"].tolist() == pytest.approx(
        ((expected["accepted"] + expected["fixed"]) / expected["reviewed"]).tolist()
    )
    assert got["rejection_rate"].tolist() == pytest.approx((expected["rejected"] / expected["reviewed"]).tolist())


def test_gold_accuracy(loaded: Client, events: pd.DataFrame) -> None:
    got = view(loaded, "SELECT * FROM gold_accuracy_hour")
    gold = pd.DataFrame(
        sorted(expected_gold_answers(events)),
        columns=["project_id", "annotator_id", "task_id", "event_id", "ts_ms", "label", "gold_label", "correct"],
    )
    assert int(got["gold_answers"].sum()) == len(gold) > 0
    assert int(got["gold_correct"].sum()) == int(gold["correct"].sum())
    per_annotator = got.groupby("annotator_id")[["gold_answers", "gold_correct"]].sum()
    assert per_annotator["gold_correct"].to_dict() == gold.groupby("annotator_id")["correct"].sum().to_dict()


def test_replaying_a_block_with_its_deduplication_token_changes_nothing(loaded: Client) -> None:
    before = loaded.query(
        "SELECT sum(annotations_submitted), sum(reviews_completed) FROM project_throughput_minute"
    ).result_rows
    document = labeling_day(seed=99, tasks=5)
    rows = []
    for offset, raw in enumerate(document):
        event = validate_event({**raw, "event_id": f"replay-{offset}"}, now=NOW)
        assert not isinstance(event, EventError)
        rows.append(event_row(event, received_ms=epoch_ms(NOW), position=("events", "", 1, offset)))
    settings = {"insert_deduplication_token": "events-1-0-9", "deduplicate_blocks_in_dependent_materialized_views": 1}
    loaded.insert("events", rows, column_names=list(EVENT_COLUMNS), settings=settings)
    once = loaded.query(
        "SELECT sum(annotations_submitted), sum(reviews_completed) FROM project_throughput_minute"
    ).result_rows
    loaded.insert("events", rows, column_names=list(EVENT_COLUMNS), settings=settings)
    twice = loaded.query(
        "SELECT sum(annotations_submitted), sum(reviews_completed) FROM project_throughput_minute"
    ).result_rows
    assert once != before
    assert twice == once
