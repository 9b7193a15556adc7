"""Project: what is being labeled and how fast, how long items take, the backlog, quality and agreement."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.markdown import literal
from dashboard.page import MISSING, live, not_enough_data, table
from dashboard.presentation import eta, format_duration
from schema import queries
from schema.metric_definitions import MIN_GOLD_ANSWERS
from schema.stats import wilson_interval


def render(state: ViewState) -> None:
    filters = state.filters
    projects = filters.projects
    st.header(f"Project: {literal(', '.join(projects))}" if projects else "Project: all projects")
    if not projects:
        st.caption("Pick one or more projects in the sidebar to narrow every chart on this page.")
    left, right = st.columns(2)
    labels = fetch(queries.label_throughput(filters))
    if labels.empty:
        not_enough_data("Throughput by label", "no submissions in this range and selection.")
    else:
        left.plotly_chart(
            charts.bars(
                labels,
                x="label",
                y="annotations",
                color="source",
                title="Annotations by label and source",
                x_title="label class",
                y_title="annotations",
                hover="%{y:,.0f} annotations",
            )
        )
    handle = fetch(queries.handle_time_over_time(filters))
    if handle.empty:
        right.info("**Handle time: not enough data.** No timed submissions in this range.")
    else:
        long = handle.melt(id_vars="hour", value_vars=["p50_s", "p90_s"], var_name="quantile", value_name="seconds")
        long["quantile"] = long["quantile"].map({"p50_s": "median (p50)", "p90_s": "p90"})
        right.plotly_chart(
            charts.lines(
                long,
                x="hour",
                bucket_s=3600,  # hourly rows
                y="seconds",
                series="quantile",
                title="Handle time per annotation",
                x_title="hour (UTC)",
                y_title="seconds",
                hover="%{y:.1f} s per annotation",
            )
        )

    left, right = st.columns(2)
    burndown = fetch(queries.burndown(filters))
    backlog = fetch(queries.backlog(filters))
    if burndown.empty:
        left.info("**Backlog: not enough data.** No tasks created yet.")
    else:
        remaining = int(backlog["backlog"].sum())
        finish = format_duration(eta(remaining, float(backlog["completed_recently"].sum())))
        left.plotly_chart(
            charts.lines(
                burndown,
                x="bucket",
                bucket_s=queries.bucket_seconds(filters.span),
                y="backlog",
                series=None,
                title=f"Backlog burndown — ETA {finish}",
                x_title="time (UTC)",
                y_title="open tasks",
                hover="%{y:,.0f} open tasks",
            )
        )
    quality = fetch(queries.quality_over_time(filters))
    if quality.empty or quality["reviewed"].sum() == 0:
        right.info("**Review quality: not enough data.** No reviews in this range.")
    else:
        quality = quality.rename(columns={"acceptance_score": "acceptance", "rejection_rate": "rejection rate"})
        first_pass = fetch(queries.first_pass_over_time(filters)).rename(
            columns={"first_pass_acceptance": "first-pass acceptance"}
        )
        quality = quality.merge(first_pass, on="hour", how="left")
        long = quality.melt(
            id_vars="hour",
            value_vars=["first-pass acceptance", "acceptance", "rejection rate"],
            var_name="measure",
            value_name="share",
        )
        figure = charts.lines(
            long,
            x="hour",
            bucket_s=3600,  # hourly rows
            y="share",
            series="measure",
            title="Review outcomes",
            x_title="hour (UTC)",
            y_title="share of reviews",
            hover="%{y:.1%} of reviews",
        )
        figure.update_yaxes(tickformat=".0%")
        right.plotly_chart(figure)

    left, right = st.columns(2)
    reasons = fetch(queries.rejection_reasons(filters))
    if reasons.empty:
        left.info("**Rejection reasons: not enough data.** Nothing was rejected in this range.")
    else:
        left.plotly_chart(
            charts.bars(
                reasons,
                x="reason",
                y="rejections",
                title="Rejection reasons",
                x_title="reason",
                y_title="rejections",
                hover="%{x:,.0f} rejections",
                horizontal=True,
            )
        )
    gold_panel(right, filters)

    st.subheader("Agreement on overlapping tasks")
    agreement_panel(filters)


def gold_panel(column: st.delta_generator.DeltaGenerator, filters: queries.Filters) -> None:
    gold = fetch(queries.gold_totals(filters))
    answers, correct = int(gold["gold_answers"].sum()), int(gold["gold_correct"].sum())
    if answers < MIN_GOLD_ANSWERS:
        column.info(
            f"**Gold accuracy: not enough data.** {answers} honeypot answers in this range; accuracy is "
            f"judged from {MIN_GOLD_ANSWERS} on. Add gold tasks to the project or widen the range."
        )
        return
    low, high = wilson_interval(correct, answers) or (0.0, 0.0)
    column.metric(
        "Gold accuracy",
        f"{correct / answers:.1%}",
        f"95 % CI {low:.1%} – {high:.1%} · N = {answers}",
        delta_color="off",
        delta_arrow="off",
    )
    hourly = fetch(queries.gold_totals(filters, by="hour"))
    hourly = hourly[hourly["gold_answers"] > 0].copy()
    hourly = hourly.rename(columns={"gold_accuracy": "accuracy"})
    bounds = [
        wilson_interval(int(c), int(n)) for c, n in zip(hourly["gold_correct"], hourly["gold_answers"], strict=True)
    ]
    hourly["low"] = [bound[0] if bound else None for bound in bounds]
    hourly["high"] = [bound[1] if bound else None for bound in bounds]
    column.plotly_chart(
        charts.band(
            hourly,
            x="hour",
            bucket_s=3600,  # hourly rows
            low="low",
            high="high",
            mid="accuracy",
            title="Gold accuracy per hour, with its 95 % Wilson interval",
            x_title="hour (UTC)",
            y_title="share correct",
            hover="%{y:.1%} correct<extra></extra>",
        )
    )


def agreement_panel(filters: queries.Filters) -> None:
    summary = fetch(queries.agreement(filters))
    if summary.empty:
        not_enough_data(
            "Agreement",
            "no task labeled by two or more annotators was completed in this range; agreement needs overlapping "
            "assignments.",
        )
        return
    undefined = f"{MISSING}: undefined when every answer in the range used one label (chance agreement is 1)"
    table(
        summary[["project_id", "tasks", "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"]],
        {
            "project_id": st.column_config.TextColumn("Project", pinned=True),
            "tasks": st.column_config.NumberColumn(
                "Overlapping tasks", format="%d", help="Completed tasks labeled by two or more annotators"
            ),
            "percent_agreement": st.column_config.NumberColumn(
                "Percent agreement", format="percent", help="Pairs of first answers on a task that agree"
            ),
            "fleiss_kappa": st.column_config.NumberColumn("Fleiss' κ", format="%.3f", help=undefined),
            "krippendorff_alpha": st.column_config.NumberColumn("Krippendorff's α", format="%.3f", help=undefined),
            "gwet_ac1": st.column_config.NumberColumn("Gwet's AC1", format="%.3f", help=undefined),
        },
    )
    left, right = st.columns(2)
    pairs = fetch(queries.pair_kappa(filters))
    if pairs.empty:
        left.info("**Pair agreement: not enough data.**")
    else:
        both = pd.concat([pairs, pairs.rename(columns={"annotator_a": "annotator_b", "annotator_b": "annotator_a"})])
        matrix = both.pivot_table(index="annotator_a", columns="annotator_b", values="cohen_kappa", aggfunc="mean")
        left.plotly_chart(
            charts.heatmap(
                matrix,
                title="Cohen's κ per annotator pair",
                x_title="annotator",
                y_title="annotator",
                hover="%{y} × %{x}: κ = %{z:.2f}<extra></extra>",
                zmin=-1,
                zmax=1,
            )
        )
    confusion = fetch(queries.confusion_pairs(filters))
    if confusion.empty:
        right.info("**Confusion pairs: not enough data.** No disagreements in this range.")
    else:
        confusion["pair"] = confusion["label_1"] + " ↔ " + confusion["label_2"]
        right.plotly_chart(
            charts.bars(
                confusion,
                x="pair",
                y="disagreements",
                title="Most confused label pairs",
                x_title="labels",
                y_title="disagreeing annotator pairs",
                hover="%{x:,.0f} disagreements",
                horizontal=True,
            )
        )


live(render)
