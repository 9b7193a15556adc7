"""A seeded ClickHouse for the dashboard's tests, and reading what AppTest shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pandas as pd
from prometheus_client import start_http_server
from streamlit.testing.v1 import AppTest

from alerts.evaluator import Evaluator
from alerts.rules import DEFAULT_RULES_DIR, load_rules
from labelpulse.net import free_port
from labelpulse.simulator import Plan, generate
from schema import migrations
from schema.client import ClickHouseSettings, connect
from streams.offline import load
from tests.support.services import ClickHouseService

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def create_database(service: ClickHouseService, *, seed_events: int) -> tuple[ClickHouseSettings, list[bytes]]:
    settings = replace(service.settings, database=f"dash_{uuid.uuid4().hex[:10]}")
    admin = connect(service.settings, database="default")
    admin.command(f"CREATE DATABASE {settings.database}")
    admin.close()
    client = connect(settings)
    migrations.migrate(client)
    # One simulated event per second, from two hours ago: all inside the default 6-hour range.
    plan = Plan(seed=5, start=datetime.now(UTC) - timedelta(hours=2), rate=1, anomalies=("garbage",))
    values = [message.value for message in islice(generate(plan), seed_events)]
    load(values, lambda: client)
    return settings, values


@contextmanager
def evaluator_metrics(settings: ClickHouseSettings, skip_groups: tuple[str, ...] = ()) -> Iterator[str]:
    """The default rules evaluated once over `settings`' data (but for `skip_groups`) by a real Evaluator,
    its /metrics served as `labelpulse alerts` serves them; yields the URL."""
    evaluator = Evaluator(load_rules(DEFAULT_RULES_DIR).rules, lambda: connect(settings))
    for group in evaluator.groups:
        if group.name not in skip_groups:
            evaluator.evaluate_group(group)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        connect(settings).command(
            "TRUNCATE TABLE alert_history"
        )  # the transitions it wrote: other tests share the data


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def count_of(events: pd.DataFrame, event_type: str, project: str | None = None) -> int:
    selected = events[events["event_type"] == event_type]
    return len(selected if project is None else selected[selected["project_id"] == project])


# What a link may carry to someone who clicks it: Markdown and HTML that would render as a link, an
# image (fetched on load), formatting, LaTeX, Streamlit's :color[…] directives, and a bare URL.
HOSTILE_LINK_VALUE = (
    "[click me](http://evil.example/x) ![pixel](http://evil.example/p.png) <b>bold</b> $x^2$ :red[red] "
    "**strong** www.evil.example"
)
