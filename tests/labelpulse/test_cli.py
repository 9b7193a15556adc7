"""The command line as a user meets it: help, bad arguments, clear errors, and real work."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelpulse.broker import BrokerSettings, kafka_answers
from labelpulse.net import free_port, http_ok, port_in_use
from labelpulse.simulator import Delivery, Plan, generate, read_recording
from labelpulse.terminal import render_table
from schema import migrations
from schema.client import ClickHouseSettings
from tests.support.alert_rules import DEFAULT_RULES
from tests.support.services import REPO_ROOT, run_cli, wait_for


def test_help_teaches_the_quick_start() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("labelpulse up", "labelpulse sql", "labelpulse migrate", "LABELPULSE_CLICKHOUSE_HOST"):
        assert text in result.stdout


def test_version_comes_from_the_installed_package() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"labelpulse {version('labelpulse')}"


@pytest.mark.parametrize(
    "command",
    [
        "up", "clickhouse", "broker", "migrate", "access", "hash-password", "topics", "sql", "worker", "dashboard",
        "generate", "contract", "alerts", "ingest", "import", "api", "compile",
    ],
)  # fmt: skip
def test_every_command_has_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert len(result.stdout) > 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["clickhouse", "--port", "http"], "a port is a number from 1 to 65535, got 'http'"),
        (["clickhouse", "--port", "70000"], "a port is a number from 1 to 65535, got 70000"),
        (["migrate", "--to", "latest"], "a migration number is a whole number"),
        (["sql", "SELECT 1", "--param", "no-equals"], "expected NAME=VALUE"),
        (["sql", "SELECT 1", "--param", "1x=2"], "expected NAME=VALUE"),
        (["sql", "SELECT 1", "--format", "xml"], "invalid choice: 'xml'"),
        (["generate", "--rate", "0"], "expected a positive number, got '0'"),
        (["generate", "--rate", "nan"], "expected a positive number, got 'nan'"),
        (["generate", "--rate", "fast"], "expected a positive number, got 'fast'"),
        (["generate", "--count", "0"], "expected a positive whole number, got '0'"),
        (["generate", "--count", "-5"], "expected a positive whole number"),
        (["generate", "--count", "10", "--duration", "5"], "not allowed with argument"),
        (["generate", "--start", "yesterday"], "expected an ISO 8601 time"),
        (["generate", "--anomaly", "meteor"], "invalid choice: 'meteor'"),
        (["worker", "--loglevel", "loud"], "invalid choice: 'loud'"),
        (["up", "--demo-rate", "-1"], "expected a positive number"),
        (["dashboard", "--port", "0"], "a port is a number from 1 to 65535, got 0"),
        (["dashboard", "--refresh", "5"], "unrecognized arguments: --refresh"),
        (["api", "--host", "0.0.0.0"], "LABELPULSE_API_HOST=0.0.0.0 without client tokens would let anyone"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABELPULSE_CLICKHOUSE_PORT": "eighty"}, "LABELPULSE_CLICKHOUSE_PORT must be a whole number, got 'eighty'"),
        ({"LABELPULSE_CLICKHOUSE_PORT": "0"}, "LABELPULSE_CLICKHOUSE_PORT must be ≥ 1 and ≤ 65535, got 0"),
        ({"LABELPULSE_CLICKHOUSE_DATABASE": "x; DROP"}, "must be a plain identifier"),
        ({"LABELPULSE_CLICKHOUSE_SECURE": "maybe"}, "LABELPULSE_CLICKHOUSE_SECURE must be one of"),
    ],
)
def test_bad_configuration_is_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    result = run_cli("sql", "SELECT 1", env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_clickhouse_says_what_where_and_how_to_start_it() -> None:
    port = free_port()
    result = run_cli("sql", "SELECT 1", env={"LABELPULSE_CLICKHOUSE_PORT": str(port)})
    assert result.returncode == 2
    assert f"cannot reach ClickHouse at http://127.0.0.1:{port}" in result.stderr
    assert "labelpulse clickhouse" in result.stderr
    assert "Traceback" not in result.stderr


def test_topics_without_kafka_say_where_they_looked_and_what_to_check() -> None:
    result = run_cli("topics", env={"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 2
    assert "could not create or read topics on the Kafka at 127.0.0.1:" in result.stderr
    assert "LABELPULSE_KAFKA_SECURITY_PROTOCOL" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_without_kafka_stops_before_consuming_naming_the_servers(tmp_path: Path) -> None:
    kafka = f"127.0.0.1:{free_port()}"
    env = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka, "LABELPULSE_WORKER_METRICS_PORT": "0"}
    result = run_cli("worker", env={**env, "LABELPULSE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"labelpulse: could not create or read topics on the Kafka at {kafka}" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_refuses_a_non_loopback_address() -> None:
    result = run_cli("broker", "--host", "10.1.2.3")
    assert result.returncode == 2
    assert "refusing to run the broker on non-loopback address 10.1.2.3" in result.stderr
    assert "LABELPULSE_BROKER_ALLOW_REMOTE=true" in result.stderr


def test_clickhouse_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("clickhouse", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"labelpulse: cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(
    ("variable", "part"),
    [
        ("LABELPULSE_DASHBOARD_PORT", "dashboard"),
        ("LABELPULSE_INGEST_PORT", "ingest"),
        ("LABELPULSE_API_PORT", "gRPC API"),
        ("LABELPULSE_API_METRICS_PORT", "gRPC API's /metrics"),
    ],
)
def test_up_refuses_a_taken_port_before_starting_anything(tmp_path: Path, variable: str, part: str) -> None:
    ports = ("DASHBOARD_PORT", "INGEST_PORT", "API_PORT", "API_METRICS_PORT")
    env = {f"LABELPULSE_{name}": str(free_port()) for name in ports} | {"LABELPULSE_DATA_DIR": str(tmp_path)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("up", env=env | {variable: str(port)})
    assert result.returncode == 2
    assert f"labelpulse: port {port} is taken (another {part}?); stop it or set {variable}" in result.stderr
    assert result.stdout == "" and not (tmp_path / "logs").exists()


def write_up_status(data_dir: Path, supervisor_pid: int, state: str) -> None:
    """The status file a running (or finished) `up` keeps in its data dir (labelpulse/runtime.py)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    status = {
        "supervisor_pid": supervisor_pid,
        "updated_at": time.time(),
        "components": [{"name": "dashboard", "state": state}],
    }
    (data_dir / "status.json").write_text(json.dumps(status))


