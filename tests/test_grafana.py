"""Grafana's provisioning (deploy/grafana), checked without Grafana, which cannot run here.

What Grafana would do is done by hand, as the plugin and Grafana define it: every ClickHouse query
(panels, the `project` variable, the alert annotations) gets its macros expanded the way
grafana-clickhouse-datasource 4.8.2 expands them (pkg/macros/macros.go: `$__timeFilter(c)` is
`c >= toDateTime(from) AND c <= toDateTime(to)`, `$__timeInterval(c)` is
`toStartOfInterval(toDateTime(c), INTERVAL n second)`, `$__fromTime`/`$__toTime` are
`toDateTime(unix seconds)`) and its variables substituted as Grafana formats them, then runs against
an embedded ClickHouse holding simulated events — as the data source's own user, the `reader` of
deploy/access.yml — and must return the columns its panel expects, with rows; as a team's user of
deploy/grafana/team-example (a reader restricted to projects) every query returns only those projects'
rows, whatever projects the request names. Every PromQL
expression must pass promtool's parser, name only series LabelPulse exports or records, and answer
from a real Prometheus scraping a worker and the evaluator.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from access.policy import table_filters
from alerts import telemetry as evaluator_telemetry
from alerts.prometheus import RECORDING_RULES
from alerts.state import fingerprint
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from labelpulse.simulator import PROJECTS
from schema import metric_definitions as metric
from schema.client import ClickHouseSettings, connect
from schema.tables import ALERT_HISTORY, ANALYST_VIEWS
from streams import telemetry as worker_telemetry
from tests.support.access_clickhouse import access_clickhouse
from tests.support.http import get_json, prometheus
from tests.support.services import REPO_ROOT, WorkerHarness, system_tool, wait_for

GRAFANA = REPO_ROOT / "deploy" / "grafana"
DATASOURCES: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "provisioning/datasources/labelpulse.yml").read_text())[
    "datasources"
]
PROVIDERS: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "provisioning/dashboards/labelpulse.yml").read_text())[
    "providers"
]
DASHBOARDS: dict[str, dict[str, Any]] = {
    path.name: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))
}
CLICKHOUSE, PROMETHEUS = "grafana-clickhouse-datasource", "prometheus"
UID_OF = {source["type"]: source["uid"] for source in DATASOURCES}
TEAM_SOURCES: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "team-example/datasources.yml").read_text())[
    "datasources"
]
TEAM_PROVIDERS: list[dict[str, Any]] = yaml.safe_load((GRAFANA / "team-example/dashboards.yml").read_text())[
    "providers"
]


def team_user() -> dict[str, Any]:
    """The team example's ClickHouse user as deploy/access.yml shows it, commented out."""
    name = TEAM_SOURCES[0]["jsonData"]["username"]
    for line in (REPO_ROOT / "deploy" / "access.yml").read_text().splitlines():
        entry = line.strip().removeprefix("# - ")
        if entry.startswith(f"{{name: {name},"):
            return dict(yaml.safe_load(entry))
    raise AssertionError(f"deploy/access.yml shows no user {name} for deploy/grafana/team-example")


@dataclass(frozen=True)
class Query:
    """One query a dashboard makes: where it is, what kind, its text, and what it must return."""

    where: str
    kind: str  # "timeSeries", "table", "annotation", "variable" (ClickHouse) or "promql"
    text: str
    columns: tuple[str, ...] = ()  # columns the panel names (field overrides)

    def __str__(self) -> str:
        return self.where


def queries_of(name: str, board: dict[str, Any]) -> Iterator[Query]:
    for panel in board["panels"]:
        overrides = tuple(
            o["matcher"]["options"] for o in panel.get("fieldConfig", {}).get("overrides", [])
            if o["matcher"]["id"] == "byName"
        )  # fmt: skip
        for target in panel.get("targets", []):
            where = f"{name}: {panel['title']} ({target['refId']})"
            if target["datasource"]["type"] == PROMETHEUS:
                yield Query(where, "promql", target["expr"])
            else:
                yield Query(where, target["queryType"], target["rawSql"], overrides)
    for variable in board["templating"]["list"]:
        yield Query(f"{name}: variable {variable['name']}", "variable", variable["query"])
    for annotation in board["annotations"]["list"]:
        yield Query(f"{name}: annotation {annotation['name']}", "annotation", annotation["target"]["rawSql"])


QUERIES = [query for name, board in DASHBOARDS.items() for query in queries_of(name, board)]
SQL_QUERIES = [query for query in QUERIES if query.kind != "promql"]
PROMQL_QUERIES = [query for query in QUERIES if query.kind == "promql"]


