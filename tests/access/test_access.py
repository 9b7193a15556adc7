"""ClickHouse access as code: the access file, the SQL for a server, and the embedded ClickHouse
enforcing the same file — an analyst cannot write, a restricted analyst sees only their
projects (through tables, views and parameterized views), the limits stop a query with
ClickHouse's own error, and the worker and the alert evaluator write only their own tables."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from access import policy
from config.env import ConfigError
from labelpulse.broker import BrokerSettings
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from labelpulse.simulator import PROJECTS, Plan, generate
from schema import migrations
from schema.client import ClickHouseSettings, connect
from schema.ddl import Target
from schema.rows import WORKER_TABLES
from schema.tables import ANALYST_VIEWS, RAW_TABLES, ROLLUPS
from streams.offline import load
from tests.support.references import expected_from
from tests.support.services import REPO_ROOT, WorkerHarness, run_cli, wait_for
from tests.support.worker import simulate

ACCESS_FILE = """\
users:
  - {name: worker, role: writer, password_env: LP_WORKER_PW}
  - {name: dash, role: reader, password_env: LP_DASH_PW}
  - {name: ana, role: analyst, password_env: LP_ANA_PW}
  - {name: lead, role: analyst, password_env: LP_LEAD_PW, projects: [retail-products]}
  - {name: team, role: reader, password_env: LP_TEAM_PW, projects: [retail-products]}
  - {name: alerts, role: evaluator, password_env: LP_ALERTS_PW}
# Enough rows for clickhouse-connect's own look at system.settings (~1,900 rows) when it connects.
analyst_limits: {max_result_rows: 5000, max_execution_time: 5}
"""
PASSWORDS = {
    **{"LP_WORKER_PW": "w-pw", "LP_DASH_PW": "d-pw", "LP_ANA_PW": "a-pw", "LP_LEAD_PW": "l-pw"},
    **{"LP_ALERTS_PW": "e-pw", "LP_TEAM_PW": "t-pw"},
}


def as_user(admin: ClickHouseSettings, name: str, password: str) -> ClickHouseSettings:
    return ClickHouseSettings(port=admin.port, database=admin.database, username=name, password=password)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseSettings]:
    """An embedded ClickHouse with the access file, migrated, holding simulated events (written by `worker`)."""
    base = tmp_path_factory.mktemp("guarded")
    (base / "access.yml").write_text(ACCESS_FILE)
    admin = ClickHouseSettings(port=free_port(), database="labelpulse", password="admin-pw")
    server = EmbeddedClickHouseProcess(
        admin,
        base / "data",
        log_path=base / "ch.log",
        env={"LABELPULSE_ACCESS_FILE": str(base / "access.yml"), **PASSWORDS},
    )
    server.start()
    try:
        migrations.migrate(migrations.open_database(admin))
        plan = Plan(seed=5, start=datetime.now(UTC) - timedelta(hours=2), rate=5)
        values = [message.value for message in islice(generate(plan), 3000)]
        load(values, lambda: connect(as_user(admin, "worker", "w-pw")))  # the writer writes
        yield admin
    finally:
        server.stop()


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO events (event_id) VALUES ('x')",
        "CREATE TABLE mine (x UInt8) ENGINE = Memory",
        "DROP TABLE events",
        "ALTER TABLE events DELETE WHERE 1",
    ],
)
@pytest.mark.parametrize("user", [("dash", "d-pw"), ("ana", "a-pw"), ("lead", "l-pw")])
def test_readers_and_analysts_cannot_write(guarded: ClickHouseSettings, user: tuple[str, str], statement: str) -> None:
    client = connect(as_user(guarded, *user))
    with pytest.raises(DatabaseError) as raised:
        client.command(statement)
    assert "readonly" in str(raised.value).lower()


@pytest.mark.clickhouse
@pytest.mark.parametrize("restricted", [("lead", "l-pw"), ("team", "t-pw")], ids=["analyst", "reader"])
def test_a_restricted_user_sees_only_their_projects_everywhere(
    guarded: ClickHouseSettings, restricted: tuple[str, str]
) -> None:
    lead, ana = connect(as_user(guarded, *restricted)), connect(as_user(guarded, "ana", "a-pw"))
    everything = set(PROJECTS)
    window = {"from": "2000-01-01 00:00:00", "to": "2100-01-01 00:00:00"}
    for sql in (
        "SELECT DISTINCT project_id FROM events",
        "SELECT DISTINCT project_id FROM project_throughput_minute",
        "SELECT DISTINCT project_id FROM annotator_productivity_hour",
        "SELECT project_id FROM agreement_summary(from={from:String}, to={to:String})",
        "SELECT project_id FROM (SELECT project_id FROM events AS e) GROUP BY project_id",
    ):
        assert set(ana.query(sql, parameters=window).result_columns[0]) == everything, sql
        assert set(lead.query(sql, parameters=window).result_columns[0]) == {"retail-products"}, sql
    assert lead.command("SELECT count() FROM dead_letters") == 0, "rows with no project are not theirs"
    admin = connect(guarded)
    assert lead.command("SELECT count() FROM events") == admin.command(
        "SELECT count() FROM events WHERE project_id = 'retail-products'"
    )


@pytest.mark.clickhouse
def test_a_restricted_reader_sends_settings_but_cannot_change_its_filters(guarded: ClickHouseSettings) -> None:
    """What Grafana's ClickHouse plugin needs (its client sends max_execution_time with every query) and what
    it may not do: filters of its own would replace the projects' instead of narrowing them."""
    team = connect(as_user(guarded, "team", "t-pw"))
    sql = "SELECT DISTINCT project_id FROM events"
    assert team.query(sql, settings={"max_execution_time": 30}).result_columns[0] == ["retail-products"]
    with pytest.raises(DatabaseError, match="SETTING_CONSTRAINT_VIOLATION") as raised:
        team.query(sql, settings={"additional_table_filters": "{'labelpulse.events': '1'}"})
    assert "team is restricted to projects" in str(raised.value)
    with pytest.raises(DatabaseError, match="readonly"):
        team.command("INSERT INTO events (event_id) VALUES ('x')")


