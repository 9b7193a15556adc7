"""Superset's provisioning (deploy/superset): checked as files, then imported into a real Superset that reads a
real embedded ClickHouse as LabelPulse's read-only `analyst` and answers on its own REST API.

The end-to-end test needs Superset in its own virtualenv (it pins many libraries): `./dev test` installs
apache-superset 6.1.0 into ~/.cache/labelpulse/superset-6.1.0 and sets LABELPULSE_TEST_SUPERSET to its `superset`
(or have `superset` on PATH). Skipped without it, failed without it under CI. It runs deploy/superset/provision.sh
as docker-compose does (Superset's own database on SQLite in a temp dir), serves Superset on a free loopback port,
asks /api/v1/chart/{id}/data/ for every chart of the exported dashboard, and compares each number with what the
Streamlit dashboard's queries (schema.queries) answer on the same data.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from schema import queries
from schema.client import connect
from schema.tables import ANALYST_VIEWS
from tests.support.access_clickhouse import ACCESS_FILE, access_clickhouse
from tests.support.services import REPO_ROOT, tool_missing, wait_for

SUPERSET = REPO_ROOT / "deploy" / "superset"
EXPORT = SUPERSET / "export"
VIEWS = {view.name: view for view in ANALYST_VIEWS}


def read(folder: str) -> dict[str, dict[str, Any]]:
    return {
        str(path.relative_to(EXPORT)): yaml.safe_load(path.read_text()) for path in (EXPORT / folder).rglob("*.yaml")
    }


DATABASES, DATASETS, CHARTS, DASHBOARDS = read("databases"), read("datasets"), read("charts"), read("dashboards")
DATASET_BY_UUID = {dataset["uuid"]: dataset for dataset in DATASETS.values()}


# ------------------------------------------------------------------ the files


def test_the_export_is_one_dashboard_bundle_superset_imports() -> None:
    metadata = yaml.safe_load((EXPORT / "metadata.yaml").read_text())
    assert metadata["type"] == "Dashboard" and metadata["version"] == "1.0.0"
    assert len(DATABASES) == 1 and len(DASHBOARDS) == 1
    (database,) = DATABASES.values()
    assert all(dataset["database_uuid"] == database["uuid"] for dataset in DATASETS.values())
    assert all(chart["dataset_uuid"] in DATASET_BY_UUID for chart in CHARTS.values())
    (dashboard,) = DASHBOARDS.values()
    placed = {item["meta"]["uuid"] for item in dashboard["position"].values() if isinstance(item, dict)
              and item.get("type") == "CHART"}  # fmt: skip
    assert placed == {chart["uuid"] for chart in CHARTS.values()}, "every chart on the dashboard, and only those"
    tabs = {item["meta"]["text"] for item in dashboard["position"].values() if isinstance(item, dict)
            and item.get("type") == "TAB"}  # fmt: skip
    assert tabs == {"Throughput", "Quality", "Annotators"}


def test_superset_reads_clickhouse_as_a_read_only_analyst_through_clickhouse_connect() -> None:
    """The analyst's profile is readonly = 1, which refuses any setting a query sends: clickhouse-connect's
    dialect sends none (only HTTP parameters such as the database and session), so the end-to-end test below
    runs as that very user on an embedded ClickHouse enforcing deploy/access.yml."""
    (database,) = DATABASES.values()
    # Superset's mask for a password: its import asks for one; deploy/superset/bundle.py puts the real URI there.
    assert database["sqlalchemy_uri"].startswith("clickhousedb://analyst:XXXXXXXXXX@")
    assert not any(database[flag] for flag in ("allow_dml", "allow_ctas", "allow_cvas", "allow_file_upload"))
    roles = {user["name"]: user["role"] for user in yaml.safe_load(ACCESS_FILE.read_text())["users"]}
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert roles[compose["services"]["superset"]["environment"]["LABELPULSE_CLICKHOUSE_USER"]] == "analyst"


def test_compose_runs_the_superset_and_driver_versions_the_test_installs() -> None:
    dockerfile = (SUPERSET / "Dockerfile").read_text()
    superset = re.search(r"^FROM apache/superset:(\d+\.\d+\.\d+)$", dockerfile, re.M)
    driver = re.search(r"clickhouse-connect==(\d+\.\d+\.\d+)", dockerfile)
    assert superset and driver, "Superset and clickhouse-connect are pinned to exact versions"
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert (
        compose["services"]["superset"]["image"] == f"labelpulse-superset:{superset[1]}-clickhouse-connect-{driver[1]}"
    )
    dev = (REPO_ROOT / "dev").read_text()
    assert f"'apache-superset=={superset[1]}'" in dev and f"'clickhouse-connect=={driver[1]}'" in dev


def test_each_dataset_is_an_analyst_view_with_its_columns_and_their_comments() -> None:
    for path, dataset in DATASETS.items():
        view = VIEWS.get(dataset["table_name"])
        assert view is not None, f"{path}: {dataset['table_name']} is not an analyst view (schema.tables)"
        assert dataset["sql"] is None and dataset["schema"] is None, f"{path}: the view itself, in the URI's database"
        assert dataset["description"] == view.comment, path
        described = [(column["column_name"], column["description"]) for column in dataset["columns"]]
        assert described == [(column.name, column.comment) for column in view.columns], path
        assert dataset["metrics"] == [], f"{path}: metrics live in the views, not in Superset"
    parameterized = {view.name for view in ANALYST_VIEWS if "{from:" in view.select}
    assert {dataset["table_name"] for dataset in DATASETS.values()} == set(VIEWS) - parameterized


def sql_expressions(node: Any) -> list[dict[str, Any]]:
    """Every metric, column or filter written as SQL, anywhere in a chart's settings."""
    if isinstance(node, dict):
        found = [node] if node.get("expressionType") == "SQL" else []
        return found + [expression for value in node.values() for expression in sql_expressions(value)]
    if isinstance(node, list):
        return [expression for value in node for expression in sql_expressions(value)]
    return []