# ------------------------------------------------------------------ Grafana's and the plugin's substitutions


@dataclass(frozen=True)
class PanelRange:
    """The time range and interval Grafana sends with a panel's query."""

    start: datetime
    end: datetime
    interval: timedelta


def expand_macros(sql: str, panel: PanelRange) -> str:
    """The plugin's macros replaced as pkg/macros/macros.go of grafana-clickhouse-datasource 4.8.2 does."""

    def seconds(moment: datetime) -> str:
        return f"toDateTime({int(moment.timestamp())})"

    def milliseconds(moment: datetime) -> str:
        return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"

    interval_s = max(int(panel.interval.total_seconds()), 1)
    interval_ms = max(int(panel.interval.total_seconds() * 1000), 1)
    with_column = {
        "timeFilter": lambda c: f"{c} >= {seconds(panel.start)} AND {c} <= {seconds(panel.end)}",
        "timeFilter_ms": lambda c: f"{c} >= {milliseconds(panel.start)} AND {c} <= {milliseconds(panel.end)}",
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval_s} second)",
        "timeInterval_ms": lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {interval_ms} millisecond)",
    }
    alone = {
        "fromTime": seconds(panel.start),
        "toTime": seconds(panel.end),
        "fromTime_ms": milliseconds(panel.start),
        "toTime_ms": milliseconds(panel.end),
        "interval_s": str(interval_s),
    }

    def replace(match: re.Match[str]) -> str:
        name, argument = match[1], match[2]
        if argument is not None and name in with_column:
            return with_column[name](argument.strip())
        if argument is None and name in alone:
            return alone[name]
        raise AssertionError(f"macro $__{name} is not one the plugin expands this way: {match[0]}")

    return re.sub(r"\$__(\w+)(?:\(([^()]*)\))?", replace, sql)


def sql_with_variables(text: str, values: dict[str, list[str]]) -> str:
    """`${name:singlequote}` as Grafana formats it: each value quoted, `'` escaped, joined by commas."""

    def replace(match: re.Match[str]) -> str:
        assert match[2] == "singlequote", f"{match[0]}: SQL takes a variable as ${{name:singlequote}}"
        return ",".join("'" + value.replace("'", "\\'") + "'" for value in values[match[1]])

    return re.sub(r"\$\{(\w+):(\w+)\}", replace, text)


def promql_with_variables(text: str, values: dict[str, list[str]]) -> str:
    """`$name` of a multi-value variable as Grafana's Prometheus data source puts it in a regex matcher
    (interpolateQueryExpr with prometheusSpecialRegexEscape): regex metacharacters escaped inside a PromQL
    string, several values as `(a|b)`. `$__rate_interval` becomes a minute (four 15 s scrapes)."""

    def escape(value: str) -> str:
        return re.sub(r"([$^*{}\[\]+?.()|])", r"\\\\\1", value.replace("\\", "\\\\\\\\"))

    def replace(match: re.Match[str]) -> str:
        escaped = [escape(value) for value in values[match[1] or match[2]]]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return re.sub(r"\$\{(\w+)\}|\$(?!__)(\w+)", replace, text).replace("$__rate_interval", "1m")


def test_expanding_macros_follows_the_plugin() -> None:
    panel = PanelRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC), timedelta(seconds=20))
    assert expand_macros("WHERE $__timeFilter(minute) AND $__fromTime < $__toTime_ms", panel) == (
        "WHERE minute >= toDateTime(1767225600) AND minute <= toDateTime(1767229200) "
        "AND toDateTime(1767225600) < fromUnixTimestamp64Milli(1767229200000)"
    )
    assert expand_macros("$__timeInterval(at)", panel) == "toStartOfInterval(toDateTime(at), INTERVAL 20 second)"
    with pytest.raises(AssertionError, match="conditionalAll"):
        expand_macros("$__conditionalAll(x, $y)", panel)


def test_variables_are_formatted_as_grafana_formats_them() -> None:
    assert sql_with_variables("IN (${p:singlequote})", {"p": ["a'b", "c"]}) == "IN ('a\\'b','c')"
    assert promql_with_variables('x{p=~"$p"}[$__rate_interval]', {"p": ["a.b", "c"]}) == 'x{p=~"(a\\\\.b|c)"}[1m]'
    assert promql_with_variables('x{p=~"${p}"}', {"p": ["retail-products"]}) == 'x{p=~"retail-products"}'


# ------------------------------------------------------------------ provisioning and dashboards, as files


