"""Inter-annotator agreement: stream-derived sufficient statistics summed by ClickHouse views, checked
against independent references — statsmodels (Fleiss, Cohen), the krippendorff package (alpha),
and Gwet's AC1 written out from its definition with numpy."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import krippendorff
import numpy as np
import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from schema.client import ClickHouseSettings, connect
from streams.processor import DictStateStore, Message, Processor
from streams.sink import ClickHouseSink

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=5)
LABELS = ["cat", "dog", "bird", "fish"]
ANNOTATORS = [f"ann-{n}" for n in range(6)]
WINDOW = {"from": "2026-11-23 00:00:00", "to": "2026-11-24 00:00:00"}


def ratings(seed: int, tasks: int, raters: int) -> list[dict[str, str]]:
    """Per task, the label each of `raters` annotators chose: right with their own accuracy."""
    rng = random.Random(seed)
    accuracy = {annotator: rng.uniform(0.5, 0.95) for annotator in ANNOTATORS}
    out = []
    for _ in range(tasks):
        truth = rng.choices(LABELS, weights=[5, 3, 1, 1])[0]
        chosen = rng.sample(ANNOTATORS, raters)
        out.append({a: truth if rng.random() < accuracy[a] else rng.choice(LABELS) for a in chosen})
    return out


def messages_for(project: str, per_task: list[dict[str, str]], partition: int) -> list[Message]:
    messages: list[Message] = []

    def emit(document: dict[str, Any]) -> None:
        value = json.dumps({"schema_version": 1, "project_id": project, **document}).encode()
        messages.append(Message("events", partition, len(messages), document["task_id"].encode(), value))

    for number, labels in enumerate(per_task):
        task = f"{project}-{number}"
        at = START + timedelta(seconds=10 * number)
        emit({"event_id": f"{task}-c", "event_type": "task_created", "task_id": task, "occurred_at": at.isoformat()})
        for annotator, label in labels.items():
            emit(
                {
                    "event_id": f"{task}-{annotator}",
                    "event_type": "annotation_submitted",
                    "task_id": task,
                    "annotator_id": annotator,
                    "label": label,
                    "occurred_at": (at + timedelta(seconds=1)).isoformat(),
                }
            )
        # a second submission by the same annotator (after a rejection) does not change agreement
        first = next(iter(labels))
        emit(
            {
                "event_id": f"{task}-{first}-again",
                "event_type": "annotation_submitted",
                "task_id": task,
                "annotator_id": first,
                "label": "other",
                "occurred_at": (at + timedelta(seconds=2)).isoformat(),
            }
        )
        emit(
            {
                "event_id": f"{task}-done",
                "event_type": "task_completed",
                "task_id": task,
                "occurred_at": (at + timedelta(seconds=3)).isoformat(),
            }
        )
    return messages


@pytest.fixture
def loaded(clickhouse: ClickHouseSettings, migrated: Client) -> dict[str, list[dict[str, str]]]:
    data = {"three-raters": ratings(1, 300, 3), "mixed-raters": ratings(2, 150, 2) + ratings(3, 150, 4)}
    processor = Processor(tasks=DictStateStore(), dedup_window=10_000)
    sink = ClickHouseSink(lambda: connect(clickhouse), "events")
    for partition, (project, per_task) in enumerate(data.items()):
        # Delivered in any order (late answers, answers after task_completed), in batches of 100:
        # what is stored are changes, and the views sum them to the statistics of the first answers.
        shuffled = messages_for(project, per_task, partition)
        random.Random(partition).shuffle(shuffled)
        in_arrival_order = [Message(m.topic, m.partition, n, m.key, m.value) for n, m in enumerate(shuffled)]
        for first in range(0, len(in_arrival_order), 100):
            sink.write(processor.process(in_arrival_order[first : first + 100], now=NOW))
    taken_back = migrated.command("SELECT count() FROM task_agreement_changes WHERE sign = -1")
    assert taken_back > 0, "answers arriving late changed tasks' statistics"
    return data


def summary(client: Client) -> dict[str, dict[str, Any]]:
    frame = client.query_df("SELECT * FROM agreement_summary(from={from:String}, to={to:String})", parameters=WINDOW)
    return {row["project_id"]: row for row in frame.to_dict("records")}


def gwet_ac1(per_task: list[dict[str, str]]) -> float:
    """Gwet (2008), multiple raters, categories = labels used."""
    categories = sorted({label for labels in per_task for label in labels.values()})
    counts = np.array([[list(t.values()).count(c) for c in categories] for t in per_task], dtype=float)
    raters = counts.sum(axis=1)
    p_a = np.mean((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1)))
    pi = (counts / raters[:, None]).mean(axis=0)
    p_e = (pi * (1 - pi)).sum() / (len(categories) - 1)
    return float((p_a - p_e) / (1 - p_e))


def reliability_matrix(per_task: list[dict[str, str]]) -> np.ndarray:
    """Annotators x tasks, NaN where an annotator did not label a task (krippendorff's input)."""
    codes = {label: i for i, label in enumerate(LABELS)}
    matrix = np.full((len(ANNOTATORS), len(per_task)), np.nan)
    for column, labels in enumerate(per_task):
        for annotator, label in labels.items():
            matrix[ANNOTATORS.index(annotator), column] = codes[label]
    return matrix


@pytest.mark.clickhouse
def test_fleiss_kappa_matches_statsmodels(migrated: Client, loaded: dict[str, list[dict[str, str]]]) -> None:
    per_task = loaded["three-raters"]
    table, _ = aggregate_raters(np.array([[LABELS.index(label) for label in t.values()] for t in per_task]))
    assert summary(migrated)["three-raters"]["fleiss_kappa"] == pytest.approx(fleiss_kappa(table), abs=1e-9)


@pytest.mark.clickhouse
@pytest.mark.parametrize("project", ["three-raters", "mixed-raters"])
def test_krippendorff_alpha_matches_the_krippendorff_package(
    migrated: Client, loaded: dict[str, list[dict[str, str]]], project: str
) -> None:
    expected = krippendorff.alpha(reliability_data=reliability_matrix(loaded[project]), level_of_measurement="nominal")
    assert summary(migrated)[project]["krippendorff_alpha"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.clickhouse
@pytest.mark.parametrize("project", ["three-raters", "mixed-raters"])
def test_percent_agreement_and_gwet_ac1(
    migrated: Client, loaded: dict[str, list[dict[str, str]]], project: str
) -> None:
    per_task = loaded[project]
    agreeing = sum(sum(n * (n - 1) for n in pd.Series(list(t.values())).value_counts()) for t in per_task)
    pairs = sum(len(t) * (len(t) - 1) for t in per_task)
    got = summary(migrated)[project]
    assert got["tasks"] == len(per_task)
    assert got["percent_agreement"] == pytest.approx(agreeing / pairs, abs=1e-12)
    assert got["gwet_ac1"] == pytest.approx(gwet_ac1(per_task), abs=1e-9)


@pytest.mark.clickhouse
def test_cohen_kappa_per_pair_matches_statsmodels(migrated: Client, loaded: dict[str, list[dict[str, str]]]) -> None:
    got = migrated.query_df(
        "SELECT * FROM pair_kappa(from={from:String}, to={to:String}) WHERE project_id = 'mixed-raters'",
        parameters=WINDOW,
    )
    assert len(got) == len(ANNOTATORS) * (len(ANNOTATORS) - 1) // 2
    for row in got.to_dict("records"):
        a, b = row["annotator_a"], row["annotator_b"]
        both = [(t[a], t[b]) for t in loaded["mixed-raters"] if a in t and b in t]
        table = pd.crosstab(
            pd.Categorical([x for x, _ in both], categories=LABELS),
            pd.Categorical([y for _, y in both], categories=LABELS),
            dropna=False,
        ).to_numpy()
        assert row["items"] == len(both)
        assert row["cohen_kappa"] == pytest.approx(cohens_kappa(table).kappa, abs=1e-9), (a, b)


@pytest.mark.clickhouse
def test_the_window_selects_tasks_by_the_time_of_their_latest_first_answer(
    migrated: Client, loaded: dict[str, list[dict[str, str]]]
) -> None:
    first_ten_minutes = {
        "from": START.strftime("%Y-%m-%d %H:%M:%S"),
        "to": (START + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    frame = migrated.query_df(
        "SELECT * FROM agreement_summary(from={from:String}, to={to:String})", parameters=first_ten_minutes
    )
    assert dict(zip(frame["project_id"], frame["tasks"], strict=True)) == {"three-raters": 60, "mixed-raters": 60}


def test_a_single_label_has_no_kappa_only_agreement() -> None:
    from streams.task_state import AGREEMENT, PAIR_AGREEMENT, TASK_AGREEMENT, derived_rows, empty

    state = empty("p", "t", 0)
    state["submissions"] = [[1000 + n, f"e{n}", annotator, "x", None, None] for n, annotator in enumerate("abc")]
    rows = derived_rows(state, (AGREEMENT, None, None))
    assert rows[TASK_AGREEMENT] == {("p", "t", 1002, 3, (("x", 3),), 6)}
    assert sorted((a, b) for _, _, _, a, b, _, _ in rows[PAIR_AGREEMENT]) == [("a", "b"), ("a", "c"), ("b", "c")]
