"""Alerts: what is pending or firing now, since when, what to do, and what fired in the range."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.page import live
from dashboard.presentation import alert_episodes, format_duration

NOT_RUNNING = (
    "No alert has ever changed state here. Alerts come from the evaluator: `labelpulse alerts` "
    "(rules in `alerts/rules/`, check them with `labelpulse alerts check`)."
)


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()) if key != "severity")


def active(filters: queries.Filters) -> None:
    now = fetch(queries.alerts_now(filters))
    firing = int((now["state"] == "firing").sum()) if not now.empty else 0
    columns = st.columns(3)
    columns[0].metric("Firing", firing)
    columns[1].metric("Pending", len(now) - firing, help="The condition holds, not yet for the rule's `for`")
    if now.empty:
        st.success("Nothing is pending or firing.", icon=":material/check_circle:")
        return
    moment = pd.Timestamp(datetime.now(UTC)).tz_localize(None)
    table = pd.DataFrame(
        {
            "state": now["state"],
            "alert": now["rule"],
            "severity": [labels.get("severity", "") for labels in now["labels"]],
            "labels": [_labels(labels) for labels in now["labels"]],
            "for": [format_duration(moment - pd.Timestamp(start)) for start in now["episode_start"]],
            "summary": now["summary"],
            "runbook": now["runbook_url"],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={"runbook": st.column_config.LinkColumn("runbook", display_text="open runbook")},
    )


def timeline(filters: queries.Filters) -> None:
    episodes = alert_episodes(fetch(queries.alert_transitions(filters)), filters.start, filters.end)
    if episodes.empty:
        st.info("No alert fired in this range.", icon=":material/info:")
        return
    end = pd.Timestamp(filters.end).tz_localize(None)
    shown = episodes.assign(
        instance=[
            f"{rule} {_labels(labels)}".strip()
            for rule, labels in zip(episodes["rule"], episodes["labels"], strict=True)
        ],
        until=pd.to_datetime(episodes["resolved_at"]).astype("datetime64[ns]").fillna(end),
    )
    st.plotly_chart(
        charts.timeline(
            shown, start="fired_at", end="until", y="instance", color="rule", hover="summary", title="When alerts fired"
        )
    )


def render(state: ViewState) -> None:
    st.header("Alerts")
    log = fetch(queries.alert_log(state.filters))
    active(state.filters)
    st.subheader("History")
    timeline(state.filters)
    if log.empty:
        st.caption(NOT_RUNNING)
        return
    log = log.assign(labels=[_labels(labels) for labels in log["labels"]])
    st.dataframe(
        log,
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "previous_state": "from",
            "state": "to",
            "runbook_url": st.column_config.LinkColumn("runbook", display_text="open runbook"),
        },
    )


live(render)
