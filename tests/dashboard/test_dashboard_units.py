"""The dashboard's pure parts: links (URL parameters), metric formulas and query building."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from dashboard import charts
from dashboard.filters import ViewState, from_params, to_params
from dashboard.presentation import (
    alert_episodes,
    bar_range,
    delta,
    eta,
    format_age,
    format_count,
    format_duration,
)
from schema import queries
from schema.metric_definitions import ratio
from schema.queries import Filters
from schema.stats import wilson_interval
from schema.summaries import flag_outliers

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def parse(**params: str | list[str]) -> ViewState:
    def get_all(name: str) -> list[str]:
        value = params.get(name, [])
        return [value] if isinstance(value, str) else list(value)

    return from_params(get_all, NOW, default_refresh_s=10)


def test_no_parameters_mean_the_last_six_hours_refreshing_by_default() -> None:
    state = parse()
    assert (state.filters.start, state.filters.end, state.refresh_s) == (NOW - timedelta(hours=6), NOW, 10)
    assert state.problems == ()


def test_a_link_reproduces_the_view() -> None:
    state = parse(range="custom", **{"from": "2026-11-01T08:00", "to": "2026-11-02T08:00"},
                  project=["b", "a"], source="manual", refresh="0")  # fmt: skip
    again = parse(**to_params(state))  # type: ignore[arg-type]
    assert again == state
    assert state.filters.projects == ("b", "a") and state.refresh_s == 0


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"range": "fortnight"}, "range='fortnight' is not one of"),
        ({"range": "custom", "from": "yesterday", "to": "2026-11-02"}, "custom range"),
        ({"range": "custom", "from": "2026-11-02", "to": "2026-11-01"}, "from must be before to"),
        ({"range": "custom", "from": "1900-01-01", "to": "2026-11-01"}, "at most ten years"),
        ({"refresh": "soon"}, "refresh='soon' must be 0 (paused) to 3600 seconds"),
        ({"refresh": "-1"}, "refresh='-1'"),
        ({"source": ["manual", "telepathy"]}, "source 'telepathy' unknown"),
        ({"project": [f"p{i}" for i in range(300)]}, "only the first 200 project values"),
    ],
)
def test_malformed_link_values_are_reported_and_replaced_by_defaults(params: dict[str, str], problem: str) -> None:
    state = parse(**params)
    assert any(problem in text for text in state.problems), state.problems
    assert state.filters.start < state.filters.end
    assert set(state.filters.sources) <= {"manual", "model_assisted", "imported"}
    assert len(state.filters.projects) <= 200


def test_wilson_interval_equals_statsmodels() -> None:
    for successes, trials in [(0, 10), (7, 10), (10, 10), (73, 101), (1, 1)]:
        expected = proportion_confint(successes, trials, alpha=0.05, method="wilson")
        assert wilson_interval(successes, trials) == pytest.approx(expected, abs=1e-3)
    assert wilson_interval(0, 0) is None


def test_eta_is_backlog_over_rate_and_says_never_without_progress() -> None:
    assert eta(30, 60) == timedelta(minutes=30)
    assert eta(0, 0) == timedelta(0)
    assert eta(5, 0) is None
    assert format_duration(None) == "never at the current rate"
    assert format_duration(timedelta(hours=3)) == "3.0 h"
    assert format_duration(timedelta(days=5)) == "5.0 days"


def test_ratios_and_deltas_never_divide_by_zero() -> None:
    assert ratio(1, 0) is None and ratio(1, 4) == 0.25
    assert delta(5, 0) is None and delta(None, 3) is None and delta(6, 4) == 0.5


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "–"), (float("nan"), "–"), (7, "7"), (1234, "1,234"), (12_345, "12.3k"),
                         (4_500_000, "4.5M"), (7.8e12, "7800.0B"), (2.5, "2.5")],
)  # fmt: skip
def test_huge_numbers_stay_readable(value: float | None, shown: str) -> None:
    assert format_count(value) == shown


def test_outliers_are_flagged_with_the_reason() -> None:
    table = pd.DataFrame(
        {
            "annotations": [100, 100, 100, 100, 100, 5],
            "per_active_hour": [60.0, 62, 58, 61, 400, 900],
            "handle_p50_s": [20.0, 21, 19, 22, 1, 1],
            "skip_rate": [0.02, 0.03, 0.02, 0.5, 0.02, 0.9],
            "gold_answers": [20, 20, 20, 20, 20, 20],
            "gold_correct": [18, 19, 17, 18, 4, 0],
        }
    )
    flags = flag_outliers(table)
    assert flags[:3].tolist() == ["", "", ""]
    assert "skips often" in flags[3]
    assert "much faster than peers" in flags[4] and "handle time under a third" in flags[4]
    assert "gold accuracy below 70%" in flags[4]
    assert flags[5] == "", "too few annotations to judge"


def test_user_values_are_bound_as_parameters_never_pasted_into_sql() -> None:
    hostile = "x'); DROP TABLE events; --"
    filters = Filters(NOW - timedelta(hours=1), NOW, projects=(hostile,), annotators=(hostile,), labels=(hostile,))
    for query in (
        queries.project_totals(filters),
        queries.annotator_output(filters),
        queries.label_throughput(filters),
        queries.agreement(filters),
        queries.annotator_hours(filters, hostile),
    ):
        assert hostile not in query.sql
        assert hostile in str(query.parameters)


def test_hour_rollups_are_read_from_the_hour_containing_the_start() -> None:
    query = queries.annotator_output(Filters(datetime(2026, 11, 23, 9, 40, tzinfo=UTC), NOW))
    assert "hour >= toStartOfHour({start:DateTime64(3, 'UTC')})" in query.sql
    assert query.parameters["start"] == datetime(2026, 11, 23, 9, 40, tzinfo=UTC)


def test_buckets_keep_charts_readable_for_any_range() -> None:
    assert queries.bucket_seconds(timedelta(hours=1)) == 60
    assert queries.bucket_seconds(timedelta(hours=6)) == 300
    assert queries.bucket_seconds(timedelta(days=7)) == 3600
    assert queries.bucket_seconds(timedelta(days=3650)) == 7 * 86_400


def test_freshness_reads_in_seconds_minutes_then_hours() -> None:
    assert [format_age(s) for s in (-3, 42, 600, 9000)] == ["0 s", "42 s", "10 min", "2.5 h"]


def test_alert_episodes_pair_firing_with_resolved_and_keep_those_overlapping_the_range() -> None:
    t = pd.Timestamp("2026-11-23 12:00")
    transitions = pd.DataFrame(
        [
            ("A", "f1", {"project": "p"}, "firing", t - pd.Timedelta(hours=3), "a"),
            ("A", "f1", {"project": "p"}, "resolved", t - pd.Timedelta(hours=2), "a"),  # before the range
            ("A", "f1", {"project": "p"}, "firing", t - pd.Timedelta(minutes=30), "a"),  # still firing
            ("B", "f2", {}, "resolved", t - pd.Timedelta(minutes=50), "b"),  # its firing was before the lookback
            ("B", "f2", {}, "firing", t - pd.Timedelta(minutes=40), "b"),
            ("B", "f2", {}, "resolved", t - pd.Timedelta(minutes=10), "b"),
        ],
        columns=["rule", "fingerprint", "labels", "state", "at", "summary"],
    )
    start, end = datetime(2026, 11, 23, 11, tzinfo=UTC), datetime(2026, 11, 23, 13, tzinfo=UTC)
    episodes = alert_episodes(transitions, start, end)
    assert list(zip(episodes["rule"], episodes["project"], episodes["fired_at"], strict=True)) == [
        ("A", "p", t - pd.Timedelta(minutes=30)),
        ("B", "", t - pd.Timedelta(minutes=40)),
    ]
    assert pd.isna(episodes["resolved_at"].iloc[0]) and episodes["resolved_at"].iloc[1] == t - pd.Timedelta(minutes=10)
    assert alert_episodes(transitions.iloc[0:0], start, end).empty


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("", ""),
        ("[x](http://evil)", "` [x](http://evil) `"),
        ("a `b` c", "`` a `b` c ``"),
        ("``ends", "``` ``ends ```"),
    ],
)
def test_outside_text_goes_into_a_code_span_that_holds_it_whole(text: str, markdown: str) -> None:
    from dashboard.markdown import literal

    assert literal(text) == markdown


@pytest.mark.parametrize("points", [1, 2])
def test_time_axes_tick_at_the_buckets_of_few_points_never_between_them(points: int) -> None:
    hours = pd.DataFrame({"hour": pd.date_range("2026-11-23 09:00", periods=points, freq="h"), "n": range(points)})
    figure = charts.lines(
        hours, x="hour", y="n", series=None, title="t", x_title="hour (UTC)", y_title="n", hover="", bucket_s=3600
    )
    axis = figure.layout.xaxis
    assert list(pd.to_datetime(axis.tickvals)) == list(hours["hour"])
    assert (axis.tickformat, axis.hoverformat) == ("%H:%M", "%Y-%m-%d %H:%M")
    start, end = pd.to_datetime(axis.range[0]), pd.to_datetime(axis.range[1])
    assert (start, end) == (
        hours["hour"].iloc[0] - pd.Timedelta("30min"),
        hours["hour"].iloc[-1] + pd.Timedelta("30min"),
    )


def test_many_points_get_a_few_ticks_on_their_buckets_and_daily_axes_show_dates() -> None:
    days = pd.DataFrame({"day": pd.date_range("2026-11-01", periods=30, freq="D"), "n": range(30)})
    figure = charts.lines(
        days, x="day", y="n", series=None, title="t", x_title="day", y_title="n", hover="", bucket_s=86_400
    )
    axis = figure.layout.xaxis
    assert axis.tickformat == "%b %-d" and axis.range is None  # Plotly fits the range
    assert list(pd.to_datetime(axis.tickvals)) == list(days["day"].iloc[::5])  # 6 ticks, each a bucket


def test_hourly_axes_over_several_days_show_the_date_with_the_time() -> None:
    hours = pd.DataFrame({"hour": pd.date_range("2026-11-01", periods=48, freq="h"), "n": range(48)})
    figure = charts.lines(
        hours, x="hour", y="n", series=None, title="t", x_title="hour", y_title="n", hover="", bucket_s=3600
    )
    assert figure.layout.xaxis.tickformat == "%b %-d %H:%M"


@pytest.mark.parametrize("target", [0.5, 0.7, 0.3, 0.95])
def test_share_bars_turn_green_from_their_target_up(target: float) -> None:
    low, high = bar_range(target)

    def green(share: float) -> bool:  # Streamlit's "auto" colour: green above the bar's middle
        return (min(max(share, low), high) - low) / (high - low) > 0.5

    assert green(target) and green(1.0) and not green(target - 0.001) and not green(0.0)