@pytest.mark.clickhouse
def test_analysts_hit_their_limits_with_clickhouses_own_error(guarded: ClickHouseSettings) -> None:
    ana = connect(as_user(guarded, "ana", "a-pw"))
    with pytest.raises(DatabaseError) as too_many:
        ana.query("SELECT number FROM numbers(10000)")
    assert "TOO_MANY_ROWS_OR_BYTES" in str(too_many.value) and "max rows: 5.00 thousand" in str(too_many.value)
    with pytest.raises(ProgrammingError, match="Setting max_result_rows is readonly"):
        ana.query("SELECT 1", settings={"max_result_rows": 0})  # clickhouse-connect knows before asking
    request = urllib.request.Request(
        f"http://127.0.0.1:{guarded.port}/?max_result_rows=0",
        data=b"SELECT 1",
        headers={"X-ClickHouse-User": "ana", "X-ClickHouse-Key": "a-pw"},
    )
    with pytest.raises(urllib.error.HTTPError) as lifted:  # any other client: the server refuses
        urllib.request.urlopen(request, timeout=10)
    assert lifted.value.headers["X-ClickHouse-Exception-Code"] == "164"
    assert b"Cannot modify 'max_result_rows' setting in readonly mode" in lifted.value.read()
    with pytest.raises(DatabaseError) as in_sql:
        ana.query("SELECT number FROM numbers(10000) SETTINGS max_result_rows = 0")
    assert "readonly" in str(in_sql.value).lower()
    assert (
        len(connect(as_user(guarded, "dash", "d-pw")).query("SELECT number FROM numbers(10000)").result_rows) == 10000
    )


@pytest.mark.clickhouse
def test_access_users_need_their_own_password(guarded: ClickHouseSettings) -> None:
    for name, password in (("lead", "a-pw"), ("lead", ""), ("nobody", "l-pw"), ("default", "l-pw")):
        with pytest.raises(DatabaseError) as raised:
            connect(as_user(guarded, name, password)).command("SELECT 1")
        assert "AUTHENTICATION_FAILED" in str(raised.value), (name, password)


