"""Annotators: who is productive, who needs help — a sortable table with outliers explained."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.markdown import literal
from dashboard.page import MISSING, live, not_enough_data
from dashboard.page import table as page_table
from dashboard.presentation import flag_outliers
from schema.metric_definitions import MIN_GOLD_ANSWERS
from schema.stats import wilson_interval

# Every column of the table (and of its CSV export), and how the page shows it: the key columns pinned
# on the left, narrow widths that fit 1440 px. Handle time p90, the model-assisted share and the gold N are
# in the CSV only (the CI column says N).
COLUMNS = {
    "annotator_id": st.column_config.TextColumn("Annotator", width=90, pinned=True),
    "flags": st.column_config.TextColumn(
        "Outlier flags", width=140, pinned=True, help="Why this annotator stands out; listed in full above"
    ),
    "annotations": st.column_config.NumberColumn("Annotations", format="%d", width=80),
    "active_hours": st.column_config.NumberColumn(
        "Active h", format="%.2f", width=65, help="Gaps between events under the idle threshold"
    ),
    "per_active_hour": st.column_config.NumberColumn(
        "Per active h", format="%.1f", width=80, help=f"Annotations ÷ active hours. {MISSING}: no active time"
    ),
    "model_assisted_share": st.column_config.NumberColumn("Model-assisted", format="percent"),
    "handle_p50_s": st.column_config.NumberColumn(
        "Handle p50", format="%.1f s", width=70, help=f"Median handle time. {MISSING}: no timed submission"
    ),
    "handle_p90_s": st.column_config.NumberColumn("Handle p90 (s)", format="%.1f"),
    "skip_rate": st.column_config.NumberColumn(
        "Skips", format="percent", width=60, help="skipped ÷ (submitted + skipped)"
    ),
    "first_pass_acceptance": st.column_config.NumberColumn(
        "First-pass",
        format="percent",
        width=75,
        help=f"Reviews accepting work never rejected before ÷ reviews. {MISSING}: no review of their work yet",
    ),
    "acceptance": st.column_config.NumberColumn(
        "Accepted",
        format="percent",
        width=75,
        help=f"(accepted + fixed) ÷ reviewed. {MISSING}: no review of their work yet",
    ),
    "gold_accuracy": st.column_config.NumberColumn(
        "Gold", format="percent", width=60, help=f"{MISSING}: fewer than {MIN_GOLD_ANSWERS} gold answers"
    ),
    "gold_ci": st.column_config.TextColumn(
        "Gold CI · N",
        width=110,
        help=f"95 % Wilson interval of gold accuracy, and the gold answers (N); {MISSING} under {MIN_GOLD_ANSWERS}",
    ),
    "gold_answers": st.column_config.NumberColumn("Gold N", format="%d"),
    "peer_agreement": st.column_config.NumberColumn(
        "Peers",
        format="percent",
        width=60,
        help=f"Agreement with peers on shared tasks. {MISSING}: no task shared with another annotator",
    ),
}
CSV_ONLY = ("model_assisted_share", "handle_p90_s", "gold_answers")


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
        f"{_interval(wilson_interval(int(c), int(n)))} · N {int(n)}"
        if n >= MIN_GOLD_ANSWERS
        else f"{MISSING} · N {int(n)}"
        for c, n in zip(table["gold_correct"], table["gold_answers"], strict=True)
    ]
    table["gold_answers"] = table["gold_answers"].astype("int64")
    table["flags"] = flag_outliers(table)
    numeric = [name for name in COLUMNS if name not in ("annotator_id", "gold_ci", "flags")]
    table[numeric] = table[numeric].apply(pd.to_numeric)  # NULLs become NaN: shown empty, not "None"
    return table[list(COLUMNS)].sort_values("annotations", ascending=False, ignore_index=True)


def _interval(bounds: tuple[float, float] | None) -> str:
    return MISSING if bounds is None else f"{bounds[0]:.0%} – {bounds[1]:.0%}"


def render(state: ViewState) -> None:
    st.header("Annotators")
    table = annotator_table(state.filters)
    if table.empty:
        not_enough_data("Annotators", "nobody submitted annotations in this range and selection.")
        return
    flagged = table[table["flags"] != ""]
    st.caption(
        f"{len(table)} annotators · {len(flagged)} flagged. Click a column header to sort. Flags compare each "
        "annotator with the others in this selection, from 20 annotations on."
    )
    if not flagged.empty:
        st.warning(
            "\n".join(
                f"- {literal(annotator)}: {reasons}"
                for annotator, reasons in zip(flagged["annotator_id"], flagged["flags"], strict=True)
            ),
            icon=":material/flag:",
        )
    only_flagged = st.toggle("Only flagged annotators", value=False)
    shown = flagged if only_flagged else table
    on_screen = [column for column in COLUMNS if column not in CSV_ONLY]
    page_table(shown, COLUMNS, column_order=on_screen, height=min(36 * (len(shown) + 1) + 2, 720))
    st.download_button(
        "Download CSV (these rows, every column)",
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