def test_a_second_up_on_the_same_data_says_labelpulse_is_already_running(tmp_path: Path) -> None:
    running_up = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_up_status(tmp_path, running_up.pid, "up")
        with socket.socket() as taken:  # the first up's dashboard
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_cli("up", env={"LABELPULSE_DASHBOARD_PORT": str(port), "LABELPULSE_DATA_DIR": str(tmp_path)})
    finally:
        running_up.kill()
        running_up.wait()
    assert result.returncode == 2
    assert (
        f"labelpulse: LabelPulse is already running (pid {running_up.pid}, data dir {tmp_path.resolve()})"
        in result.stderr
    )
    assert "is taken" not in result.stderr


@pytest.mark.parametrize("how_it_ended", ["stopped", "killed"])
def test_the_status_of_an_up_that_ended_does_not_count_as_running(tmp_path: Path, how_it_ended: str) -> None:
    from labelpulse.runtime import running_up

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    exiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if how_it_ended == "stopped":  # Ctrl-C: every part stopped, the supervisor still exiting
            write_up_status(tmp_path, exiting.pid, "stopped")
        else:
            write_up_status(tmp_path, ended.pid, "up")
        assert running_up(tmp_path / "status.json") is None
    finally:
        exiting.kill()
        exiting.wait()
    assert running_up(tmp_path / "missing.json") is None