@pytest.mark.clickhouse
def test_the_server_sql_parses_and_hides_passwords(guarded: ClickHouseSettings, tmp_path: Path) -> None:
    (tmp_path / "access.yml").write_text(ACCESS_FILE)
    wanted = policy.load(tmp_path / "access.yml", PASSWORDS)
    admin = connect(guarded)
    for target in (Target(), Target(cluster="lp")):
        statements = policy.statements(wanted, "labelpulse", target)
        for statement in statements:  # the embedded engine's parser is the server's
            admin.query("SELECT formatQuery({sql:String})", parameters={"sql": statement})
        text = "\n".join(policy.redact(statement, wanted) for statement in statements)
        assert not any(password in text for password in PASSWORDS.values())
    single = "\n".join(policy.statements(wanted, "labelpulse"))
    assert "GRANT SELECT, INSERT ON `labelpulse`.* TO labelpulse_writer" in single
    assert "GRANT INSERT ON `labelpulse`.alert_history TO labelpulse_evaluator" in single
    assert (
        "SETTINGS readonly = 1, max_execution_time = 5, max_memory_usage = 4000000000, max_result_rows = 5000" in single
    )
    assert (
        "CREATE ROW POLICY OR REPLACE `labelpulse_lead` ON `labelpulse`.events FOR SELECT USING "
        "project_id IN ('retail-products') TO `lead`" in single
    )
    assert (
        "CREATE ROW POLICY OR REPLACE `labelpulse_team` ON `labelpulse`.events FOR SELECT USING "
        "project_id IN ('retail-products') TO `team`" in single
    )
    assert (
        "CREATE ROW POLICY OR REPLACE labelpulse_all ON `labelpulse`.events USING 1 TO ALL EXCEPT `lead`, `team`"
        in single
    )
    assert "ON CLUSTER 'lp'" in "\n".join(policy.statements(wanted, "labelpulse", Target(cluster="lp")))


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("users: [oops", {}, "not valid YAML"),
        ("- a\n- b\n", {}, "expected a mapping with `users`"),
        ("users:\n  - {name: x, role: admin, password_env: P}\n", {"P": "p"}, r"users\[0\]\.role: one of writer"),
        ("users:\n  - {name: 'x y', role: reader, password_env: P}\n", {"P": "p"}, r"users\[0\]\.name"),
        ("users:\n  - {name: default, role: reader, password_env: P}\n", {"P": "p"}, r"\(not 'default'\)"),
        ("users:\n  - {name: x, role: reader, password_env: P}\n", {}, r"users\[0\]\.password_env: P is not set"),
        ("users:\n  - {name: x, role: reader, password: hunter2}\n", {}, r"unknown field\(s\) password"),
        ("users:\n  - {name: x, role: writer, password_env: P, projects: [a]}\n", {"P": "p"}, "analysts and readers"),
        ('users:\n  - {name: x, role: analyst, password_env: P, projects: "a"}\n', {"P": "p"}, "a list of project"),
        ('users:\n  - {name: x, role: analyst, password_env: P, projects: ["it\'s"]}\n', {"P": "p"}, "a list of"),
        (
            "users:\n  - {name: x, role: reader, password_env: P}\n  - {name: x, role: writer, password_env: P}\n",
            {"P": "p"},
            "user 'x' is defined twice",
        ),
        ("analyst_limits: {max_rows: 5}\n", {}, r"analyst_limits\.max_rows: unknown limit"),
        ("analyst_limits: {max_result_rows: -1}\n", {}, r"analyst_limits\.max_result_rows: must be a whole number"),
        ("analyst_limits: {max_result_rows: true}\n", {}, "must be a whole number"),
    ],
)
def test_mistakes_in_the_access_file_are_named(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "access.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        policy.load(path, env)
    assert str(raised.value).startswith(str(path))


def test_no_access_file_means_only_the_admin(tmp_path: Path) -> None:
    assert policy.from_env({}).users == ()
    with pytest.raises(ConfigError, match="cannot read the access file"):
        policy.from_env({"LABELPULSE_ACCESS_FILE": str(tmp_path / "missing.yml")})


@pytest.mark.clickhouse
def test_apply_explains_what_to_do_where_access_cannot_be_managed(
    migrated: Client, clickhouse: ClickHouseSettings, tmp_path: Path
) -> None:
    (tmp_path / "access.yml").write_text(ACCESS_FILE)
    env = {**clickhouse.to_env(), "LABELPULSE_ACCESS_FILE": str(tmp_path / "access.yml"), **PASSWORDS}
    shown = run_cli("access", "show", env=env)
    assert shown.returncode == 0 and "TO `lead`" in shown.stdout and "l-pw" not in shown.stdout
    applied = run_cli("access", "apply", env=env)
    assert applied.returncode == 2
    assert "refused `CREATE SETTINGS PROFILE" in applied.stderr and "ACCESS_DENIED" in applied.stderr
    assert "enforces LABELPULSE_ACCESS_FILE by itself" in applied.stderr
    broken = run_cli("access", "show", env={**env, "LP_LEAD_PW": ""})
    assert broken.returncode == 2 and "users[3].password_env: LP_LEAD_PW is not set" in broken.stderr


@pytest.mark.clickhouse
def test_a_restricted_analyst_sees_alerts_about_their_projects_only(guarded: ClickHouseSettings) -> None:
    admin = connect(guarded)
    admin.command(
        "INSERT INTO alert_history (at, rule, fingerprint, labels, state) VALUES "
        "(now64(3), 'ThroughputDrop', 'a', map('project', 'retail-products'), 'firing'), "
        "(now64(3), 'ThroughputDrop', 'b', map('project', 'street-scenes'), 'firing'), "
        "(now64(3), 'DataStale', 'c', map(), 'firing')"
    )
    lead = connect(as_user(guarded, "lead", "l-pw"))
    assert lead.query("SELECT fingerprint FROM alert_history").result_columns == [["a"]]
    assert connect(as_user(guarded, "ana", "a-pw")).command("SELECT count() FROM alert_history") == 3


# -- every user of the access file reads only the tables and views their role names ------------

RESTRICTED = [("lead", "l-pw"), ("dash", "d-pw")]  # a project-restricted analyst, and a reader
WRITER, EVALUATOR = ("worker", "w-pw"), ("alerts", "e-pw")  # they write, and read no more than a reader
GUARDED = [*RESTRICTED, WRITER, EVALUATOR]


def post(guarded: ClickHouseSettings, user: tuple[str, str], sql: str, **params: str) -> bytes:
    """The answer to `sql` (and any data after it) run as `user` over raw HTTP: no client in the way."""
    query = urllib.parse.urlencode({"database": guarded.database, **params})
    request = urllib.request.Request(
        f"http://127.0.0.1:{guarded.port}/?{query}",
        data=sql.encode(),
        headers={"X-ClickHouse-User": user[0], "X-ClickHouse-Key": user[1]},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def refused(guarded: ClickHouseSettings, user: tuple[str, str], sql: str, **params: str) -> str:
    """The ACCESS_DENIED text ClickHouse sends for `sql` run as `user`."""
    try:
        answer = post(guarded, user, sql, **params)
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        assert (error.code, error.headers["X-ClickHouse-Exception-Code"]) == (403, "497"), body
        assert (
            body.startswith(f"Code: 497. DB::Exception: {user[0]}: Not enough privileges") and "(ACCESS_DENIED)" in body
        )
        return body
    raise AssertionError(f"{user[0]} ran {sql!r}: {answer[:300]!r}")


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", GUARDED)
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT project_id, count() FROM merge('labelpulse', '^events$') GROUP BY 1", "merge"),
        ("SELECT * FROM mergeTreeIndex('labelpulse', 'events', with_marks = true)", "mergeTreeIndex"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "file"),
        ("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "url"),
        ("SELECT * FROM remote('127.0.0.1', 'labelpulse', 'events')", "remote"),
        ("SELECT * FROM cluster('default', 'labelpulse', 'events')", "cluster"),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k.csv')", "s3"),
        ("SELECT * FROM view(SELECT * FROM labelpulse.events)", "view"),
        ("SELECT * FROM dictionary('labelpulse.nothing')", "dictionary"),
        ("SELECT * FROM executable('id', 'TSV', 'x String')", "executable"),
        (
            "SELECT count() FROM events WHERE project_id IN (SELECT project_id FROM merge('labelpulse', 'events'))",
            "merge",
        ),
    ],
)
def test_table_functions_that_read_around_the_filters_are_refused(
    guarded: ClickHouseSettings, user: tuple[str, str], sql: str, named: str
) -> None:
    assert f"table function {named}" in refused(guarded, user, sql)


@pytest.mark.clickhouse
def test_merge_no_longer_shows_a_restricted_analyst_every_project(guarded: ClickHouseSettings) -> None:
    lead = connect(as_user(guarded, "lead", "l-pw"))
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        lead.query("SELECT project_id, count() FROM merge('labelpulse', '^events$') GROUP BY 1")


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", GUARDED)
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT query FROM system.processes", "system.processes"),
        ("SHOW PROCESSLIST", "SHOW PROCESSLIST"),
        ("SELECT * FROM system.parts", "system.parts"),
        ("SELECT * FROM system.tables", "system.tables"),
        ("SELECT * FROM information_schema.tables", "information_schema.tables"),
        ("SELECT * FROM system.query_log", "system.query_log"),
        ("SELECT * FROM schema_migrations", "labelpulse.schema_migrations"),
        ("SELECT * FROM default.secrets", "default.secrets"),
        ("SELECT project_id, count() FROM mv_project_minute GROUP BY 1", "labelpulse.mv_project_minute"),
        ("SELECT count() FROM events AS e JOIN system.processes AS p ON 1 = 1", "system.processes"),
        ("SELECT (SELECT count() FROM system.processes)", "system.processes"),
        ("SELECT 1 FROM events WHERE project_id IN system.processes", "system.processes"),
        ("WITH p AS (SELECT query FROM system.processes) SELECT * FROM p", "system.processes"),
        ("WITH mv_project_minute AS (SELECT * FROM mv_project_minute) SELECT * FROM mv_project_minute", "mv_project"),
        ("SELECT 1 UNION ALL SELECT count() FROM system.processes", "system.processes"),
        ("SELECT * FROM (SELECT * FROM (SELECT query FROM system.processes))", "system.processes"),
        ("WITH `system.processes` AS (SELECT 1) SELECT * FROM system.processes", "system.processes"),
        ("SELECT query AS `x\n  JOIN TREE` FROM system.processes", "names of letters, digits and _ only"),
        ("DESCRIBE TABLE file('/etc/hostname', 'LineAsString')", "table function file"),
        ("SHOW TABLES FROM system", "the tables of database system"),
        ("SELECT dictGet('labelpulse.nothing', 'x', 1)", "function dictGet"),
        ("SELECT joinGet('labelpulse.nothing', 'x', 1)", "function joinGet"),
        ("SELECT file('/etc/hostname')", "function file"),
        ("SELECT 1 INTO OUTFILE '{tmp}/written'", "INTO OUTFILE"),
        ("EXPLAIN SELECT (SELECT count() FROM system.processes)", "EXPLAIN"),
        ("KILL QUERY WHERE 1", "KILL"),
    ],
)
def test_every_route_to_other_data_is_refused(
    guarded: ClickHouseSettings, user: tuple[str, str], sql: str, named: str, tmp_path: Path
) -> None:
    assert named in refused(guarded, user, sql.replace("{tmp}", str(tmp_path)))
    assert not (tmp_path / "written").exists()


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", GUARDED)
def test_one_statement_runs_per_request(guarded: ClickHouseSettings, user: tuple[str, str]) -> None:
    client = connect(as_user(guarded, *user))
    with pytest.raises(DatabaseError) as raised:
        client.query("SELECT 1; SELECT query FROM system.processes")
    assert raised.value.code == 62 and "Multi-statements are not allowed" in str(raised.value)


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", GUARDED)
def test_unqualified_names_resolve_in_the_requests_database(guarded: ClickHouseSettings, user: tuple[str, str]) -> None:
    assert "system.processes" in refused(guarded, user, "SELECT query FROM processes", database="system")
    assert "system.processes" in refused(guarded, user, "SELECT * FROM {t:Identifier}", param_t="system.processes")
    assert "Identifier parameter t" in refused(guarded, user, "SELECT * FROM {t:Identifier}", param_t="`a\nb`")


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", GUARDED)
def test_what_the_role_names_stays_readable(guarded: ClickHouseSettings, user: tuple[str, str]) -> None:
    client = connect(as_user(guarded, *user))  # clickhouse-connect reads system.settings to connect
    names = [t.name for t in RAW_TABLES] + [t.name for t, _ in ROLLUPS] + [v.name for v in ANALYST_VIEWS]
    for name in dict.fromkeys(names):
        if "{" not in next((v.select for v in ANALYST_VIEWS if v.name == name), ""):
            client.query(f"SELECT count() FROM {name}")
            client.query(f"DESCRIBE TABLE {name}")
    window = {"from": "2000-01-01 00:00:00", "to": "2100-01-01 00:00:00"}
    for sql in (
        "SELECT * FROM agreement_summary(from={from:String}, to={to:String})",
        "SELECT * FROM labelpulse.pair_kappa(from={from:String}, to={to:String})",
        "WITH e AS (SELECT project_id FROM events), s AS (SELECT * FROM e) SELECT count() FROM s",
        "SELECT count() FROM events AS e JOIN handle_times AS h ON e.task_id = h.task_id",
        "SELECT count() FROM events WHERE project_id IN (SELECT project_id FROM project_throughput_minute)",
        "SELECT (SELECT count() FROM labelpulse.events), number FROM numbers(3)",
        "SELECT * FROM system.one, numbers(2) AS n UNION ALL SELECT 0, 0",
        "DESCRIBE (SELECT project_id, count() AS n FROM events GROUP BY project_id)",
        "SHOW TABLES",
        "SELECT dateDiff('hour', min(occurred_at), max(occurred_at)) FROM events",
        *(["SELECT count() FROM events SETTINGS max_threads = 1"] if user[0] != "lead" else []),  # analysts: readonly
    ):
        try:
            client.query(sql, parameters=window)
        except DatabaseError as error:
            raise AssertionError(f"{user[0]} could not run {sql}") from error