def test_no_chart_spells_a_metric_formula_its_view_has() -> None:
    """Charts add a view's counts up (SUM of a column) or show its columns as they are; no SQL of their own."""
    for path, chart in CHARTS.items():
        columns = {column["column_name"] for column in DATASET_BY_UUID[chart["dataset_uuid"]]["columns"]}
        context = json.loads(chart["query_context"])
        for query in context["queries"]:
            for metric in query["metrics"]:
                assert metric["expressionType"] == "SIMPLE" and metric["aggregate"] == "SUM", f"{path}: {metric}"
                assert metric["column"]["column_name"] in columns, path
            for column in query["columns"]:
                name = column["sqlExpression"] if isinstance(column, dict) else column
                assert name in columns, f"{path}: {column} is not a column of the view"
        for expression in sql_expressions(chart["params"]) + sql_expressions(context):
            # The one SQL a chart may hold: a time series' x axis, which is a column (its bucket is the grain).
            assert expression.get("columnType") == "BASE_AXIS" and expression["sqlExpression"] in columns, path


# ------------------------------------------------------------------ a real Superset


@dataclass
class Superset:
    url: str
    token: str

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"GET {path}: {error.code} {error.read()[:1000]!r}") from None


@dataclass(frozen=True)
class Seeded:
    superset: Superset
    fetch: Callable[[queries.Query], list[dict[str, Any]]]  # a dashboard query's rows, as the dashboard runs it
    filters: queries.Filters  # every event