def test_dashboard_refuses_bad_settings_before_serving() -> None:
    result = run_cli("dashboard", env={"LABELPULSE_DASHBOARD_AUTH": "sso"})
    assert result.returncode == 2
    assert "labelpulse: LABELPULSE_DASHBOARD_AUTH must be one of none, password, oidc, got 'sso'" in result.stderr


def test_hash_password_prints_a_hash_the_dashboard_accepts() -> None:
    from dashboard.auth import password_matches

    result = run_cli("hash-password", stdin="correct horse\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("scrypt$")
    assert password_matches("correct horse", result.stdout.strip())


def test_hash_password_refuses_a_short_password() -> None:
    result = run_cli("hash-password", stdin="short\n")
    assert result.returncode == 2
    assert "labelpulse: a dashboard password needs at least 8 characters" in result.stderr
    assert result.stdout == ""


def test_access_show_without_an_access_file_prints_the_roles_only() -> None:
    result = run_cli("access", "show")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "note: no users (set LABELPULSE_ACCESS_FILE); applying the roles and the analysts' profile only"
    assert "CREATE ROLE IF NOT EXISTS labelpulse_reader;" in lines
    assert not any("CREATE USER" in line for line in lines)


def test_generate_without_a_broker_says_how_to_start_one() -> None:
    result = run_cli("generate", "--count", "5", env={"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 2
    assert "no Kafka answers at 127.0.0.1:" in result.stderr
    assert "labelpulse broker" in result.stderr


def test_generate_refuses_a_late_share_without_disorder() -> None:
    result = run_cli("generate", "--count", "5", "--late", "0.1")
    assert result.returncode == 2
    assert "labelpulse: --late needs --disorder" in result.stderr


@pytest.mark.broker
def test_generate_records_exactly_what_it_sent_and_the_seed_fixes_it(kafka: BrokerSettings, tmp_path: Path) -> None:
    env = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "LABELPULSE_EVENTS_TOPIC": "gen-test"}
    args = ["generate", "--count", "50", "--fast", "--seed", "4", "--start", "2026-11-23T08:00:00Z", "--quiet"]
    first = run_cli(*args, "--record", str(tmp_path / "a.jsonl"), env=env)
    second = run_cli(*args, "--record", str(tmp_path / "b.jsonl"), env=env)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "recorded 50 messages" in first.stderr
    a, b = read_recording(tmp_path / "a.jsonl"), read_recording(tmp_path / "b.jsonl")
    assert len(a) == 50 and a == b


@pytest.mark.broker
def test_generate_sends_only_the_late_share_late(kafka: BrokerSettings, tmp_path: Path) -> None:
    env = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "LABELPULSE_EVENTS_TOPIC": "gen-late"}
    start = "2026-11-23T08:00:00Z"
    args = ["generate", "--count", "400", "--fast", "--seed", "4", "--start", start, "--disorder", "600"]
    result = run_cli(*args, "--late", "0.1", "--record", str(tmp_path / "sent.jsonl"), env=env)
    assert result.returncode == 0, result.stderr
    assert "10% of events up to 600s late" in result.stderr
    plan = Plan(seed=4, start=dt.datetime.fromisoformat(start), rate=20)  # the default --rate
    expected = Delivery(disorder_s=600, seed=4, late=0.1).order(generate(plan))
    assert [value for _, value in read_recording(tmp_path / "sent.jsonl")] == [
        message.value for _, message in islice(expected, 400)
    ]


@pytest.mark.broker
def test_generate_from_a_past_start_backfills_to_now_then_goes_on_in_real_time(
    kafka: BrokerSettings, tmp_path: Path
) -> None:
    env = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "LABELPULSE_EVENTS_TOPIC": "gen-backfill"}
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    record = tmp_path / "sent.jsonl"
    args = ["generate", "--rate", "5", "--duration", "4", "--start", start.isoformat(), "--record", str(record)]
    result = run_cli(*args, "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    occurred = [dt.datetime.fromisoformat(json.loads(value)["occurred_at"]) for _, value in read_recording(record)
                if value.startswith(b"{")]  # fmt: skip
    # Ten minutes at ~5/s is over 2000 messages: sent at once, not paced from the past start (20 in 4 s) ...
    assert len(occurred) > 1500
    # ... and then the clock is real: nothing from more than a few seconds ahead of now.
    assert max(occurred) < dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)