@pytest.mark.clickhouse
def test_every_dashboard_query_runs_as_a_reader(guarded: ClickHouseSettings) -> None:
    import inspect

    from schema import queries

    reader = connect(as_user(guarded, "dash", "d-pw"))
    end = datetime.now(UTC)
    filters = queries.Filters(end - timedelta(days=2), end, ("retail-products",), ("a",), ("cat",), ("manual",))
    builders = [
        function
        for name, function in inspect.getmembers(queries, inspect.isfunction)
        if not name.startswith("_") and inspect.signature(function).return_annotation in ("Query", queries.Query)
    ]
    assert len(builders) > 20
    for build in builders:
        extra = [p for p in inspect.signature(build).parameters.values() if p.default is p.empty][1:]
        query = build(filters, *["a" for _ in extra]) if "filters" in inspect.signature(build).parameters else build()
        bound = {k: list(v) if isinstance(v, tuple) else v for k, v in query.parameters.items()}
        reader.query(query.sql, parameters=bound)
        reader.query(f"DESCRIBE ({query.sql})", parameters=bound)


# -- the services write only where their role says: the worker its tables, the evaluator its history ---


@dataclass(frozen=True)
class Service:
    user: tuple[str, str]
    table: str  # one it writes
    text: str  # a String column of it
    number: str  # a number column of it
    other: str  # one of LabelPulse's tables it does not write

    def spell(self, sql: str, tmp_path: Path) -> str:
        for name, value in {**vars(self), "tmp": str(tmp_path)}.items():
            sql = sql.replace(f"{{{name}}}", str(value))
        return sql


