"""Annotators: who is productive, who needs help — a sortable table with outliers explained."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.page import live, not_enough_data
from dashboard.presentation import flag_outliers
from schema.metric_definitions import MIN_GOLD_ANSWERS
from schema.stats import wilson_interval

COLUMNS = {
    "annotator_id": st.column_config.TextColumn("Annotator", width="medium"),
    "annotations": st.column_config.NumberColumn("Annotations", format="%d"),
    "active_hours": st.column_config.NumberColumn(
        "Active h", format="%.2f", help="Gaps between events under the idle threshold"
    ),
    "per_active_hour": st.column_config.NumberColumn("Per active h", format="%.1f"),
    "model_assisted_share": st.column_config.NumberColumn("Model-assisted", format="percent"),
    "handle_p50_s": st.column_config.NumberColumn("Handle p50 (s)", format="%.1f"),
    "handle_p90_s": st.column_config.NumberColumn("Handle p90 (s)", format="%.1f"),
    "skip_rate": st.column_config.NumberColumn("Skip rate", format="percent"),
    "first_pass_acceptance": st.column_config.NumberColumn(
        "First-pass acceptance", format="percent", help="Reviews accepting work never rejected before ÷ reviews"
    ),
    "acceptance": st.column_config.NumberColumn("Acceptance", format="percent", help="(accepted + fixed) ÷ reviewed"),
    "gold_accuracy": st.column_config.NumberColumn(
        "Gold accuracy", format="percent", help=f"Shown from {MIN_GOLD_ANSWERS} gold answers on"
    ),
    "gold_ci": st.column_config.TextColumn("Gold 95 % CI"),
    "gold_answers": st.column_config.NumberColumn("Gold N", format="%d"),
    "peer_agreement": st.column_config.NumberColumn("Agreement with peers", format="percent"),
    "flags": st.column_config.TextColumn("Outlier flags", width="large"),
}


def annotator_table(filters: queries.Filters) -> pd.DataFrame:
    """One row per annotator, exactly the columns shown (and exported)."""
    output = fetch(queries.annotator_output(filters))
    if output.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    table = output.merge(fetch(queries.annotator_active_time(filters)), on="annotator_id", how="left")
    reviews = fetch(queries.review_totals(filters, by="annotator_id")).rename(
        columns={"acceptance_score": "acceptance"}
    )
    table = table.merge(reviews, on="annotator_id", how="left")
    table = table.merge(fetch(queries.gold_totals(filters, by="annotator_id")), on="annotator_id", how="left")
    table = table.merge(fetch(queries.first_pass_totals(filters, by="annotator_id")), on="annotator_id", how="left")
    table = table.merge(fetch(queries.annotator_peer_agreement(filters)), on="annotator_id", how="left")
    for column in ("active_hours", "reviewed", "accepted", "fixed", "gold_answers", "gold_correct"):
        table[column] = table[column].fillna(0)
    table["per_active_hour"] = (table["annotations"] / table["active_hours"]).where(table["active_hours"] > 0)
    table["model_assisted_share"] = (table["model_assisted"] / table["annotations"]).where(table["annotations"] > 0)
    table["gold_accuracy"] = table["gold_accuracy"].where(table["gold_answers"] >= MIN_GOLD_ANSWERS)
    table["gold_ci"] = [
        _interval(wilson_interval(int(c), int(n))) if n >= MIN_GOLD_ANSWERS else "not enough gold"
        for c, n in zip(table["gold_correct"], table["gold_answers"], strict=True)
    ]
    table["gold_answers"] = table["gold_answers"].astype("int64")
    table["flags"] = flag_outliers(table)
    numeric = [name for name in COLUMNS if name not in ("annotator_id", "gold_ci", "flags")]
    table[numeric] = table[numeric].apply(pd.to_numeric)  # NULLs become NaN: shown empty, not "None"
    return table[list(COLUMNS)].sort_values("annotations", ascending=False, ignore_index=True)


def _interval(bounds: tuple[float, float] | None) -> str:
    return "–" if bounds is None else f"{bounds[0]:.0%} – {bounds[1]:.0%}"


def render(state: ViewState) -> None:
    st.header("Annotators")
    table = annotator_table(state.filters)
    if table.empty:
        not_enough_data("Annotators", "nobody submitted annotations in this range and selection.")
        return
    flagged = int((table["flags"] != "").sum())
    st.caption(
        f"{len(table)} annotators · {flagged} flagged. Click a column header to sort. Flags compare each annotator "
        "with the others in this selection, from 20 annotations on."
    )
    only_flagged = st.toggle("Only flagged annotators", value=False)
    shown = table[table["flags"] != ""] if only_flagged else table
    st.dataframe(shown, hide_index=True, column_config=COLUMNS, height=min(36 * (len(shown) + 1) + 2, 720))
    st.download_button(
        "Download CSV (exactly this table)",
        shown.to_csv(index=False).encode(),
        file_name=f"annotators_{state.filters.start:%Y%m%dT%H%M}_{state.filters.end:%Y%m%dT%H%M}.csv",
        mime="text/csv",
    )

    st.subheader("One annotator over time")
    annotator = st.selectbox("Annotator", list(table["annotator_id"]), index=0)
    hours = fetch(queries.annotator_hours(state.filters, annotator))
    if hours.empty:
        not_enough_data(annotator, "no work in this range.")
        return
    hours["per_active_hour"] = (hours["annotations"] / hours["active_hours"]).where(hours["active_hours"] > 0)
    left, right = st.columns(2)
    left.plotly_chart(
        charts.lines(
            hours,
            x="hour",
            bucket_s=3600,  # hourly rows
            y="annotations",
            series=None,
            title=f"{annotator}: annotations per hour",
            x_title="hour (UTC)",
            y_title="annotations",
            hover="%{y:,.0f} annotations",
        )
    )
    right.plotly_chart(
        charts.lines(
            hours.dropna(subset=["handle_p50_s"]),
            x="hour",
            bucket_s=3600,  # hourly rows
            y="handle_p50_s",
            series=None,
            title=f"{annotator}: median handle time",
            x_title="hour (UTC)",
            y_title="seconds",
            hover="%{y:.1f} s per annotation",
        )
    )


live(render)
