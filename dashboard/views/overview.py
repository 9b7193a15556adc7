"""Overview: how fast are we going, will we finish, is quality holding — all projects at a glance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from dashboard import charts
from dashboard.data import fetch
from dashboard.evaluator_report import EvaluatorReport
from dashboard.filters import ViewState
from dashboard.page import MISSING, evaluator_report, firing_episodes, live, not_enough_data, table
from dashboard.presentation import bar_range, delta, eta, format_age, format_count, format_duration, format_share
from schema import queries, summaries
from schema.metric_definitions import MIN_GOLD_ANSWERS

PACE, AVERAGE = "Annotations/h · last hour", "Annotations/h · range average"


def project_summary(filters: queries.Filters) -> pd.DataFrame:
    """One row per project: volumes, backlog and ETA, quality — the side-by-side table and the KPI inputs."""
    summary = summaries.project_summary(filters, fetch)
    summary["eta"] = [
        format_duration(eta(int(b), float(r)))
        for b, r in zip(summary["backlog"], summary["completed_recently"], strict=True)
    ]
    return summary


def kpis(state: ViewState, now: pd.DataFrame) -> None:
    """The tiles (schema.summaries.tiles, as the gRPC API's): `now` is project_summary of the range, compared
    with the period before it."""
    tiles = summaries.tiles(now, state.filters)
    before = summaries.tiles(project_summary(state.filters.previous()), state.filters.previous())
    columns = [*st.columns(4), *st.columns(4)]  # two rows: eight tiles stay readable at 1440 px
    columns[0].metric(
        PACE,
        format_count(tiles.pace_per_hour),
        help="The current pace: annotations submitted in the last hour of the range (up to now, for a quick "
        "range). The throughput chart shows the same per bucket.",
    )
    columns[1].metric(
        AVERAGE,
        format_count(tiles.annotations_per_hour),
        _delta(tiles.annotations_per_hour, before.annotations_per_hour),
        help="Annotations submitted in the whole range ÷ its hours, quiet hours included — against the "
        "previous range of equal length. Lower than the pace when work started recently.",
    )
    columns[2].metric(
        "Tasks completed",
        format_count(tiles.tasks_completed),
        _delta(tiles.tasks_completed, before.tasks_completed),
    )
    columns[3].metric(
        "Backlog",
        format_count(tiles.backlog),
        f"ETA {format_duration(None if tiles.eta_hours is None else timedelta(hours=tiles.eta_hours))}",
        delta_color="off",
        delta_arrow="off",
        help="Tasks created minus completed, all time; ETA at the last hour's completion rate.",
    )
    columns[4].metric(
        "First-pass",
        format_share(tiles.first_pass_acceptance),
        _delta(tiles.first_pass_acceptance, before.first_pass_acceptance),
        help="Reviews accepting work never rejected before ÷ reviews, over the range.",
    )
    columns[5].metric(
        "Gold accuracy",
        format_share(tiles.gold_accuracy),  # "–" below MIN_GOLD_ANSWERS
        _delta(tiles.gold_accuracy, before.gold_accuracy),
        help=f"Correct honeypot answers ÷ honeypot answers; shown from {MIN_GOLD_ANSWERS} answers on.",
    )
    columns[6].metric(
        "Agreement (α)",
        f"{tiles.krippendorff_alpha:.2f}" if tiles.krippendorff_alpha is not None else "–",
        help="Krippendorff's alpha (nominal) on overlapping tasks, averaged over projects.",
    )
    columns[7].metric(
        "Freshness",
        freshness_text(),
        help="How long ago the newest stored event happened: end-to-end delay plus any quiet time.",
    )


def freshness_text() -> str:
    newest = fetch(queries.data_as_of()).iloc[0]["newest_occurred_at"]
    if pd.isna(newest):
        return "–"
    return format_age((datetime.now(UTC) - newest.to_pydatetime().replace(tzinfo=UTC)).total_seconds())


def _delta(current: float | None, previous: float | None) -> str | None:
    change = delta(current, previous)
    return None if change is None else f"{change:+.1%} vs previous"


def render(state: ViewState) -> None:
    st.header("Overview")
    summary = project_summary(state.filters)
    kpis(state, summary)
    series = fetch(queries.throughput(state.filters))
    if series.empty:
        not_enough_data("Throughput", "no annotations in this range and selection — widen the range or filters.")
        return
    seconds = queries.bucket_seconds(state.filters.span)
    figure = charts.lines(
        series,
        x="bucket",
        bucket_s=seconds,
        y="annotations",
        series="project_id",
        title="Annotations submitted",
        x_title="time (UTC)",
        y_title=f"annotations per {queries.BUCKETS[seconds]}",
        hover=f"%{{y:,.0f}} annotations in this {queries.BUCKETS[seconds]}",
    )
    episodes = firing_episodes(state.filters, about_projects=True)
    st.plotly_chart(charts.mark_alerts(figure, episodes, series["bucket"].max()))
    st.subheader("Projects side by side")
    report = evaluator_report()
    targets = report.targets if isinstance(report, EvaluatorReport) else {}
    shown = summary[
        [
            "project_id",
            "annotations_per_hour",
            "tasks_completed",
            "backlog",
            "eta",
            "first_pass_acceptance",
            "acceptance",
            "gold_accuracy",
            "percent_agreement",
            "annotators",
        ]
    ]
    table(
        shown,
        {
            "project_id": st.column_config.TextColumn("Project", width=130, pinned=True),
            "annotations_per_hour": st.column_config.NumberColumn(
                "Avg / h", format="%.1f", width=70, help="Annotations per hour, averaged over the range"
            ),
            "tasks_completed": st.column_config.NumberColumn("Completed", format="%d", width=80),
            "backlog": st.column_config.NumberColumn(
                "Backlog", format="%d", width=70, help="created − completed, all time"
            ),
            "eta": st.column_config.TextColumn("ETA", width=150, help="backlog ÷ completions in the last hour"),
            "first_pass_acceptance": share_bar(
                "First-pass",
                f"Accepted, never rejected before ÷ reviews. {MISSING}: no reviews in the range yet",
                targets.get("first_pass_acceptance"),
            ),
            "acceptance": share_bar(
                "Acceptance", f"(accepted + fixed) ÷ reviewed. {MISSING}: no reviews in the range yet", None
            ),
            "gold_accuracy": share_bar(
                "Gold",
                f"Correct gold answers ÷ gold answers. {MISSING}: fewer than {MIN_GOLD_ANSWERS} gold answers",
                targets.get("gold_accuracy"),
            ),
            "percent_agreement": share_bar(
                "Agreement",
                f"Percent agreement on tasks labeled by two or more annotators. {MISSING}: no such task completed "
                "in the range",
                None,
            ),
            "annotators": st.column_config.NumberColumn("Annotators", format="%d", width=80),
        },
    )

    st.caption(targets_caption(targets, report if isinstance(report, str) else None))


def share_bar(label: str, help: str, target: float | None) -> ColumnConfig:
    """A share as a bar: green at or above its target, red below; blue when nothing sets a target."""
    if target is None:
        return st.column_config.ProgressColumn(
            label, min_value=0, max_value=1, format="percent", width=95, color="blue", help=help
        )
    low, high = bar_range(target)
    return st.column_config.ProgressColumn(
        label,
        min_value=low,
        max_value=high,
        format="percent",
        width=95,
        color="auto",
        help=f"{help}. Green from the target {target:.0%} (the alert rules' threshold) up, red below; the bar "
        "spans the target ± the distance to the nearest end",
    )


def targets_caption(targets: dict[str, float], unavailable: str | None) -> str:
    if unavailable is not None:
        return f"Bars are blue: their targets are the alert rules' thresholds, and {unavailable}."
    held = {"first_pass_acceptance": "first-pass", "gold_accuracy": "gold accuracy"}
    shown = [f"{name} {targets[metric]:.0%}" for metric, name in held.items() if metric in targets]
    if not shown:
        return "Bars are blue: no alert rule sets a target for these shares."
    return f"Green meets the target, red misses it — targets from the alert rules: {', '.join(shown)}; blue: no target."


live(render)