def test_the_data_sources_are_clickhouse_over_http_and_the_compose_prometheus() -> None:
    assert [source["type"] for source in DATASOURCES] == [CLICKHOUSE, PROMETHEUS]
    clickhouse, prometheus = DATASOURCES
    assert clickhouse["jsonData"]["protocol"] == "http"
    assert (clickhouse["jsonData"]["host"], clickhouse["jsonData"]["port"]) == ("clickhouse", 8123)
    # Credentials from the container's environment, never from this file.
    assert clickhouse["jsonData"]["username"] == "${LABELPULSE_CLICKHOUSE_USER}"
    assert clickhouse["secureJsonData"] == {"password": "${LABELPULSE_CLICKHOUSE_PASSWORD}"}
    assert clickhouse["jsonData"]["defaultDatabase"] == "${LABELPULSE_CLICKHOUSE_DATABASE}"
    assert prometheus["url"] == "http://prometheus:9090"
    assert len(set(UID_OF.values())) == 2 and all(source.get("editable") is False for source in DATASOURCES)


def test_the_dashboard_provider_reads_the_folder_compose_mounts_and_it_holds_both_dashboards() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    (provider,) = PROVIDERS
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert {board["uid"] for board in DASHBOARDS.values()} == {"labelpulse-leads", "labelpulse-ops"}


def test_a_team_gets_an_organization_of_its_own_with_only_clickhouse_as_a_user_restricted_to_its_projects() -> None:
    (source,) = TEAM_SOURCES
    (provider,) = TEAM_PROVIDERS
    main = next(source for source in DATASOURCES if source["type"] == CLICKHOUSE)
    assert source["type"] == CLICKHOUSE, "no Prometheus: its series cannot be limited to projects"
    assert source["orgId"] == provider["orgId"] != 1, "not the main organization, where everyone may query all"
    assert source["uid"] == main["uid"], "the dashboards find the team's data source by the uid they name"
    assert provider["options"]["path"] == PROVIDERS[0]["options"]["path"]
    for key in ("host", "port", "protocol", "defaultDatabase"):
        assert source["jsonData"][key] == main["jsonData"][key], key
    user = team_user()
    assert user["role"] == "reader" and user["projects"], "a reader: the plugin sends settings an analyst may not"
    assert source["secureJsonData"] == {"password": f"${{{user['password_env']}}}"}


@pytest.mark.parametrize("name", DASHBOARDS)
def test_each_dashboard_is_grafana_shaped_and_names_only_the_provisioned_data_sources(name: str) -> None:
    board = DASHBOARDS[name]
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    references = [panel["datasource"] for panel in board["panels"] if panel["type"] != "row"]
    references += [target["datasource"] for panel in board["panels"] for target in panel.get("targets", [])]
    references += [item["datasource"] for item in board["templating"]["list"] + board["annotations"]["list"]]
    for reference in references:
        assert UID_OF.get(reference["type"]) == reference["uid"], f"{name}: {reference}"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']} leaves the grid"
        if panel["type"] != "row":
            assert panel["targets"] and panel["description"], f"{name}: {panel['title']}"


def test_the_leads_choose_projects_and_every_leads_query_honours_the_choice() -> None:
    board = DASHBOARDS["leads.json"]
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["multi"], variable["includeAll"]) == ("project", True, True)
    for query in queries_of("leads.json", board):
        if query.kind == "variable":
            continue
        uses = "${project:singlequote}" if query.kind != "promql" else 'project=~"$project"'
        assert uses in query.text, f"{query} ignores the project variable"


def test_alert_history_is_an_annotation_on_both_dashboards() -> None:
    for name, board in DASHBOARDS.items():
        assert any("FROM alert_history" in item["target"]["rawSql"] for item in board["annotations"]["list"]), name


def test_no_panel_spells_a_metric_formula_its_view_gauge_or_recording_rule_has() -> None:
    """Panels read metrics where their one definition put them (schema.metric_definitions via the analyst
    views, the business gauges, the recording rules): they add counts up, and never divide or take a
    quantile or a distinct count themselves. Rows as stored (dead letters, alert history) are read as they are."""
    readable = {view.name for view in ANALYST_VIEWS} | {"dead_letters", "alert_history"}
    for query in SQL_QUERIES:
        if query.kind == "variable":
            continue  # the list of projects: no metric
        tables = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", query.text))
        assert tables and tables <= readable, f"{query} reads {tables - readable}, not an analyst view"
        assert not re.search(r"/|quantile|uniq|avg\(", query.text, re.I), f"{query} computes a metric itself"
    for query in PROMQL_QUERIES:
        assert "/" not in query.text, f"{query} divides: record the ratio (alerts.prometheus) and chart that"


