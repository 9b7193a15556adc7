"""Each metric through every consumer on the same events, all equal to each other and to pandas on the raw events.

The consumers: the dashboard's queries, the alert conditions, the business gauges (alerts.collector), and where
a metric has a PromQL twin, a real Prometheus scraping those gauges and evaluating the rules rendered from the
alert rules. They all build on schema.metric_definitions; a consumer that spells a metric its own way, or asks
for other rows of a window, makes its column here differ from the others.

The events span more than a day before NOW (on the hour, so that every consumer's windows cover the same rows),
so a window that starts too early or too late counts other events.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, start_http_server

from alerts import conditions
from alerts.collector import BusinessCollector
from alerts.prometheus import render
from alerts.rules import load_rule_file, params_for
from labelpulse.net import free_port
from labelpulse.simulator import Plan, generate
from schema import metric_definitions as metric
from schema import queries
from schema.stats import wilson_interval
from streams.offline import load
from tests.support.http import get_json, serving
from tests.support.references import expected_from, expected_gold_answers, expected_handle_times, expected_review_rows
from tests.support.services import system_tool, wait_for

pytestmark = pytest.mark.clickhouse
Stored = tuple[Client, pd.DataFrame, "Counter[str]"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
NOW_MS = int(NOW.timestamp() * 1000)
RECEIVED_AT = NOW - timedelta(minutes=1)  # when the workers stored every message


@pytest.fixture(scope="module")
def stored(clickhouse_service: Any) -> Iterator[tuple[Client, pd.DataFrame, Counter[str]]]:
    """Two stretches of simulated work, one 25 hours before NOW (outside every window but all time), one across
    the last hour's start; loaded through the worker's own path into a database of this module."""
    from dataclasses import replace

    from schema import migrations
    from schema.client import connect

    database = f"test_consumers_{int(time.time() * 1000)}"
    admin = connect(clickhouse_service.settings, database="default")
    admin.command(f"CREATE DATABASE {database}")
    client = connect(replace(clickhouse_service.settings, database=database))
    migrations.migrate(client)
    values = []
    # The first stretch came from CVAT, which went quiet; of the second, some events name Label Studio, some no source.
    for seed, start, sources in (
        (11, NOW - timedelta(hours=25), ("cvat",)),
        (12, NOW - timedelta(minutes=90), ("label-studio", None)),
    ):
        plan = Plan(seed=seed, start=start, rate=1, anomalies=("garbage",))
        messages = [m for m in islice(generate(plan), 3000) if m.occurred_at < NOW - timedelta(minutes=20)]
        values += [with_source_system(m.value, sources[n % len(sources)]) for n, m in enumerate(messages)]
    load(values, lambda: client, now=RECEIVED_AT)
    events, refused = expected_from(values)
    yield client, events, refused
    admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")


def with_source_system(value: bytes, source_system: str | None) -> bytes:
    """An event naming the source system that sent it (None: naming none); garbage stays as it was."""
    try:
        document = json.loads(value)
    except ValueError:
        return value
    if not isinstance(document, dict) or "event_id" not in document:
        return value
    document.pop("source_system", None)
    return json.dumps(document if source_system is None else {**document, "source_system": source_system}).encode()


def by_project(frame: pd.DataFrame, column: str, key: str = "project_id") -> dict[str, float]:
    return {row[key]: float(row[column]) for _, row in frame.iterrows() if not pd.isna(row[column])}


def dashboard(client: Client, query: queries.Query) -> pd.DataFrame:
    return client.query_df(query.sql, parameters=query.parameters)


def count_per_project(events: pd.DataFrame, event_type: str, since: datetime | None = None) -> dict[str, int]:
    chosen = events[(events["event_type"] == event_type) & (events["occurred_at"] < NOW)]
    if since is not None:
        chosen = chosen[chosen["occurred_at"] >= since]
    counts = chosen.groupby("project_id").size()
    return {project: int(counts.get(project, 0)) for project in events["project_id"].unique()}


# -- Prometheus: the business gauges scraped, the rendered rules' expressions evaluated


@pytest.fixture(scope="module")
def prometheus(stored: Stored, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the business gauges, as of NOW, every second; yields its URL."""
    client, _, _ = stored
    registry = CollectorRegistry()
    registry.register(BusinessCollector(lambda: client, clock=lambda: NOW))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: labelpulse-evaluator\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    flags = [f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}"]
    try:
        with serving(system_tool("prometheus", "prometheus"), flags, directory / "prometheus.log") as url:
            wait_for(lambda: bool(promql(url, "labelpulse_business_up == 1")), 60, "the business gauges scraped")
            yield url
    finally:
        server.shutdown()
        thread.join(5)