def test_contract_prints_the_published_schema() -> None:
    result = run_cli("contract")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "LabelPulse event, contract v1.1"


def test_render_table_aligns_numbers_right_and_shows_null() -> None:
    table = render_table(["name", "n"], [["a", 1], ["bb", 100], [None, None]])
    assert table.splitlines() == [
        "name │    n",
        "─────┼─────",
        "a    │    1",
        "bb   │  100",
        "NULL │ NULL",
    ]


# -- against the real engine -------------------------------------------------------------------


def test_sql_output_is_a_table_on_a_terminal_and_tab_separated_otherwise() -> None:
    from labelpulse.commands import clickhouse_format

    assert clickhouse_format(None, terminal=True) == "PrettyCompactMonoBlock"
    assert clickhouse_format(None, terminal=False) == "TabSeparatedWithNames"
    assert clickhouse_format("table", terminal=False) == "PrettyCompactMonoBlock"
    assert clickhouse_format("tsv", terminal=True) == "TabSeparatedWithNames"
    assert clickhouse_format("csv", terminal=True) == "CSVWithNames"
    assert clickhouse_format("json", terminal=True) == "JSONEachRow"


NESTED = (
    "SELECT number AS n, toDateTime('2026-11-30 10:00:00', 'UTC') AS t, [t] AS ts, map('k', 1.5) AS m FROM numbers(2)"
)


@pytest.mark.clickhouse
def test_sql_prints_a_table_as_clickhouse_does(clickhouse: ClickHouseSettings) -> None:
    result = run_cli("sql", NESTED, "--format", "table", env=clickhouse.to_env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [name.strip("─┌┬┐ ") for name in lines[0].split("┬")] == ["n", "t", "ts", "m"]
    assert "│ 0 │ 2026-11-30 10:00:00 │ ['2026-11-30 10:00:00'] │ {'k':1.5} │" in lines[1]
    assert "datetime.datetime" not in result.stdout


@pytest.mark.clickhouse
def test_sql_into_a_pipe_is_tab_separated_with_names(clickhouse: ClickHouseSettings) -> None:
    result = run_cli("sql", NESTED, env=clickhouse.to_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "n\tt\tts\tm",
        "0\t2026-11-30 10:00:00\t['2026-11-30 10:00:00']\t{'k':1.5}",
        "1\t2026-11-30 10:00:00\t['2026-11-30 10:00:00']\t{'k':1.5}",
    ]


@pytest.mark.clickhouse
def test_sql_empty_result_keeps_its_header(clickhouse: ClickHouseSettings) -> None:
    empty = "SELECT number AS n, toString(number) AS s FROM numbers(3) WHERE n > 5"
    assert run_cli("sql", empty, env=clickhouse.to_env()).stdout == "n\ts\n"
    assert run_cli("sql", empty, "--format", "csv", env=clickhouse.to_env()).stdout == '"n","s"\n'
    as_table = run_cli("sql", empty, "--format", "table", env=clickhouse.to_env())
    assert as_table.stdout == ""
    assert "0 rows" in as_table.stderr


@pytest.mark.clickhouse
def test_sql_csv_and_json_output(clickhouse: ClickHouseSettings) -> None:
    sql = "SELECT number AS n, 'x,y' AS s, [toDate('2026-11-30')] AS d FROM numbers(2)"
    as_csv = run_cli("sql", sql, "--format", "csv", env=clickhouse.to_env())
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["n", "s", "d"],
        ["0", "x,y", "['2026-11-30']"],
        ["1", "x,y", "['2026-11-30']"],
    ]
    as_json = run_cli("sql", sql, "--format", "json", env=clickhouse.to_env())
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"n": 0, "s": "x,y", "d": ["2026-11-30"]},
        {"n": 1, "s": "x,y", "d": ["2026-11-30"]},
    ]