SERVICES = [
    Service(WRITER, "dead_letters", "raw", "kafka_partition", "alert_history"),
    Service(EVALUATOR, "alert_history", "summary", "value", "events"),
]


def by_user(service: Service) -> str:
    return service.user[0]


@pytest.mark.clickhouse
@pytest.mark.parametrize("service", SERVICES, ids=by_user)
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("DROP TABLE events", "DROP"),
        ("DROP DATABASE labelpulse", "DROP"),
        ("CREATE TABLE mine (x UInt8) ENGINE = Memory", "CREATE"),
        ("CREATE VIEW peek AS SELECT query FROM system.processes", "CREATE"),
        ("ALTER TABLE {table} DELETE WHERE 1", "ALTER"),
        ("ALTER TABLE {table} UPDATE {text} = '' WHERE 1", "ALTER"),
        ("ALTER TABLE {table} ADD COLUMN x UInt8", "ALTER"),
        ("DELETE FROM {table} WHERE 1", "DELETE"),
        ("TRUNCATE TABLE {table}", "TRUNCATE"),
        ("OPTIMIZE TABLE {table} FINAL", "OPTIMIZE"),
        ("RENAME TABLE {table} TO gone", "RENAME"),
        ("SYSTEM STOP MERGES", "SYSTEM"),
        ("SYSTEM FLUSH LOGS", "SYSTEM"),
        ("KILL QUERY WHERE 1", "KILL"),
        ("SET allow_ddl = 1", "`SET allow_ddl = 1`: only SELECT, DESCRIBE, SHOW TABLES and INSERT may run"),
        ("USE system", "USE"),
        ("INSERT INTO {other} FORMAT JSONEachRow\n{}", "INSERT INTO labelpulse.{other}"),
        ("INSERT INTO labelpulse.schema_migrations FORMAT JSONEachRow\n{}", "INSERT INTO labelpulse.schema_migrations"),
        ("INSERT INTO rollup_project_minute SELECT * FROM rollup_project_minute", "INSERT INTO labelpulse.rollup_pro"),
        ("INSERT INTO {table} ({text}) SELECT query FROM system.processes", "system.processes"),
        ("INSERT INTO {table} ({text}) WITH p AS (SELECT query FROM system.processes) SELECT * FROM p", "system.pro"),
        ("INSERT INTO {table} ({text}) SELECT 'x' UNION ALL SELECT query FROM system.processes", "system.processes"),
        ("INSERT INTO {table} ({text}) SELECT * FROM file('/etc/hostname', 'LineAsString')", "table function file"),
        ("INSERT INTO {table} ({text}) SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "function url"),
        ("INSERT INTO {table} ({text}) SELECT toString(count()) FROM merge('labelpulse', '^events$')", "merge"),
        ("INSERT INTO {table} ({text}) VALUES ((SELECT query FROM system.processes LIMIT 1))", "VALUES"),
        ("INSERT INTO {table} ({text}) FORMAT Values ('x')", "VALUES"),
        ("INSERT INTO {table} ({text}) FROM INFILE '/etc/hostname' FORMAT LineAsString", "FROM INFILE"),
        ("INSERT INTO FUNCTION file('{tmp}/written', 'LineAsString', 'x String') SELECT 'x'", "FUNCTION file"),
        ("INSERT INTO FUNCTION file('{tmp}/written', 'LineAsString', 'x String') FORMAT LineAsString\nx", "FUNCTION"),
    ],
)
def test_services_write_only_their_tables_and_change_nothing_else(
    guarded: ClickHouseSettings, service: Service, sql: str, named: str, tmp_path: Path
) -> None:
    admin = connect(guarded)
    before = rows(admin, service.table), sorted(tables(admin))
    assert service.spell(named, tmp_path) in refused(guarded, service.user, service.spell(sql, tmp_path))
    assert (rows(admin, service.table), sorted(tables(admin))) == before
    assert not (tmp_path / "written").exists()