def promql(url: str, expression: str, at: float | None = None) -> dict[str, float]:
    """An instant query's samples by their project label."""
    query = {"query": expression, **({"time": f"{at:.3f}"} if at is not None else {})}
    result = get_json(f"{url}/api/v1/query?{urllib.parse.urlencode(query)}")["data"]["result"]
    return {sample["metric"].get("project", ""): float(sample["value"][1]) for sample in result}


def rendered_expression(tmp_path: Path, kind: str, params: str) -> str:
    """The PromQL `alerts.prometheus` renders for one rule of `kind` with `params`."""
    (tmp_path / "rule.yml").write_text(
        f"groups:\n  - name: g\n    rules:\n      - alert: A\n        kind: {kind}\n        params: {params}\n"
        "        labels: {severity: ticket}\n"
        "        annotations: {summary: s, description: d, runbook_url: 'https://example.com/r'}\n"
    )
    loaded = load_rule_file(tmp_path / "rule.yml")
    assert not loaded.errors, loaded.errors
    text, skipped = render(loaded.rules)
    assert not skipped
    (rule,) = [r for group in yaml.safe_load(text)["groups"] for r in group["rules"] if r.get("alert") == "A"]
    return str(rule["expr"])


# -- the metrics


def test_backlog_and_eta_through_every_consumer(stored: Stored, prometheus: str, tmp_path: Path) -> None:
    client, events, _ = stored
    created, completed = count_per_project(events, "task_created"), count_per_project(events, "task_completed")
    want_backlog = {project: created[project] - completed[project] for project in created}
    completed_last_hour = count_per_project(events, "task_completed", NOW - HOUR)
    want_eta = {project: metric.eta_hours(want_backlog[project], completed_last_hour[project]) for project in created}
    assert any(0 < eta < math.inf for eta in want_eta.values()), "the events must give some project a finite ETA"

    board = dashboard(client, queries.backlog(queries.Filters(NOW - HOUR, NOW), rate_window=HOUR))
    alert = pd.DataFrame(conditions.backlog_and_pace(client, sorted(created), NOW - HOUR, NOW))
    gauges = scrape(client)
    assert by_project(board, "backlog") == want_backlog
    assert by_project(alert, "backlog", key="project") == want_backlog
    assert gauges["backlog"] == want_backlog
    assert promql(prometheus, metric.BACKLOG_PROMQL) == want_backlog

    board_eta = {row.project_id: metric.eta_hours(row.backlog, row.completed_recently) for row in board.itertuples()}
    # The alert's value with the deadline at NOW is how many hours the work still needs: the ETA.
    deadlines = {project: NOW.isoformat() for project in created}
    alert_eta = holding(client, "backlog_eta", deadlines=deadlines, window="1h")
    gauge_eta = {p: metric.eta_hours(gauges["backlog"][p], gauges["tasks_completed_last_hour"][p]) for p in created}
    at = float(int(time.time()) + 1)  # Prometheus's clock, in the whole seconds a rendered deadline has
    wait_for(lambda: time.time() > at + 1 and bool(promql(prometheus, metric.BACKLOG_PROMQL, at)), 10, "a scrape by")
    deadline = datetime.fromtimestamp(at, UTC).isoformat()
    given = "{deadlines: {" + ", ".join(f'"{project}": "{deadline}"' for project in sorted(created)) + "}}"
    rendered_eta = promql(prometheus, rendered_expression(tmp_path, "backlog_eta", given), at)
    late = {project: eta for project, eta in want_eta.items() if eta > 0}
    assert board_eta == pytest.approx(want_eta)
    assert alert_eta == pytest.approx(late)
    assert gauge_eta == pytest.approx(want_eta)
    assert rendered_eta == pytest.approx(late)


def test_annotations_per_hour_through_every_consumer(stored: Stored, prometheus: str) -> None:
    client, events, _ = stored
    want = {p: float(n) for p, n in count_per_project(events, "annotation_submitted", NOW - HOUR).items()}
    assert sum(want.values()) > 0 and sum(count_per_project(events, "annotation_submitted").values()) > sum(
        want.values()
    ), "the events must have annotations inside and outside the last hour"

    board = dashboard(client, queries.project_totals(queries.Filters(NOW - HOUR, NOW)))
    params = params_for("throughput_drop", {"window": "1h"})
    alert = conditions.throughput(client, params, NOW - HOUR, NOW)
    assert {p: metric.per_hour(n, HOUR) for p, n in by_project(board, "annotations").items()} == want
    assert {row["project"]: metric.per_hour(row["current"], HOUR) for row in alert} == want
    assert scrape(client)["annotations_last_hour"] == want
    assert promql(prometheus, metric.gauge("annotations_last_hour")) == want


