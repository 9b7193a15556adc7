"""What every view shares: the filters chosen in the sidebar, live refresh, and the edge cases
(ClickHouse unreachable, nothing stored yet) handled the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from access.scoped import SchemaMissing
from dashboard.data import fetch, settings
from dashboard.evaluator_report import EvaluatorReport, EvaluatorUnavailable
from dashboard.evaluator_report import read as read_evaluator_report
from dashboard.filters import ViewState
from dashboard.markdown import literal
from dashboard.presentation import alert_episodes, format_age
from schema import queries
from schema.client import ClickHouseUnavailable
from schema.summaries import MISSING

STATE_KEY = "labelpulse_view_state"
FIRST_RUN = (
    "**No events yet.** Start the whole embedded system with `./dev up`, or send simulated "
    "activity to a running one with `labelpulse generate --rate 50`. This page refreshes by itself."
)


def view_state() -> ViewState:
    state: ViewState = st.session_state[STATE_KEY]
    return state


def live(render: Callable[[ViewState], None]) -> None:
    """Run a view's body, re-running it every `refresh` seconds without touching the filters."""
    state = view_state()

    @st.fragment(run_every=state.refresh_s or None)
    def body() -> None:
        try:
            newest = fetch(queries.data_as_of())
            if newest.empty or pd.isna(newest.iloc[0]["newest_received_at"]):
                st.info(FIRST_RUN, icon=":material/info:")
                return
            freshness_caption(newest.iloc[0]["newest_occurred_at"], newest.iloc[0]["newest_received_at"])
            render(state)
        except SchemaMissing as error:  # before ClickHouseUnavailable: it is one
            st.error(
                f"**The LabelPulse schema is not in ClickHouse** ({error}).\n\n"
                "Apply it with `labelpulse migrate` (`labelpulse up` does it for the embedded default).",
                icon=":material/error:",
            )
        except ClickHouseUnavailable as error:
            st.error(
                f"**ClickHouse is not answering** ({error}).\n\n"
                "Is it running? `labelpulse up` starts the embedded one; for a server, check "
                "`LABELPULSE_CLICKHOUSE_HOST`/`_PORT`. This page retries by itself on every refresh.",
                icon=":material/error:",
            )

    body()


def freshness_caption(newest_occurred_at: pd.Timestamp, newest_received_at: pd.Timestamp) -> None:
    now = datetime.now(UTC)
    age = (now - newest_received_at.to_pydatetime().replace(tzinfo=UTC)).total_seconds()
    st.caption(
        f"Data as of {newest_occurred_at:%Y-%m-%d %H:%M:%S} UTC (newest event) · last stored "
        f"{format_age(age)} ago · page refreshed {now:%H:%M:%S} UTC",
        help="Freshness: when the newest stored event happened, and how long ago a worker last stored one.",
    )


def table(
    frame: pd.DataFrame, column_config: dict, *, where: st.delta_generator.DeltaGenerator | None = None, **options: Any
) -> None:
    """A table as every view shows it: no index, missing values as MISSING, never as "None"."""
    (where or st).dataframe(frame, hide_index=True, column_config=column_config, placeholder=MISSING, **options)


def evaluator_report() -> EvaluatorReport | str:
    """What the alert evaluator reports about its rules, or why there is no report (a sentence)."""
    url = settings().alerts_metrics_url
    if not url:
        return "the alert evaluator serves no metrics here (LABELPULSE_ALERTS_METRICS_PORT=0)"
    return _evaluator_report(url)


# Shared by every viewer and refresh for a few seconds: an evaluator that does not answer costs its timeout
# once, not on every page run. Ages on the page are computed from the evaluation times, so they stay right.
@st.cache_data(ttl=10, show_spinner=False)
def _evaluator_report(url: str) -> EvaluatorReport | str:
    try:
        return read_evaluator_report(url)
    except EvaluatorUnavailable as error:
        return str(error)


def not_enough_data(what: str, why: str) -> None:
    st.info(f"**{literal(what)}: not enough data.** {why}", icon=":material/info:")  # `what` may be an id


def firing_episodes(filters: queries.Filters, *, about_projects: bool) -> pd.DataFrame:
    """Alert episodes in the range to mark on charts: those about projects, or the pipeline's."""
    episodes = alert_episodes(fetch(queries.alert_transitions(filters)), filters.start, filters.end)
    return episodes[(episodes["project"] != "") == about_projects]