def rows(admin: Client, table: str) -> int:
    return int(str(admin.command(f"SELECT count() FROM {table}")))


def tables(admin: Client) -> list[Any]:
    return list(
        admin.query("SELECT name, create_table_query FROM system.tables WHERE database = 'labelpulse'").result_rows
    )


@pytest.mark.clickhouse
@pytest.mark.parametrize("service", SERVICES, ids=by_user)
def test_an_insert_cannot_write_its_parse_errors_to_a_file(
    guarded: ClickHouseSettings, service: Service, tmp_path: Path
) -> None:
    written = tmp_path / "written"
    sql = service.spell("INSERT INTO {table} ({number}) FORMAT CSV\nnot-a-number\n", tmp_path)
    errors = {"input_format_allow_errors_num": "5", "input_format_record_errors_file_path": str(written)}
    post(guarded, service.user, sql, **errors)  # the bad row is skipped; where errors go is not theirs to say
    assert not written.exists()
    in_sql = service.spell(
        "INSERT INTO {table} ({number}) SETTINGS input_format_allow_errors_num = 5, "
        "input_format_record_errors_file_path = '{tmp}/written' FORMAT CSV\nnot-a-number\n",
        tmp_path,
    )
    assert "SETTINGS" in refused(guarded, service.user, in_sql)
    assert not written.exists()