# ------------------------------------------------------------------ ClickHouse queries, run


@dataclass(frozen=True)
class Seeded:
    grafana: ClickHouseSettings  # the user Grafana's data source signs in as (docker-compose.yml)
    team: ClickHouseSettings  # the user of a team's data source (deploy/grafana/team-example)
    team_projects: tuple[str, ...]
    panel: PanelRange


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """An embedded ClickHouse enforcing deploy/access.yml, holding simulated events (written by its writer)
    and an alert's transitions for each project (written by its evaluator)."""
    team = team_user()
    with access_clickhouse(tmp_path_factory.mktemp("grafana"), (team,)) as clickhouse:
        start, as_user = clickhouse.start, clickhouse.as_user
        transitions = [
            (start + timedelta(minutes=20), "pending", "inactive"),
            (start + timedelta(minutes=21), "firing", "pending"),
            (start + timedelta(minutes=30), "resolved", "firing"),
        ]
        rows = [
            [at, "ThroughputDrop", fingerprint("ThroughputDrop", labels), labels, state, previous, 12.0,
             transitions[0][0], f"{project} slowed", "d", "https://r.example/a"]
            for project in PROJECTS
            for labels in [{"severity": "page", "project": project}]
            for at, state, previous in transitions
        ]  # fmt: skip
        connect(as_user("evaluator")).insert(ALERT_HISTORY.name, rows, column_names=list(ALERT_HISTORY.column_names))
        # A range like "last 3 hours" with a one-minute interval, as Grafana picks for a wide panel, asked a
        # second after the load: the plugin's $__timeFilter bounds are whole seconds, so rows stored within
        # the very second the range ends in (dead letters are received now) would fall just after it.
        now = datetime.now(UTC) + timedelta(seconds=1)
        compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
        grafana_user = compose["services"]["grafana"]["environment"]["LABELPULSE_CLICKHOUSE_USER"]
        panel = PanelRange(now - timedelta(hours=3), now, timedelta(minutes=1))
        yield Seeded(as_user(grafana_user), as_user(team["name"]), tuple(team["projects"]), panel)


NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")
TEXT = re.compile(r"^(LowCardinality\()?(Nullable\()?String")


@pytest.mark.clickhouse
@pytest.mark.parametrize("query", SQL_QUERIES, ids=str)
def test_each_clickhouse_query_runs_as_grafanas_user_and_returns_what_its_panel_shows(
    seeded: Seeded, query: Query
) -> None:
    sql = expand_macros(sql_with_variables(query.text, {"project": list(PROJECTS)}), seeded.panel)
    assert "$" not in sql, f"{query}: something Grafana would substitute is left: {sql}"
    result = connect(seeded.grafana).query(sql)
    names, types = result.column_names, [column.name for column in result.column_types]
    assert result.result_rows, f"{query} returned no rows:\n{sql}"
    if query.kind == "timeSeries":
        # The plugin's time series: `time` first, then at most one text column naming the series, then numbers.
        assert names[0] == "time" and types[0].startswith("DateTime"), f"{query}: {names} {types}"
        values = types[2:] if len(types) > 2 and TEXT.match(types[1]) else types[1:]
        assert values and all(NUMERIC.match(kind) for kind in values), f"{query}: {names} {types}"
        times = [row[0] for row in result.result_rows]
        assert times == sorted(times), f"{query}: a time series comes in time order"
    elif query.kind == "annotation":
        assert {"time", "text", "tags"} <= set(names) and types[names.index("time")].startswith("DateTime")
    elif query.kind == "variable":
        assert len(names) == 1 and {row[0] for row in result.result_rows} == set(PROJECTS)
    assert set(query.columns) <= set(names), f"{query}: the panel formats columns it does not get: {names}"


@pytest.mark.clickhouse
def test_the_leads_see_only_the_projects_they_choose(seeded: Seeded) -> None:
    chosen = sorted(PROJECTS)[:1]
    (query,) = [q for q in SQL_QUERIES if q.where.startswith("leads.json: Annotations submitted")]
    sql = expand_macros(sql_with_variables(query.text, {"project": chosen}), seeded.panel)
    assert {row[1] for row in connect(seeded.grafana).query(sql).result_rows} == set(chosen)


def rows(result: Any) -> list[str]:
    return sorted(repr(row) for row in result.result_rows)