def superset_executable() -> str:
    executable = os.environ.get("LABELPULSE_TEST_SUPERSET") or shutil.which("superset")
    if not executable:
        tool_missing("Superset is not installed (set LABELPULSE_TEST_SUPERSET; see this file's docstring)")
    return executable


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    executable = superset_executable()
    base = tmp_path_factory.mktemp("superset")
    superset = None
    with access_clickhouse(base) as clickhouse:
        admin, start = clickhouse.admin, clickhouse.start
        try:
            home = base / "home"
            home.mkdir()
            config = home / "superset_config.py"
            config.write_text(
                f"SECRET_KEY = {'test-' + os.urandom(16).hex()!r}\n"
                f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(home / 'superset.db')!r}\n"
            )
            env = {
                **os.environ,
                "PATH": f"{Path(executable).parent}{os.pathsep}{os.environ['PATH']}",  # provision.sh calls `superset`
                "SUPERSET_CONFIG_PATH": str(config),
                "SUPERSET_HOME": str(home),
                "SUPERSET_ADMIN_PASSWORD": "admin-pass-123",
                "LABELPULSE_SUPERSET_EXPORT": str(EXPORT),
                "LABELPULSE_CLICKHOUSE_HOST": "127.0.0.1",
                "LABELPULSE_CLICKHOUSE_PORT": str(admin.port),
                "LABELPULSE_CLICKHOUSE_DATABASE": admin.database,
                "LABELPULSE_CLICKHOUSE_USER": "analyst",
                "LABELPULSE_CLICKHOUSE_PASSWORD": clickhouse.passwords["analyst"],
            }
            log = base / "superset.log"
            with log.open("ab") as output:
                provisioned = subprocess.run(
                    ["sh", str(SUPERSET / "provision.sh")],
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=600,
                )
            assert provisioned.returncode == 0, log.read_text()[-5000:]
            port = free_port()
            superset = spawn([executable, "run", "--host", "127.0.0.1", "--port", str(port)], log, env)
            url = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                assert superset is not None and superset.poll() is None, log.read_text()[-5000:]
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                        return bool(response.status == 200)
                except OSError:
                    return False

            wait_for(healthy, 300, "Superset answering")
            login = urllib.request.Request(
                f"{url}/api/v1/security/login",
                data=json.dumps({"username": "admin", "password": "admin-pass-123", "provider": "db"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(login, timeout=60) as response:
                token = json.loads(response.read())["access_token"]
            client = connect(admin)
            yield Seeded(
                Superset(url, token),
                lambda query: client.query_df(query.sql, parameters=query.parameters).to_dict("records"),
                queries.Filters(start - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)),
            )
        finally:
            terminate(superset, timeout_s=30)


def chart_data(superset: Superset) -> dict[str, list[dict[str, Any]]]:
    """Every chart's rows, by title, as Superset's API answers for the chart as saved."""
    charts = superset.get("/api/v1/chart/?q=(page_size:100)")["result"]
    return {
        chart["slice_name"]: superset.get(f"/api/v1/chart/{chart['id']}/data/")["result"][0]["data"] for chart in charts
    }


def keyed(rows: list[dict[str, Any]], key: tuple[str, ...], names: dict[str, str]) -> dict[tuple, dict[str, Any]]:
    """Rows by their key columns, with `names` (dashboard column -> chart column) renamed, the rest dropped."""
    return {tuple(row[k] for k in key): {names[name]: row[name] for name in names} for row in rows}


def same(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return actual is None and (expected is None or math.isnan(expected))
    return bool(math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9))


def assert_equal(title: str, actual: dict[tuple, dict[str, Any]], expected: dict[tuple, dict[str, Any]]) -> None:
    assert actual.keys() == expected.keys(), f"{title}: rows {sorted(actual)} != {sorted(expected)}"
    for key, values in expected.items():
        for name, value in values.items():
            assert same(actual[key][name], value), (
                f"{title} {key} {name}: Superset {actual[key][name]}, dashboard {value}"
            )


VERDICTS = {name: name for name in ("reviewed", "accepted", "fixed", "rejected")}


@pytest.mark.superset
@pytest.mark.clickhouse
def test_every_chart_shows_what_the_dashboards_queries_answer(seeded: Seeded) -> None:
    data = chart_data(seeded.superset)
    assert set(data) == {chart["slice_name"] for chart in CHARTS.values()}, "every chart imported"
    assert all(data.values()), f"charts without rows: {[title for title, rows in data.items() if not rows]}"
    on_dashboard = seeded.superset.get("/api/v1/dashboard/labelpulse/charts")["result"]
    assert {chart["slice_name"] for chart in on_dashboard} == set(data), "the dashboard shows every chart"
    every, fetch = seeded.filters, seeded.fetch

    def epoch_ms(moment: Any) -> float:
        return float(moment.timestamp() * 1000)

    # Throughput
    hourly = [{**row, "bucket": epoch_ms(row["bucket"])} for row in fetch(queries.throughput(every, bucket=3600))]
    assert_equal(
        "Annotations submitted per hour",
        keyed(
            data["Annotations submitted per hour"], ("minute", "project_id"), {"annotations_submitted": "annotations"}
        ),
        keyed(hourly, ("bucket", "project_id"), {"annotations": "annotations"}),
    )
    totals = {"tasks_created": "tasks_created", "annotations": "annotations_submitted", "skips": "annotations_skipped",
              "tasks_completed": "tasks_completed", "reviews": "reviews_completed"}  # fmt: skip
    assert_equal(
        "Throughput per project",
        keyed(data["Throughput per project"], ("project_id",), {value: value for value in totals.values()}),
        keyed(fetch(queries.project_totals(every)), ("project_id",), totals),
    )
    # Quality
    assert_equal(
        "Review verdicts per project",
        keyed(data["Review verdicts per project"], ("project_id",), VERDICTS),
        keyed(fetch(queries.review_totals(every)), ("project_id",), VERDICTS),
    )
    first_pass = {"first_pass_reviews": "reviews", "first_pass_accepted": "first_pass_accepted",
                  "rework_reviews": "rework_reviews"}  # fmt: skip
    assert_equal(
        "First-pass reviews per project",
        keyed(data["First-pass reviews per project"], ("project_id",), {value: value for value in first_pass.values()}),
        keyed(fetch(queries.first_pass_totals(every)), ("project_id",), first_pass),
    )
    gold = {"gold_answers": "gold_answers", "gold_correct": "gold_correct"}
    assert_equal(
        "Gold answers per project",
        keyed(data["Gold answers per project"], ("project_id",), gold),
        keyed(fetch(queries.gold_totals(every)), ("project_id",), gold),
    )
    # The view's own ratios, hour by hour: the dashboard's query over that one hour, project and annotator.
    ratios = {"reviewed": "reviewed", "acceptance_score": "acceptance_score", "rejection_rate": "rejection_rate"}
    shown = data["Acceptance per annotator and hour"]
    expected = {}
    for row in shown:
        hour = datetime.fromtimestamp(row["hour"] / 1000, UTC)
        one_hour = queries.Filters(hour, hour + timedelta(hours=1), (row["project_id"],), (row["annotator_id"],))
        (answer,) = fetch(queries.review_totals(one_hour, by="annotator_id"))
        expected[(row["hour"], row["project_id"], row["annotator_id"])] = {name: answer[name] for name in ratios}
    assert_equal(
        "Acceptance per annotator and hour", keyed(shown, ("hour", "project_id", "annotator_id"), ratios), expected
    )
    # Annotators
    output = {"annotations": "annotations_submitted", "manual": "annotations_manual",
              "model_assisted": "annotations_model_assisted", "skips": "annotations_skipped"}  # fmt: skip
    assert_equal(
        "Output per annotator",
        keyed(data["Output per annotator"], ("annotator_id",), {value: value for value in output.values()}),
        keyed(fetch(queries.annotator_output(every)), ("annotator_id",), output),
    )
    active = {"active_hours": "active_hours", "sessions": "sessions"}
    assert_equal(
        "Active time per annotator",
        keyed(data["Active time per annotator"], ("annotator_id",), active),
        keyed(fetch(queries.annotator_active_time(every)), ("annotator_id",), active),
    )
    assert_equal(
        "Review verdicts per annotator",
        keyed(data["Review verdicts per annotator"], ("annotator_id",), VERDICTS),
        keyed(fetch(queries.review_totals(every, by="annotator_id")), ("annotator_id",), VERDICTS),
    )
