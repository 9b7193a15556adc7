"""Pipeline: is data flowing, how fresh is it, what is being refused and why."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from dashboard import charts, runtime_status
from dashboard.data import fetch, settings
from dashboard.filters import ViewState
from dashboard.lag import LagUnavailable, consumer_lag
from dashboard.page import firing_episodes, live, table, view_state
from dashboard.presentation import format_age
from schema import queries
from schema.metric_definitions import UNSPECIFIED_SOURCE, dead_letter_ratio


@st.cache_resource
def status_path() -> Path:
    return runtime_status.status_path()


def runtime_banners() -> None:
    """What `labelpulse up` says is down or flapping, refreshed with the view; outside `live`,
    so it shows even while ClickHouse is the part that is down."""

    @st.fragment(run_every=view_state().refresh_s or None)
    def banners() -> None:
        for banner in runtime_status.banners(runtime_status.read_status(status_path()), time.time()):
            show = st.error if banner.level == "error" else st.warning
            show(banner.text, icon=":material/error:" if banner.level == "error" else ":material/warning:")

    banners()


def lag_panel(column: st.delta_generator.DeltaGenerator) -> None:
    config = settings()
    try:
        lag = consumer_lag(config.kafka, config.consumer_group)
    except LagUnavailable as error:
        column.metric("Consumer lag", "–", help=f"Unavailable: {error}")
        return
    column.metric(
        "Consumer lag",
        f"{int(lag['lag'].sum()):,}",
        help=f"Events in {config.kafka.events_topic} not yet committed by consumer group {config.consumer_group}, "
        "summed over partitions: "
        + ", ".join(f"p{p}: {n:,}" for p, n in zip(lag["partition"], lag["lag"], strict=True)),
    )


def sources_panel(state: ViewState) -> None:
    """Every source system as its own stream: its events over time, and how long ago it last sent one."""
    st.subheader("Sources")
    systems = fetch(queries.source_systems(state.filters))
    if systems.empty:
        st.info("No source has sent events yet.")
        return
    by_source = fetch(queries.events_by_source_system(state.filters))
    left, right = st.columns(2)
    if not by_source.empty:
        left.plotly_chart(
            charts.lines(
                by_source,
                x="bucket",
                bucket_s=queries.bucket_seconds(state.filters.span),
                y="events_per_s",
                series="source_system",
                title="Events in per second, by source",
                x_title="time (UTC)",
                y_title="events / s",
                hover="%{y:,.2f} events/s",
            )
        )
    systems["last_event_age"] = systems["last_event_age_s"].map(format_age)
    table(
        systems[["source_system", "events", "last_event_at", "last_event_age"]],
        {
            "source_system": st.column_config.TextColumn(
                "source",
                help=f"The source_system the events name (label-studio, cvat, labelbox, api, …); "
                f"{UNSPECIFIED_SOURCE}: events that name none",
                width=130,
            ),
            "events": st.column_config.NumberColumn("events in range", format="%d", width=110),
            "last_event_at": st.column_config.DatetimeColumn(
                "last event (UTC)", format="YYYY-MM-DD HH:mm:ss", help="When its newest event happened", width=160
            ),
            "last_event_age": st.column_config.TextColumn(
                "ago",
                help="How long before the range's end (now, for a range up to now) its newest event happened; "
                "the source_quiet alert rules fire on it",
                width=80,
            ),
        },
        where=right,
    )


def render(state: ViewState) -> None:
    st.header("Pipeline")
    ingest = fetch(queries.ingest_over_time(state.filters))
    dead = fetch(queries.dead_letters_by_reason(state.filters))
    arrived = fetch(queries.arrivals(state.filters)).iloc[0]
    columns = st.columns(6)
    columns[0].metric(
        "Events in / s",
        f"{ingest['events_per_s'].iloc[-1]:,.1f}" if not ingest.empty else "–",
        help="Valid events per second of the latest bucket (of its seconds so far), by the time they happened",
    )
    columns[1].metric(
        "Ingest lag p95",
        f"{ingest['lag_p95_s'].iloc[-1]:,.1f} s" if not ingest.empty else "–",
        help="received_at − occurred_at: the producer's and the worker's delay together",
    )
    total_dead = int(arrived["dead_letters"])
    columns[2].metric("Dead letters", f"{total_dead:,}", help="Refused messages in the range, by when they arrived")
    rate = dead_letter_ratio(total_dead, int(arrived["stored"]))
    columns[3].metric(
        "Dead-letter rate",
        f"{rate:.2%}" if rate is not None else "–",
        help="Refused messages ÷ all messages that arrived in the range",
    )
    lag_panel(columns[4])
    late = int(ingest["late_events"].sum()) if not ingest.empty else 0
    columns[5].metric(
        "Too late",
        f"{late:,}",
        help="Events that arrived more than the lateness bound (LABELPULSE_LATENESS_BOUND_S) behind the newest of "
        "their partition: stored and counted in throughput, left out of handle times, reviews, gold, agreement and "
        "active time",
    )
    if not ingest.empty:
        left, right = st.columns(2)
        events = charts.lines(
            ingest,
            x="bucket",
            bucket_s=queries.bucket_seconds(state.filters.span),
            y="events_per_s",
            series=None,
            title="Events in per second",
            x_title="time (UTC)",
            y_title="events / s",
            hover="%{y:,.1f} events/s",
        )
        episodes = firing_episodes(state.filters, about_projects=False)
        left.plotly_chart(charts.mark_alerts(events, episodes, ingest["bucket"].max()))
        lag = ingest.melt(
            id_vars="bucket", value_vars=["lag_p50_s", "lag_p95_s"], var_name="quantile", value_name="seconds"
        )
        lag["quantile"] = lag["quantile"].map({"lag_p50_s": "p50", "lag_p95_s": "p95"})
        right.plotly_chart(
            charts.lines(
                lag,
                x="bucket",
                bucket_s=queries.bucket_seconds(state.filters.span),
                y="seconds",
                series="quantile",
                title="End-to-end ingest lag",
                x_title="time (UTC)",
                y_title="seconds",
                hover="%{y:,.2f} s from occurred to stored",
            )
        )
    sources_panel(state)
    st.subheader("Dead letters")
    if dead.empty:
        st.success("No message was refused in this range.")
        return
    st.plotly_chart(
        charts.bars(
            dead,
            x="rule",
            y="dead_letters",
            title="Dead letters by reason",
            x_title="rule",
            y_title="messages",
            hover="%{x:,.0f} messages",
            horizontal=True,
        )
    )
    st.caption("Latest refused messages (the first 200 characters of each):")
    table(
        fetch(queries.latest_dead_letters(state.filters)),
        {
            "received_at": st.column_config.DatetimeColumn("received (UTC)", format="YYYY-MM-DD HH:mm:ss", width=150),
            "rule": st.column_config.TextColumn("rule", width=130),
            "field": st.column_config.TextColumn("field", width=90),
            "reason": st.column_config.TextColumn("reason", width=220),
            "partition": st.column_config.NumberColumn("partition", format="%d", width=65),
            "offset": st.column_config.NumberColumn("offset", format="%d", width=70),
            "raw_start": st.column_config.TextColumn("message starts with", width=240),
        },
    )


runtime_banners()
live(render)