@pytest.mark.clickhouse
@pytest.mark.parametrize("query", SQL_QUERIES, ids=str)
def test_each_clickhouse_query_as_a_teams_user_returns_only_its_projects_rows(seeded: Seeded, query: Query) -> None:
    """Whatever projects the request names (a team member can edit a panel's SQL in Grafana), ClickHouse
    answers the team's user exactly what the dashboard and the gRPC API read for its projects."""
    every_project = expand_macros(sql_with_variables(query.text, {"project": list(PROJECTS)}), seeded.panel)
    team = connect(seeded.team).query(every_project, settings={"max_execution_time": 60})  # as the plugin sends
    scoping = {"additional_table_filters": table_filters(seeded.team_projects, seeded.grafana.database)}
    assert rows(team) == rows(connect(seeded.grafana).query(every_project, settings=scoping)), query
    if "${project:singlequote}" in query.text:
        chosen = expand_macros(sql_with_variables(query.text, {"project": list(seeded.team_projects)}), seeded.panel)
        assert team.result_rows and rows(team) == rows(connect(seeded.grafana).query(chosen)), query
        assert rows(team) != rows(connect(seeded.grafana).query(every_project)), f"{query}: other projects show"
    if query.kind == "variable":
        assert {row[0] for row in team.result_rows} == set(seeded.team_projects)


# ------------------------------------------------------------------ PromQL


def promql_of(query: Query) -> str:
    return promql_with_variables(query.text, {"project": list(PROJECTS)})


def test_every_promql_expression_passes_promtools_parser(tmp_path: Path) -> None:
    rules = [{"record": f"grafana_panel_{index}", "expr": promql_of(q)} for index, q in enumerate(PROMQL_QUERIES)]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    promtool = system_tool("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exported_series() -> set[str]:
    """Every series name LabelPulse's processes export or its rendered rules record."""
    names = {"up", "labelpulse_business_up", "labelpulse_business_scrape_duration_seconds"}
    names |= {metric.gauge(name) for name in metric.GAUGES}
    names |= {rule["record"] for rule in RECORDING_RULES}
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    for module in (worker_telemetry, evaluator_telemetry):
        metrics = [value for value in vars(module).values() if isinstance(value, MetricWrapperBase)]
        for family in (family for value in metrics for family in value.describe()):
            names |= {family.name + suffix for suffix in suffixes.get(family.type, ())}
    return names


def series_named(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))
    return {word for word in words if word.startswith("labelpulse") or word == "up"}


@pytest.mark.parametrize("query", PROMQL_QUERIES, ids=str)
def test_each_promql_expression_names_only_series_labelpulse_exports_or_records(query: Query) -> None:
    named = series_named(query.text)
    assert named and named <= exported_series(), f"{query}: {named - exported_series()}"


@pytest.mark.clickhouse
@pytest.mark.broker
@pytest.mark.timeout(600)
def test_every_promql_expression_answers_from_a_real_prometheus_scraping_a_worker_and_the_evaluator(
    harness: WorkerHarness, tmp_path: Path
) -> None:
    worker_port, evaluator_port = free_port(), free_port()
    harness.start(LABELPULSE_WORKER_METRICS_PORT=str(worker_port))
    evaluator_env = {**harness.env, "LABELPULSE_ALERTS_METRICS_PORT": str(evaluator_port)}
    simulator = [
        sys.executable, "-m", "labelpulse", "generate", "--rate", "20", "--seed", "3", "--quiet",
        "--start", (datetime.now(UTC) - timedelta(minutes=20)).isoformat(), "--duration", "1500",
        "--anomaly", "garbage",
    ]  # fmt: skip
    processes = [
        spawn(simulator, tmp_path / "simulator.log", harness.env),
        spawn([sys.executable, "-m", "labelpulse", "alerts", "run"], tmp_path / "evaluator.log", evaluator_env),
    ]
    targets = {"labelpulse-worker": f"127.0.0.1:{worker_port}", "labelpulse-evaluator": f"127.0.0.1:{evaluator_port}"}
    try:
        with prometheus(tmp_path, targets) as url:

            def answer(query: Query) -> list[Any]:
                encoded = urllib.parse.quote(promql_of(query))
                reply = get_json(f"{url}/api/v1/query?query={encoded}")
                assert reply["status"] == "success", f"{query}: {reply}"
                return list(reply["data"]["result"])

            # Rates need two scrapes of a counter that moved, ratios their gauges: wait until every panel has data.
            def all_answered() -> bool:
                return all(answer(query) for query in PROMQL_QUERIES)

            try:
                wait_for(all_answered, 180, "every PromQL panel answering with data")
            except AssertionError:
                empty = [str(query) for query in PROMQL_QUERIES if not answer(query)]
                raise AssertionError(f"no data for: {empty}") from None
    finally:
        for process in reversed(processes):
            terminate(process, timeout_s=15)
