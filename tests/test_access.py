"""ClickHouse access as code: the access file, the SQL for a server, and the embedded ClickHouse
enforcing the same file — an analyst cannot write, a restricted analyst sees only their
projects (through tables, views and parameterized views), and the limits stop a query with
ClickHouse's own error."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from access import policy
from config.env import ConfigError
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from labelpulse.simulator import PROJECTS, Plan, generate
from schema import migrations
from schema.client import ClickHouseSettings, connect
from schema.ddl import Target
from schema.tables import ANALYST_VIEWS, RAW_TABLES, ROLLUPS
from streams.offline import load
from tests.conftest import run_cli

ACCESS_FILE = """\
users:
  - {name: worker, role: writer, password_env: LP_WORKER_PW}
  - {name: dash, role: reader, password_env: LP_DASH_PW}
  - {name: ana, role: analyst, password_env: LP_ANA_PW}
  - {name: lead, role: analyst, password_env: LP_LEAD_PW, projects: [retail-products]}
# Enough rows for clickhouse-connect's own look at system.settings (~1,900 rows) when it connects.
analyst_limits: {max_result_rows: 5000, max_execution_time: 5}
"""
PASSWORDS = {"LP_WORKER_PW": "w-pw", "LP_DASH_PW": "d-pw", "LP_ANA_PW": "a-pw", "LP_LEAD_PW": "l-pw"}


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
def test_a_restricted_analyst_sees_only_their_projects_everywhere(guarded: ClickHouseSettings) -> None:
    lead, ana = connect(as_user(guarded, "lead", "l-pw")), connect(as_user(guarded, "ana", "a-pw"))
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
    assert "CREATE ROW POLICY OR REPLACE labelpulse_all ON `labelpulse`.events USING 1 TO ALL EXCEPT `lead`" in single
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
        ("users:\n  - {name: x, role: reader, password_env: P, projects: [a]}\n", {"P": "p"}, "only analysts"),
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


# -- restricted users reach only the tables and views their role names ------------------------

RESTRICTED = [("lead", "l-pw"), ("dash", "d-pw")]  # a project-restricted analyst, and a reader


def refused(guarded: ClickHouseSettings, user: tuple[str, str], sql: str, **params: str) -> str:
    """The ACCESS_DENIED text ClickHouse sends for `sql` run as `user` (raw HTTP: no client in the way)."""
    query = urllib.parse.urlencode({"database": guarded.database, **params})
    request = urllib.request.Request(
        f"http://127.0.0.1:{guarded.port}/?{query}",
        data=sql.encode(),
        headers={"X-ClickHouse-User": user[0], "X-ClickHouse-Key": user[1]},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raise AssertionError(f"{user[0]} ran {sql!r}: {response.read()[:300]!r}")
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        assert (error.code, error.headers["X-ClickHouse-Exception-Code"]) == (403, "497"), body
        assert (
            body.startswith(f"Code: 497. DB::Exception: {user[0]}: Not enough privileges") and "(ACCESS_DENIED)" in body
        )
        return body


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", RESTRICTED)
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
@pytest.mark.parametrize("user", RESTRICTED)
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
@pytest.mark.parametrize("user", RESTRICTED)
def test_one_statement_runs_per_request(guarded: ClickHouseSettings, user: tuple[str, str]) -> None:
    client = connect(as_user(guarded, *user))
    with pytest.raises(DatabaseError) as raised:
        client.query("SELECT 1; SELECT query FROM system.processes")
    assert raised.value.code == 62 and "Multi-statements are not allowed" in str(raised.value)


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", RESTRICTED)
def test_unqualified_names_resolve_in_the_requests_database(guarded: ClickHouseSettings, user: tuple[str, str]) -> None:
    assert "system.processes" in refused(guarded, user, "SELECT query FROM processes", database="system")
    assert "system.processes" in refused(guarded, user, "SELECT * FROM {t:Identifier}", param_t="system.processes")
    assert "Identifier parameter t" in refused(guarded, user, "SELECT * FROM {t:Identifier}", param_t="`a\nb`")


@pytest.mark.clickhouse
@pytest.mark.parametrize("user", RESTRICTED)
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
        *(["SELECT count() FROM events SETTINGS max_threads = 1"] if user[0] == "dash" else []),  # analysts: readonly
    ):
        try:
            client.query(sql, parameters=window)
        except DatabaseError as error:
            raise AssertionError(f"{user[0]} could not run {sql}") from error


@pytest.mark.clickhouse
def test_every_dashboard_query_runs_as_a_reader(guarded: ClickHouseSettings) -> None:
    import inspect

    from dashboard import queries

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
