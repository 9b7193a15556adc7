"""Annotators: who is productive, who needs help — a sortable table with outliers explained."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.markdown import literal
from dashboard.page import MISSING, live, not_enough_data
from dashboard.page import table as page_table
from schema import queries
from schema.metric_definitions import MIN_GOLD_ANSWERS
from schema.summaries import FLAG_MIN_ANNOTATIONS, SCORECARD_COLUMNS, annotator_scorecard

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
assert set(COLUMNS) == set(SCORECARD_COLUMNS), "a column of the scorecard without its presentation, or the reverse"


def render(state: ViewState) -> None:
    st.header("Annotators")
    table = annotator_scorecard(state.filters, fetch)  # every scorecard column: shown, or in the CSV only
    if table.empty:
        not_enough_data("Annotators", "nobody submitted annotations in this range and selection.")
        return
    flagged = table[table["flags"] != ""]
    st.caption(
        f"{len(table)} annotators · {len(flagged)} flagged. Click a column header to sort. Flags compare each "
        f"annotator with the others in this selection, from {FLAG_MIN_ANNOTATIONS} annotations on."
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
