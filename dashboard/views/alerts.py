"""Alerts: what is pending or firing now, since when, what to do, and what fired in the range."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.data import fetch
from dashboard.filters import ViewState
from dashboard.page import MISSING, evaluator_report, live, table
from dashboard.presentation import alert_episodes, format_age, format_duration
from schema import queries

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
    instances = pd.DataFrame(
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
    table(
        instances,
        {
            "state": st.column_config.TextColumn("state", width=70),
            "alert": st.column_config.TextColumn("alert", width=190, pinned=True),
            "severity": st.column_config.TextColumn("severity", width=70),
            "labels": st.column_config.TextColumn("labels", width=180),
            "for": st.column_config.TextColumn("for", width=70),
            "summary": st.column_config.TextColumn("summary", width=270),
            "runbook": st.column_config.LinkColumn("runbook", display_text="open runbook", width=110),
        },
    )


def watched_rules() -> bool:
    """The rules the evaluator is watching with: an empty page still shows that the watch is on. False when
    the evaluator does not answer."""
    st.subheader("Rules")
    report = evaluator_report()
    if isinstance(report, str):
        st.warning(
            f"**Nothing is being watched from here:** {report}. Alerts come from the evaluator: "
            "`labelpulse alerts` (`labelpulse up` starts it); set `LABELPULSE_ALERTS_METRICS_URL` if it "
            "serves its metrics elsewhere.",
            icon=":material/visibility_off:",
        )
        return False
    rules = report.rules
    now = datetime.now(UTC)
    evaluated = [
        "never" if pd.isna(at) else f"{format_age((pd.Timestamp(now) - at).total_seconds())} ago"
        for at in rules["evaluated_at"]
    ]
    watched = int(rules["evaluated_at"].notna().sum())
    st.caption(f"{len(rules)} rules loaded, {watched} evaluated so far.")
    table(
        rules.assign(evaluated=evaluated)[["rule", "group", "severity", "state", "evaluated", "value", "errors"]],
        {
            "rule": st.column_config.TextColumn("rule", width=220, pinned=True),
            "group": st.column_config.TextColumn("group", width=110),
            "severity": st.column_config.TextColumn("severity", width=80),
            "state": st.column_config.TextColumn(
                "state", width=130, help="firing or pending when any instance is; inactive: the condition holds nowhere"
            ),
            "evaluated": st.column_config.TextColumn(
                "last evaluated", width=120, help="When its last evaluation ran without error"
            ),
            "value": st.column_config.NumberColumn(
                "last value",
                format="%.3g",
                width=100,
                help=f"At the last evaluation, the value of its most urgent instance. {MISSING}: the condition "
                "held for none (all well)",
            ),
            "errors": st.column_config.NumberColumn(
                "errors", format="%d", width=70, help="Failed evaluations since the evaluator started"
            ),
        },
    )
    return True


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
    watching = watched_rules()
    st.subheader("History")
    timeline(state.filters)
    if log.empty:
        st.caption("No alert changed state in this range." if watching else NOT_RUNNING)
        return
    log = log.assign(labels=[_labels(labels) for labels in log["labels"]])
    table(
        log,
        {
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss", width=150),
            "rule": st.column_config.TextColumn("rule", width=170),
            "previous_state": st.column_config.TextColumn("from", width=70),
            "state": st.column_config.TextColumn("to", width=70),
            "labels": st.column_config.TextColumn("labels", width=160),
            "value": st.column_config.NumberColumn("value", format="%.3g", width=70),
            "summary": st.column_config.TextColumn("summary", width=180),
            "runbook_url": st.column_config.LinkColumn("runbook", display_text="open runbook", width=100),
        },
    )


live(render)