@pytest.mark.parametrize("name", ["first_pass_acceptance", "gold_accuracy"])
def test_quality_over_the_last_day_through_every_consumer(
    stored: Stored, prometheus: str, tmp_path: Path, name: str
) -> None:
    client, events, _ = stored
    want_counts = _quality_reference(events, name)
    want = {project: successes / trials for project, (successes, trials) in want_counts.items()}
    want_lower = {project: wilson_interval(s, n)[0] for project, (s, n) in want_counts.items()}  # type: ignore[index]
    assert len(want) > 1 and 0 < min(want.values()) < 1, "the events must judge several projects, not all perfect"
    proportion = metric.QUALITY_METRICS[name]

    query = queries.first_pass_totals if name == "first_pass_acceptance" else queries.gold_totals
    board = by_project(dashboard(client, query(queries.Filters(NOW - DAY, NOW))), name)
    # With threshold 1 and the lower bound, every project with a review or gold answer holds, valued by its bound.
    given = {"metric": name, "bound": "lower", "threshold": 1.0, "min_n": 1, "window": "1d"}
    alert = holding(client, "quality_drop", **given)
    gauges = scrape(client)
    successes, trials = proportion.gauges or ("", "")
    collector = {project: gauges[successes][project] / gauges[trials][project] for project in want}
    twin = promql(prometheus, proportion.promql())
    expression = rendered_expression(tmp_path, "quality_drop", yaml.safe_dump(given, default_flow_style=True))
    rendered = promql(prometheus, expression)

    assert board == pytest.approx(want)
    assert alert == pytest.approx(want_lower)
    assert collector == pytest.approx(want)
    assert twin == pytest.approx(want)
    assert rendered == pytest.approx(want_lower)


def test_an_annotators_gold_accuracy_in_the_dashboard_and_the_alert(stored: Stored) -> None:
    client, events, _ = stored
    answers = pd.DataFrame(
        sorted(expected_gold_answers(events)), columns=["project_id", "annotator_id", "t", "id", "ms", "l", "g", "ok"]
    )
    answers = answers[answers["ms"] >= NOW_MS - DAY.total_seconds() * 1000]
    want = {
        (project, annotator): wilson_interval(int(group["ok"].sum()), len(group))[1]  # type: ignore[index]
        for (project, annotator), group in answers.groupby(["project_id", "annotator_id"])
    }
    per_annotator = answers.groupby("annotator_id")["ok"]
    want_board = {annotator: ok.sum() / len(ok) for annotator, ok in per_annotator}
    board = dashboard(client, queries.gold_totals(queries.Filters(NOW - DAY, NOW), by="annotator_id"))
    # Every annotator whose upper bound is under 1 (not every answer right) holds with floor 1.
    alert = holding(client, "annotator_gold_floor", floor=1.0, min_n=1, window="1d")
    assert by_project(board, "gold_accuracy", key="annotator_id") == pytest.approx(want_board)
    assert alert == pytest.approx({key: bound for key, bound in want.items() if bound < 1})


def test_median_handle_time_in_the_dashboard_and_the_alert(stored: Stored) -> None:
    client, events, _ = stored
    timed = pd.DataFrame(
        sorted(expected_handle_times(events)), columns=["project_id", "annotator_id", "t", "id", "ms", "handle", "by"]
    )
    timed = timed[(timed["ms"] >= NOW_MS - DAY.total_seconds() * 1000) & (timed["ms"] < NOW_MS)]
    want = timed.groupby(["project_id", "annotator_id"])["handle"].quantile(0.5).to_dict()  # interpolated
    board = {}
    for project in timed["project_id"].unique():
        output = dashboard(client, queries.annotator_output(queries.Filters(NOW - DAY, NOW, projects=(project,))))
        board.update(
            {(project, a): 1000 * s for a, s in by_project(output, "handle_p50_s", key="annotator_id").items()}
        )
    # Against the project's slowest handle time before the window, nearly everyone is fast: valued by the median.
    given = {"window": "1d", "baseline": "7d", "percentile": 1.0, "ratio": 1.0, "min_annotations": 1}
    alert = {key: 1000 * seconds for key, seconds in holding(client, "annotator_fast_handle", **given).items()}
    assert board == pytest.approx(want)
    assert len(alert) > len(want) / 2
    assert alert == pytest.approx({key: want[key] for key in alert})