# Formats that read the file a setting names (a template, a schema) — any file the server can read.
READING_FORMATS = [
    ("SELECT 1 AS x FORMAT Template", "format_template_resultset", "Template"),
    ("SELECT 1 AS x FORMAT Template", "format_template_row", "Template"),
    ("SELECT 1 AS x", "format_template_row", "Template"),  # as the request's default_format
    ("SELECT 1 AS x FORMAT Protobuf", "format_schema", "Protobuf"),
]
READING_INPUT_FORMATS = [
    ("INSERT INTO {table} ({text}) FORMAT TemplateIgnoreSpaces\nx", "format_template_row", "TemplateIgnoreSpaces"),
    ("INSERT INTO {table} ({text}) FORMAT ProtobufSingle\nx", "format_schema", "ProtobufSingle"),
]


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    ("user", "sql", "setting", "fmt"),
    [(user, *case) for user in (("dash", "d-pw"), WRITER, EVALUATOR) for case in READING_FORMATS]
    + [
        (service.user, service.spell(case[0], Path()), *case[1:])
        for service in SERVICES
        for case in READING_INPUT_FORMATS
    ],
)
def test_formats_that_read_a_file_a_setting_names_are_refused(
    guarded: ClickHouseSettings, user: tuple[str, str], sql: str, setting: str, fmt: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-line-42\n")
    params = {setting: f"{secret}:Message" if setting == "format_schema" else str(secret)}
    if "FORMAT" not in sql:
        params["default_format"] = fmt
    body = refused(guarded, user, sql, **params)
    assert f"FORMAT {fmt}" in body and "secret-line-42" not in body


@pytest.mark.clickhouse
@pytest.mark.parametrize("service", SERVICES, ids=by_user)
def test_services_insert_into_their_own_tables(guarded: ClickHouseSettings, service: Service) -> None:
    admin, client = connect(guarded), connect(as_user(guarded, *service.user))
    before = rows(admin, service.table)
    # As the sink does: clickhouse-connect's DESCRIBE and Native insert, its settings in the request.
    settings = {
        "insert_deduplication_token": f"{service.table}:own",
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }
    client.insert(service.table, [["by clickhouse-connect"]], column_names=[service.text], settings=settings)
    post(
        guarded,
        service.user,
        f'INSERT INTO {service.table} ({service.text}) FORMAT JSONEachRow\n{{"{service.text}": "raw"}}',
    )
    client.command(f"INSERT INTO {service.table} SELECT * FROM {service.table} WHERE {service.text} = 'raw'")
    for select in (  # the SELECT of an INSERT reads what any SELECT of theirs may
        "WITH e AS (SELECT project_id FROM events) SELECT project_id FROM e WHERE 0",
        "SELECT project_id FROM events WHERE 0 UNION ALL SELECT toString(number) FROM numbers(0)",
    ):
        client.command(f"INSERT INTO {service.table} ({service.text}) {select}")
    assert rows(admin, service.table) == before + 3


@pytest.mark.clickhouse
def test_every_alert_query_runs_as_an_evaluator(guarded: ClickHouseSettings) -> None:
    from alerts.collector import PROJECT_SQL, windows

    # The business gauges; the rules run below.
    connect(as_user(guarded, *EVALUATOR)).query(PROJECT_SQL, parameters=windows(datetime.now(UTC)))


@pytest.mark.clickhouse
@pytest.mark.broker
def test_the_worker_and_the_evaluator_run_end_to_end_as_their_roles(
    guarded: ClickHouseSettings, harness: WorkerHarness, kafka: BrokerSettings, tmp_path: Path
) -> None:
    harness.start(**as_user(guarded, *WRITER).to_env())
    sent = simulate(harness, kafka, tmp_path, 1500, anomalies=("garbage",))
    expected, refused_rules = expected_from(sent)
    admin = connect(guarded)

    def stored(table: str) -> int:  # rows of this test's topics (and of its activity topic)
        sql = f"SELECT count() FROM {table} WHERE startsWith(kafka_topic, {{topic:String}})"
        return int(str(admin.command(sql, parameters={"topic": harness.topic})))

    total = len(expected) + sum(refused_rules.values())
    wait_for(lambda: stored("events") + stored("dead_letters") == total, 120, "every message stored")
    for table in WORKER_TABLES:  # the derived tables and the active time (a second hop through Kafka) too
        wait_for(lambda table=table: stored(table) > 0, 60, f"{table} written by the worker")  # type: ignore[misc]

    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(REPO_ROOT / "alerts" / "rules" / "default.yml", rules)  # every kind's query, as the evaluator
    (rules / "services.yml").write_text(
        "groups:\n  - name: services\n    interval: 1m\n    rules:\n"
        "      - alert: DeadLettersSeen\n        kind: pipeline_dead_letter_rate\n"
        "        params: {window: 10m, max_ratio: 0.0001, min_dead_letters: 5}\n"
        "        labels: {severity: info}\n"
        "        annotations: {summary: s, description: d, runbook_url: 'https://r.example/d'}\n"
    )
    env = {
        **as_user(guarded, *EVALUATOR).to_env(),
        "LABELPULSE_ALERTS_RULES_DIR": str(rules),
        "LABELPULSE_ALERTS_METRICS_PORT": "0",
    }
    result = run_cli("alerts", "run", "--once", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "not evaluated" not in result.stderr + result.stdout, result.stderr
    assert "DeadLettersSeen {'severity': 'info'}: inactive -> firing" in result.stdout, result.stdout
    assert admin.command("SELECT count() FROM alert_history WHERE rule = 'DeadLettersSeen'") == 1
