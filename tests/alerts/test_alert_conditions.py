"""Each kind of rule on crafted series, through the worker's own path into the real embedded ClickHouse."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from alerts.conditions import CONDITIONS, evaluate
from alerts.rules import KINDS, params_for
from tests.support.stored_events import NOW, event, store

pytestmark = pytest.mark.clickhouse


def submitted(at: datetime, project: str = "p", annotator: str = "a1", label: str = "cat", **fields: Any) -> bytes:
    return event("annotation_submitted", at, project, annotator_id=annotator, label=label, **fields)


def every(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    while start < end:
        yield start
        start += step


def found(client: Client, kind: str, now: datetime = NOW, **given: Any) -> dict[tuple[str, ...], float]:
    results = evaluate(client, kind, params_for(kind, given), now)
    return {tuple(sorted(f.labels.values())): f.value for f in results}


def test_every_kind_has_a_query() -> None:
    assert set(CONDITIONS) == set(KINDS)


@pytest.mark.parametrize("baseline", ["ewma", "same_hour_last_week"])
def test_throughput_drop_fires_for_a_collapse_not_for_steady_or_quiet_projects(migrated: Client, baseline: str) -> None:
    minute = timedelta(minutes=1)
    window_start = NOW.replace(second=0) - timedelta(minutes=30)
    history = list(every(NOW - timedelta(days=1), window_start, minute))
    history += list(every(NOW - timedelta(days=7, minutes=31), NOW - timedelta(days=7), minute))
    values = [submitted(at, "steady") for at in history + list(every(window_start, NOW, minute))]
    values += [submitted(at, "collapsed") for at in history]
    values += [submitted(at, "slower") for at in history + list(every(window_start, NOW, 3 * minute))]
    values += [submitted(at, "quiet") for at in history[::6]]  # 10/h: under the 30/h floor
    store(migrated, values)
    params: dict[str, Any] = {"baseline": baseline, "drop_ratio": 0.5, "min_baseline_per_hour": 30, "window": "30m"}
    assert found(migrated, "throughput_drop", **params) == {("collapsed",): 0.0, ("slower",): 20.0}
    assert found(migrated, "throughput_drop", **{**params, "drop_ratio": 0.3}) == {("collapsed",): 0.0}


def test_throughput_ewma_weighs_recent_hours_more(migrated: Client) -> None:
    # 120/h until 8 h ago, then 40/h: the EWMA (3 h half-life, ~53/h) has mostly moved to 40/h,
    # so 30/h now is not a drop by half; against a near-flat day-long mean (~90/h) it is.
    start, change = NOW - timedelta(days=1), NOW - timedelta(hours=8)
    values = [submitted(at) for at in every(start, change, timedelta(seconds=30))]
    values += [submitted(at) for at in every(change, NOW - timedelta(minutes=31), timedelta(seconds=90))]
    values += [submitted(at) for at in every(NOW - timedelta(minutes=30), NOW, timedelta(minutes=2))]
    store(migrated, values)
    assert found(migrated, "throughput_drop", window="30m", drop_ratio=0.5) == {}
    assert found(migrated, "throughput_drop", window="30m", drop_ratio=0.5, half_life="1d") == {("p",): 30.0}


def test_no_events_only_during_working_hours(migrated: Client) -> None:
    store(
        migrated,
        [
            event("task_created", NOW - timedelta(minutes=20), "silent"),
            event("task_created", NOW - timedelta(minutes=5), "talking"),
            event("task_created", NOW - timedelta(days=8), "retired"),  # not expected to speak any more
        ],
    )
    assert found(migrated, "no_events", window="15m") == {("silent",): pytest.approx(1200, abs=1)}
    assert found(migrated, "no_events", window="15m", working_hours="13:00-17:00") == {}
    assert found(migrated, "no_events", window="15m", working_hours="22:00-13:00") != {}  # over midnight
    assert found(migrated, "no_events", window="15m", weekdays="sat-sun") == {}
    assert found(migrated, "no_events", window="30m") == {}


def test_quality_drop_judges_the_wilson_bound_after_enough_answers(migrated: Client) -> None:
    values = []
    for project, answers, correct in (("poor", 40, 10), ("good", 40, 36), ("few", 10, 0)):
        for n in range(answers):
            at = NOW - timedelta(minutes=90 - n)
            task = f"{project}-{n}"
            values.append(event("task_created", at, project, task, is_gold=True, gold_label="cat"))
            label = "cat" if n < correct else "dog"
            values.append(event("annotation_submitted", at + timedelta(seconds=5), project, task,
                                annotator_id="a1", label=label))  # fmt: skip
    store(migrated, values)
    result = found(migrated, "quality_drop", metric="gold_accuracy", threshold=0.7, min_n=30)
    assert list(result) == [("poor",)] and 0.25 < result[("poor",)] < 0.7  # the upper bound of 10/40
    lower = found(migrated, "quality_drop", metric="gold_accuracy", threshold=0.7, min_n=5, bound="lower")
    assert set(lower) == {("poor",), ("few",)}  # 36/40 has a lower bound of ~0.77: surely above


def test_quality_drop_on_first_pass_acceptance(migrated: Client) -> None:
    values = []
    for project, verdicts in (("reworked", ["rejected", "accepted"]), ("clean", ["accepted"])):
        for n in range(40):
            task = f"{project}-{n}"
            at = NOW - timedelta(minutes=100 - n)
            values.append(event("annotation_submitted", at, project, task, annotator_id="a1", label="cat"))
            for round_number, verdict in enumerate(verdicts, start=1):
                values.append(event("review_completed", at + timedelta(seconds=10 * round_number), project, task,
                                    annotator_id="a1", reviewer_id="r1", verdict=verdict))  # fmt: skip
    store(migrated, values)
    result = found(migrated, "quality_drop", metric="first_pass_acceptance", threshold=0.5, min_n=30)
    assert list(result) == [("reworked",)]


def test_annotator_fast_handle_against_the_projects_own_history(migrated: Client) -> None:
    values = []
    for n, at in enumerate(every(NOW - timedelta(days=1), NOW - timedelta(hours=2), timedelta(minutes=5))):
        values += [submitted(at, annotator=a, duration_ms=10_000 + 100 * (n % 50)) for a in ("a1", "a2", "a3")]
    for n, at in enumerate(every(NOW - timedelta(hours=2), NOW, timedelta(minutes=3))):
        values.append(submitted(at, annotator="a1", duration_ms=12_000))
        values.append(submitted(at, annotator="a2", duration_ms=900))  # clicking through
        values.append(submitted(at, annotator="a4", duration_ms=6_000))  # fast, not suspicious
        if n < 5:
            values.append(submitted(at, annotator="a3", duration_ms=500))  # too few to judge
    store(migrated, values)
    # The project's p5 is about 10 s: 0.9 s is far below it; 6 s is below, not far below.
    assert found(migrated, "annotator_fast_handle", min_annotations=20) == {("a2", "p"): 0.9}
    assert found(migrated, "annotator_fast_handle", min_annotations=20, ratio=1.0) == {
        ("a2", "p"): 0.9,
        ("a4", "p"): 6.0,
    }
    assert found(migrated, "annotator_fast_handle", min_annotations=20, ratio=0.05) == {}


def test_annotator_same_answer_counts_the_longest_run_in_time_order(migrated: Client) -> None:
    values = []
    start = NOW - timedelta(minutes=50)
    for n in range(25):
        at = start + timedelta(seconds=60 * n)
        values.append(submitted(at, annotator="a1", label="cat"))
        values.append(submitted(at, annotator="a2", label=["cat", "dog"][n % 2]))
        values.append(submitted(at, annotator="a3", label="cat" if n < 19 else "dog"))
    values.reverse()  # arrival order must not matter
    values.append(submitted(NOW - timedelta(hours=2), annotator="a3", label="cat"))  # outside the window
    store(migrated, values)
    assert found(migrated, "annotator_same_answer", run_length=20) == {("a1", "p"): 25.0}
    assert found(migrated, "annotator_same_answer", run_length=19) == {("a1", "p"): 25.0, ("a3", "p"): 19.0}


def test_annotator_gold_floor(migrated: Client) -> None:
    values = []
    for annotator, answers, correct in (("a1", 20, 2), ("a2", 20, 19), ("a3", 5, 0)):
        for n in range(answers):
            task = f"{annotator}-{n}"
            at = NOW - timedelta(hours=3, minutes=n)
            values.append(event("task_created", at, "p", task, is_gold=True, gold_label="cat"))
            label = "cat" if n < correct else "dog"
            values.append(event("annotation_submitted", at, "p", task, annotator_id=annotator, label=label))
    store(migrated, values)
    result = found(migrated, "annotator_gold_floor", floor=0.7, min_n=10)
    assert list(result) == [("a1", "p")] and result[("a1", "p")] < 0.35


def test_backlog_eta_against_deadlines(migrated: Client) -> None:
    values = []
    for project, created, completed in (("late", 100, 10), ("early", 100, 10), ("stalled", 5, 0), ("free", 50, 0)):
        for n in range(created):
            values.append(event("task_created", NOW - timedelta(days=2, minutes=n), project, f"{project}-{n}"))
        for n in range(completed):
            values.append(event("task_completed", NOW - timedelta(minutes=30 * n + 1), project, f"{project}-{n}"))
    store(migrated, values)
    deadlines = {name: (NOW + timedelta(hours=hours)).isoformat() for name, hours in
                 (("late", 24), ("early", 100), ("stalled", 1000))}  # fmt: skip
    result = found(migrated, "backlog_eta", deadlines=deadlines, window="6h")
    # late: 90 left at 10 per 6 h is 54 h, 30 h past its deadline; stalled never finishes.
    assert result == {("late",): pytest.approx(30.0), ("stalled",): math.inf}


def test_source_quiet_fires_for_a_source_that_stopped_while_others_flow(migrated: Client) -> None:
    store(
        migrated,
        [
            event("task_created", NOW - timedelta(minutes=45), "p1", source_system="cvat"),
            event("task_created", NOW - timedelta(minutes=50), "p2", source_system="cvat"),
            event("task_created", NOW - timedelta(minutes=2), "p1", source_system="label-studio"),
            event("task_created", NOW - timedelta(hours=2), "p1"),  # names no source: 'unspecified'
            event("task_created", NOW - timedelta(days=8), "p1", source_system="labelbox"),  # retired
        ],
    )
    assert found(migrated, "source_quiet", window="30m") == {
        ("cvat",): pytest.approx(45 * 60),  # its newest event, in any project
        ("unspecified",): pytest.approx(2 * 3600),
    }
    assert found(migrated, "source_quiet", window="1h") == {("unspecified",): pytest.approx(2 * 3600)}
    assert found(migrated, "source_quiet", window="30m", sources=["cvat", "label-studio"]) == {
        ("cvat",): pytest.approx(45 * 60)
    }
    assert found(migrated, "source_quiet", window="30m", sources=["labelbox"]) == {}  # silent for over 7 days
    assert found(migrated, "source_quiet", window="30m", working_hours="13:00-17:00") == {}
    assert found(migrated, "source_quiet", window="30m", weekdays="sat-sun") == {}


def test_source_quiet_sees_nothing_after_now(migrated: Client) -> None:
    store(migrated, [event("task_created", NOW - timedelta(minutes=40), "p", source_system="api")])
    store(migrated, [event("task_created", NOW, "p", source_system="api")])
    assert found(migrated, "source_quiet", window="30m") == {}
    earlier = NOW - timedelta(minutes=1)
    assert found(migrated, "source_quiet", now=earlier, window="30m") == {("api",): pytest.approx(39 * 60)}


def test_pipeline_freshness_looks_at_what_became_queryable(migrated: Client) -> None:
    assert found(migrated, "pipeline_freshness", max_age="2m") == {}  # a new install is not stale
    store(migrated, [event("task_created", NOW - timedelta(minutes=10))], received_at=NOW - timedelta(minutes=5))
    assert found(migrated, "pipeline_freshness", max_age="2m") == {(): pytest.approx(300)}
    assert found(migrated, "pipeline_freshness", max_age="10m") == {}
    assert found(migrated, "pipeline_freshness", max_age="2m", working_hours="18:00-06:00") == {}


def test_pipeline_dead_letter_rate(migrated: Client) -> None:
    recent = NOW - timedelta(minutes=2)
    store(migrated, [event("task_created", recent) for _ in range(90)] + [b"{not json"] * 10, received_at=recent)
    store(migrated, [b"garbage"] * 50, received_at=NOW - timedelta(hours=1))  # outside the window
    assert found(migrated, "pipeline_dead_letter_rate", max_ratio=0.05, window="10m") == {(): 0.1}
    assert found(migrated, "pipeline_dead_letter_rate", max_ratio=0.1, window="10m") == {}
    assert found(migrated, "pipeline_dead_letter_rate", max_ratio=0.05, min_dead_letters=11, window="10m") == {}


def test_nothing_after_now_is_seen(migrated: Client) -> None:
    """What a backtest relies on: evaluating at an earlier `now` ignores everything later (to the
    minute, for what minute rollups hold)."""
    store(migrated, [event("task_created", NOW - timedelta(minutes=20), "p")])
    store(migrated, [event("task_created", NOW, "p")])
    assert found(migrated, "no_events", now=NOW, window="15m") == {}
    earlier = NOW - timedelta(minutes=1)
    assert found(migrated, "no_events", now=earlier, window="15m") == {("p",): pytest.approx(1140)}