def test_dead_letter_ratio_in_the_dashboard_and_the_alert(stored: Stored) -> None:
    """Its PromQL twin reads the workers' counters, not what is stored: tests/prometheus covers it."""
    client, events, refused = stored
    want = sum(refused.values()) / (sum(refused.values()) + len(events))
    assert 0 < want < 1, "the events must hold some garbage"
    arrived = dashboard(client, queries.arrivals(queries.Filters(NOW - HOUR, NOW))).iloc[0]
    alert = holding(client, "pipeline_dead_letter_rate", window="10m", max_ratio=0.0, min_dead_letters=1)
    assert metric.dead_letter_ratio(int(arrived["dead_letters"]), int(arrived["stored"])) == pytest.approx(want)
    assert alert == {"": pytest.approx(want)}


def test_seconds_since_the_newest_event_through_every_consumer(stored: Stored, prometheus: str, tmp_path: Path) -> None:
    client, events, _ = stored
    newest = events[events["occurred_at"] < NOW].groupby("project_id")["occurred_at"].max()
    want = {project: (NOW - moment.to_pydatetime()).total_seconds() for project, moment in newest.items()}

    alert = holding(client, "no_events", window="1s")
    rendered = promql(prometheus, rendered_expression(tmp_path, "no_events", "{window: 1s}"))
    board = dashboard(client, queries.data_as_of()).iloc[0]["newest_occurred_at"]
    assert alert == pytest.approx(want)
    assert scrape(client)["seconds_since_last_event"] == pytest.approx(want)
    assert rendered == pytest.approx(want)
    assert (NOW - board.to_pydatetime().replace(tzinfo=UTC)).total_seconds() == pytest.approx(min(want.values()))


def test_events_and_last_event_per_source_system_through_every_consumer(stored: Stored) -> None:
    client, events, _ = stored
    before_now = events[events["occurred_at"] < NOW].assign(
        source_system=lambda frame: frame["source_system"].fillna(metric.UNSPECIFIED_SOURCE)
    )
    last_hour = before_now[before_now["occurred_at"] >= NOW - HOUR]
    want_events = last_hour.groupby("source_system").size().reindex(before_now["source_system"].unique(), fill_value=0)
    newest = before_now.groupby("source_system")["occurred_at"].max()
    want_age = {source: (NOW - moment.to_pydatetime()).total_seconds() for source, moment in newest.items()}
    assert set(want_events.index) == {"cvat", "label-studio", "unspecified"} and want_events["cvat"] == 0

    listed = dashboard(client, queries.source_systems(queries.Filters(NOW - HOUR, NOW)))
    series = dashboard(client, queries.events_by_source_system(queries.Filters(NOW - HOUR, NOW)))
    charted = (series["events_per_s"] * queries.bucket_seconds(HOUR)).groupby(series["source_system"]).sum()
    alert = {
        f.labels["source_system"]: f.value
        for f in conditions.evaluate(client, "source_quiet", params_for("source_quiet", {"window": "1s"}), NOW)
    }
    assert by_project(listed, "events", key="source_system") == want_events.astype(float).to_dict()
    assert charted.round().to_dict() == {source: n for source, n in want_events.items() if n}
    assert by_project(listed, "last_event_age_s", key="source_system") == pytest.approx(want_age)
    assert alert == pytest.approx(want_age)


# -- helpers


def holding(client: Client, kind: str, **given: Any) -> dict[Any, float]:
    """The alert condition's values at NOW by project, or by (project, annotator)."""
    results = conditions.evaluate(client, kind, params_for(kind, given), NOW)
    keys = [(f.labels["project"], f.labels["annotator"]) if "annotator" in f.labels else f.labels.get("project", "")
            for f in results]  # fmt: skip
    return {key: f.value for key, f in zip(keys, results, strict=True)}


def scrape(client: Client) -> dict[str, dict[str, float]]:
    """The business gauges as of NOW, by gauge name and project."""
    families = BusinessCollector(lambda: client, clock=lambda: NOW).collect()
    return {
        family.name.removeprefix("labelpulse_project_"): {s.labels["project"]: s.value for s in family.samples}
        for family in families
        if family.name.startswith("labelpulse_project_")
    }


def _quality_reference(events: pd.DataFrame, name: str) -> dict[str, tuple[int, int]]:
    """(successes, trials) per project over the last day, from the events sorted by time (tests/support/references)."""
    since = NOW_MS - DAY.total_seconds() * 1000
    if name == "first_pass_acceptance":
        rows = [(r[0], bool(r[8])) for r in expected_review_rows(events) if since <= r[5] < NOW_MS]
    else:
        rows = [(r[0], bool(r[7])) for r in expected_gold_answers(events) if since <= r[4] < NOW_MS]
    frame = pd.DataFrame(rows, columns=["project_id", "success"])
    return {p: (int(g["success"].sum()), len(g)) for p, g in frame.groupby("project_id")}
