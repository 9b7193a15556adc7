"""The metric definitions name real rollups and columns, and their pure twins agree with their SQL's rules."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from schema import metric_definitions as metric
from schema import tables

COLUMNS = {table.name: set(table.column_names) for table in (rollup for rollup, _ in tables.ROLLUPS)}


def counts() -> list[metric.Count]:
    found = [value for value in vars(metric).values() if isinstance(value, metric.Count)]
    for value in vars(metric).values():
        if isinstance(value, metric.Proportion):
            for part in (value.successes, value.trials):
                found += part.parts if isinstance(part, metric.Total) else [part]
    return found


@pytest.mark.parametrize("count", counts(), ids=lambda count: f"{count.rollup}.{count.column}")
def test_every_count_sums_a_column_of_a_rollup(count: metric.Count) -> None:
    assert count.column in COLUMNS[count.rollup]


def test_every_proportion_reads_one_rollup_and_has_real_gauges() -> None:
    for value in vars(metric).values():
        if isinstance(value, metric.Proportion):
            assert value.successes.rollup == value.trials.rollup
            for name in value.gauges or ():
                assert name in metric.GAUGES


def test_a_count_sums_only_the_rows_of_its_condition_and_of_the_window_asked_for() -> None:
    assert metric.TASKS_COMPLETED.sql() == "sum(rollup_project_minute.tasks_completed)"
    assert metric.REJECTED.sql("hour < x") == (
        "sumIf(rollup_review_hour.reviews, (rollup_review_hour.verdict = 'rejected') AND (hour < x))"
    )


def test_eta_is_zero_with_nothing_left_and_infinite_without_pace() -> None:
    assert metric.eta_hours(30, 60) == 0.5
    assert metric.eta_hours(0, 0) == 0 and metric.eta_hours(-3, 10) == 0
    assert metric.eta_hours(5, 0) == math.inf


def test_rates_and_ratios() -> None:
    assert metric.per_hour(30, timedelta(minutes=30)) == 60
    assert metric.ratio(1, 0) is None and metric.ratio(1, 4) == 0.25
    assert metric.dead_letter_ratio(10, 90) == 0.1 and metric.dead_letter_ratio(0, 0) is None


def test_an_unknown_gauge_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="not a business gauge"):
        metric.gauge("backlogg")