@pytest.mark.clickhouse
def test_sql_keeps_a_format_the_statement_names(clickhouse: ClickHouseSettings) -> None:
    result = run_cli("sql", "SELECT 1 AS one FORMAT JSONCompactEachRow", "--format", "csv", env=clickhouse.to_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[1]\n"


@pytest.mark.clickhouse
def test_sql_binds_parameters(clickhouse: ClickHouseSettings) -> None:
    result = run_cli(
        "sql",
        "SELECT {who:String} AS who",
        "--param",
        "who=O'Brien",
        "--format",
        "json",
        env=clickhouse.to_env(),
    )
    assert json.loads(result.stdout) == {"who": "O'Brien"}


@pytest.mark.clickhouse
def test_sql_reports_clickhouse_errors_without_a_traceback(clickhouse: ClickHouseSettings) -> None:
    result = run_cli("sql", "SELECT * FROM no_such_table", env=clickhouse.to_env())
    assert result.returncode == 2
    assert "ClickHouse refused the statement: Unknown table expression identifier 'no_such_table'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.clickhouse
def test_migrate_twice_then_status(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    env = clickhouse.to_env()
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applying 0001_initial" in first.stdout
    second = run_cli("migrate", env=env)
    assert second.returncode == 0
    assert f"schema is up to date (at {migrations.load()[-1].name})" in second.stdout
    status = run_cli("migrate", "--status", env=env)
    assert "0001_initial" in status.stdout and "applied" in status.stdout
    assert ch_client.command("SELECT count() FROM events") == 0


@pytest.mark.clickhouse
def test_migrate_status_on_a_fresh_database_lists_everything_pending_and_creates_nothing(
    clickhouse: ClickHouseSettings, ch_client: Client
) -> None:
    status = run_cli("migrate", "--status", env=clickhouse.to_env())
    assert status.returncode == 0, status.stderr
    assert "0001_initial" in status.stdout and "pending" in status.stdout and "applied" not in status.stdout
    assert ch_client.command("SELECT count() FROM system.tables WHERE database = currentDatabase()") == 0


@pytest.mark.clickhouse
def test_migrate_creates_a_missing_database(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    env = {**clickhouse.to_env(), "LABELPULSE_CLICKHOUSE_DATABASE": clickhouse.database + "_new"}
    try:
        assert run_cli("migrate", env=env).returncode == 0
        assert ch_client.command(f"EXISTS TABLE {clickhouse.database}_new.events") == 1
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {clickhouse.database}_new SYNC")


@pytest.mark.clickhouse
def test_migrate_refuses_tampered_history(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    env = clickhouse.to_env()
    assert run_cli("migrate", env=env).returncode == 0
    ch_client.command(
        "INSERT INTO schema_migrations VALUES (1, '0001_initial', 'not-the-file', 'forwards', now64(6) + 1)"
    )
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "migrations refused: 0001_initial changed after it was applied" in result.stderr


# -- the local runtime ----------------------------------------------------------------------------


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "labelpulse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=REPO_ROOT,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float = 90) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"{marker!r} not seen; output so far:\n{''.join(seen)}")


def api_serving(address: str) -> bool:
    """Whether the gRPC API at `address` answers its standard health check with SERVING."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.broker
@pytest.mark.clickhouse
def test_up_runs_everything_stops_on_ctrl_c_and_reuses_data_on_the_next_run(tmp_path: Path) -> None:
    env = {
        "LABELPULSE_CLICKHOUSE_PORT": str(free_port()),
        "LABELPULSE_BROKER_PORT": str(free_port()),
        "LABELPULSE_DATA_DIR": str(tmp_path / "state"),
        "LABELPULSE_DASHBOARD_PORT": str(free_port()),
        "LABELPULSE_INGEST_PORT": str(free_port()),
        "LABELPULSE_WORKER_METRICS_PORT": str(free_port()),
        "LABELPULSE_ALERTS_METRICS_PORT": str(free_port()),
        "LABELPULSE_API_PORT": str(free_port()),
        "LABELPULSE_API_METRICS_PORT": str(free_port()),
    }
    up = start_cli(["up"], env)
    output = read_until(up, "Ctrl-C stops everything")
    assert "applying 0001_initial" in output
    assert kafka_answers("127.0.0.1", int(env["LABELPULSE_BROKER_PORT"]))
    dashboard = f"http://127.0.0.1:{env['LABELPULSE_DASHBOARD_PORT']}"
    assert f"dashboard   {dashboard}" in output
    deadline = time.monotonic() + 60
    wait_for(lambda: http_ok(f"{dashboard}/_stcore/health"), deadline - time.monotonic(), "the dashboard to answer")
    evaluator_metrics = f"http://127.0.0.1:{env['LABELPULSE_ALERTS_METRICS_PORT']}/metrics"
    assert f"alerts      {DEFAULT_RULES} rules, to the Alerts view only" in output
    wait_for(lambda: http_ok(evaluator_metrics), deadline - time.monotonic(), "the alert evaluator's metrics")
    second = run_cli("up", env=env)
    assert second.returncode == 2
    assert f"LabelPulse is already running (pid {up.pid}, data dir {tmp_path / 'state'})" in second.stderr
    ingest = f"http://127.0.0.1:{env['LABELPULSE_INGEST_PORT']}"
    assert f"ingest      {ingest}" in output
    wait_for(lambda: http_ok(f"{ingest}/healthz"), deadline - time.monotonic(), "ingest to answer")
    api = f"127.0.0.1:{env['LABELPULSE_API_PORT']}"
    assert f"gRPC API    {api}" in output
    wait_for(lambda: api_serving(api), deadline - time.monotonic(), "the gRPC API's health service to say SERVING")
    inserted = run_cli(
        "sql", "INSERT INTO events (event_id, project_id, occurred_at) VALUES ('e1', 'p', now64(3))", env=env
    )
    assert inserted.returncode == 0, inserted.stderr
    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0
    logs = tmp_path / "state" / "logs"
    assert (logs / "up.log").read_text().rstrip().endswith("stopped"), "the log says everything stopped"
    worker_log = (logs / "worker.log").read_text()
    assert "\x1b[" not in worker_log and "\b" not in worker_log, "no terminal codes in a log file"
    assert not port_in_use("127.0.0.1", int(env["LABELPULSE_CLICKHOUSE_PORT"]))
    assert not kafka_answers("127.0.0.1", int(env["LABELPULSE_BROKER_PORT"]))
    assert not port_in_use("127.0.0.1", int(env["LABELPULSE_DASHBOARD_PORT"]))
    assert not port_in_use("127.0.0.1", int(env["LABELPULSE_INGEST_PORT"]))
    assert not port_in_use("127.0.0.1", int(env["LABELPULSE_API_PORT"]))

    again = start_cli(["up"], env)
    output = read_until(again, "Ctrl-C stops everything")
    assert "schema is up to date" in output
    count = run_cli("sql", "SELECT count() AS n FROM events", "--format", "json", env=env)
    assert json.loads(count.stdout) == {"n": 1}
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 0


@pytest.mark.broker
def test_broker_command_runs_until_interrupted() -> None:
    port = free_port()
    broker = start_cli(["broker", "--port", str(port)], {})
    read_until(broker, "Ctrl-C to stop", timeout_s=30)
    assert kafka_answers("127.0.0.1", port)
    broker.send_signal(signal.SIGINT)
    assert broker.wait(timeout=30) == 0
    assert not kafka_answers("127.0.0.1", port)


def test_worker_refuses_a_metrics_port_in_use_naming_the_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "worker",
            env={"LABELPULSE_WORKER_METRICS_PORT": str(port), "LABELPULSE_DATA_DIR": str(tmp_path)},
        )
    assert result.returncode == 2
    assert f"cannot serve worker metrics on 127.0.0.1:{port}" in result.stderr
    assert "LABELPULSE_WORKER_METRICS_PORT" in result.stderr
