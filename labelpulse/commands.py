"""The command handlers: each turns its arguments into settings and calls the service or tool that
does the work (the long-running ones live with their components: streams.service, alerts.service,
dashboard.service, api.service, embedded_clickhouse.service, labelpulse.broker, labelpulse.simulator, labelpulse.up)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
from dataclasses import replace
from typing import Any

from labelpulse.terminal import Progress, say, size_text
from schema.client import ClickHouseSettings, connect


class CliError(Exception):
    """A failure the user can fix; printed without a traceback."""


def run_up(args: argparse.Namespace) -> int:
    from labelpulse import up
    from schema.migrations import MigrationError

    settings = up.UpSettings.from_env(data_dir=args.data_dir, demo_rate=None if args.no_demo else args.demo_rate)
    try:
        return up.run(settings, say)
    except MigrationError as exc:
        raise CliError(str(exc)) from exc


def run_clickhouse(args: argparse.Namespace) -> int:
    from embedded_clickhouse import ServerSettings, service
    from labelpulse.runtime import RuntimeSettings

    settings = ServerSettings.from_env(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir or RuntimeSettings.from_env().clickhouse_dir,
        allow_remote=args.allow_remote,
    )
    return service.run_server(settings)


def run_broker(args: argparse.Namespace) -> int:
    from labelpulse import broker

    settings = broker.BrokerSettings.from_env()
    return broker.run_broker(replace(settings, host=args.host or settings.host, port=args.port or settings.port), say)


def run_worker(args: argparse.Namespace) -> int:
    from streams import service
    from streams.settings import WorkerSettings

    service.run_worker(WorkerSettings.from_env(), args.loglevel)


def run_compile(args: argparse.Namespace) -> int:
    from streams import compiled

    if (build := compiled.build_dir()).is_dir():
        say(f"the worker's per-event code is compiled for these sources ({build})")
        return 0
    say(f"compiling {' and '.join(compiled.COMPILED)} with mypyc (~15 s) …")
    try:
        build = compiled.build()
    except compiled.BuildError as exc:
        raise CliError(f"not compiled, the worker runs interpreted (~10 % more CPU an event): {exc}") from exc
    say(f"compiled ({build})")
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    from dashboard import service
    from dashboard.settings import DashboardSettings

    settings = DashboardSettings.from_env()
    service.run_dashboard(replace(settings, host=args.host or settings.host, port=args.port or settings.port))


def run_ingest(args: argparse.Namespace) -> int:
    from ingest import service
    from ingest.settings import IngestSettings

    env = dict(os.environ)
    env |= {"LABELPULSE_INGEST_HOST": args.host} if args.host else {}
    env |= {"LABELPULSE_INGEST_PORT": str(args.port)} if args.port else {}
    return service.run_ingest(IngestSettings.from_env(env), args.loglevel)


def run_import(args: argparse.Namespace) -> int:
    from ingest.backfill import Importer, ImportReport
    from ingest.label_studio import MalformedWebhook
    from ingest.settings import IngestSettings
    from kafka_admin.topics import KafkaUnavailable

    settings = IngestSettings.from_env()
    unit = "lines" if args.tool == "ndjson" else "tasks"  # of the summary
    shown = Progress(sys.stderr, live=sys.stderr.isatty())

    def progress(report: ImportReport) -> None:
        """The whole file is read and its events judged first, then they are sent."""
        if report.phase == "reading":
            judged = f"{report.accepted:,} events accepted, {len(report.refused):,} refused"
            if args.tool == "ndjson":  # bytes read of the file's size
                where = f"of {size_text(report.size)}: {report.records:,} lines"
            else:  # the export is mapped at once: its events judged
                where = f"{report.read:,} of {report.size:,} events of {report.records:,} tasks"
            shown.update("reading", report.read, report.size, f"{where}, {judged}")
        else:
            done = "counted (dry run)" if args.dry_run else "sent"
            shown.update(
                "sending", report.handled, report.accepted, f"{report.handled:,} of {report.accepted:,} events {done}"
            )

    importer = Importer(
        settings.kafka,
        limits=settings.limits,  # what the workers will accept (with no age limit for history)
        timeout_s=max(settings.publish_timeout_s, 30.0),
        idempotence=settings.idempotence,
        dry_run=args.dry_run,
        progress=progress,
    )
    try:
        report = importer.ndjson(args.file) if args.tool == "ndjson" else importer.label_studio(args.file)
    except (MalformedWebhook, OSError) as exc:
        raise CliError(f"cannot import {args.file}: {exc}") from exc
    except KafkaUnavailable as exc:
        raise CliError(f"{exc}; run the import again (what was sent is stored once)") from exc
    finally:
        shown.close()
    for where, error in report.refused[:20]:
        say(f"refused ({where}): {error.reason}")
    if len(report.refused) > 20:
        say(f"… and {len(report.refused) - 20} more refused")
    sent = f"{report.accepted} events to send (dry run)" if args.dry_run else f"{report.sent} events sent"
    say(f"{report.records} {unit}: {sent} to {settings.kafka.backfill_topic}, {len(report.refused)} refused")
    return 1 if report.refused else 0


def run_api(args: argparse.Namespace) -> int:
    from api import service
    from api.settings import ApiSettings

    overrides = {"LABELPULSE_API_HOST": args.host, "LABELPULSE_API_PORT": args.port and str(args.port)}
    return service.run_api(ApiSettings.from_env({**os.environ, **{k: v for k, v in overrides.items() if v}}))


def run_generate(args: argparse.Namespace) -> int:
    from kafka_admin.settings import KafkaSettings
    from labelpulse.simulator import Delivery, Plan, random_seed, run_simulator

    if args.late != 1 and not args.disorder:
        raise CliError("--late needs --disorder: it says which share of events are sent late, and by up to how long")
    seed = args.seed
    if seed is None:  # a fixed default would make two runs send the same ids, dropped as duplicates
        seed = random_seed()
        print(f"seed {seed}: repeat with --seed {seed}", file=sys.stderr, flush=True)
    plan = Plan(
        seed=seed,
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
        Delivery(args.disorder, args.duplicates, seed, late=args.late),
        count=args.count,
        duration_s=args.duration,
        realtime=not args.fast,
        record=args.record,
        quiet=args.quiet,
    )


def run_migrate(args: argparse.Namespace) -> int:
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


# --format NAME: the ClickHouse output format it asks for. Without --format: a table on a
# terminal, tab-separated with a header line into a pipe or a file (what ClickHouse's own client does).
SQL_FORMATS = {
    "table": "PrettyCompactMonoBlock",
    "tsv": "TabSeparatedWithNames",
    "csv": "CSVWithNames",
    "json": "JSONEachRow",
}
# Statements that answer with rows, so a FORMAT may follow them (INSERT … VALUES or DDL take none).
_ANSWERS_WITH_ROWS = re.compile(r"^[\s(]*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXPLAIN|EXISTS|CHECK)\b", re.IGNORECASE)
_NAMES_A_FORMAT = re.compile(r"\bFORMAT\s+[A-Za-z][A-Za-z0-9_]*\s*;?\s*$", re.IGNORECASE)


def clickhouse_format(name: str | None, terminal: bool) -> str:
    """The ClickHouse output format for --format `name` (None: not given)."""
    return SQL_FORMATS[name or ("table" if terminal else "tsv")]


def run_sql(args: argparse.Namespace) -> int:
    """ClickHouse formats the answer itself, so every value (arrays, maps, times, NULL) reads as
    ClickHouse writes it, and an empty result keeps its header where the format has one."""
    from clickhouse_connect.driver.exceptions import DatabaseError

    settings = ClickHouseSettings.from_env()
    client = connect(settings)
    statement = args.statement.strip().rstrip(";").rstrip()
    fmt = clickhouse_format(args.format, sys.stdout.isatty())
    rows = bool(_ANSWERS_WITH_ROWS.match(_without_comments(statement))) and not _NAMES_A_FORMAT.search(statement)
    try:
        output = client.raw_query(statement, parameters=dict(args.param) or None, fmt=fmt if rows else None)
    except DatabaseError as exc:
        raise CliError(_clickhouse_message(exc)) from exc
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    if rows and not output and fmt == SQL_FORMATS["table"]:
        print("0 rows", file=sys.stderr)  # a table of nothing is nothing at all: say so
    return 0


def _without_comments(statement: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.DOTALL)


def _clickhouse_message(exc: Exception) -> str:
    text = str(exc)
    marker = "DB::Exception: "
    if marker in text:
        text = text.split(marker, 1)[1]
        text = text.split(" (version ", 1)[0]
    return f"ClickHouse refused the statement: {text}"


def run_access(args: argparse.Namespace) -> int:
    from clickhouse_connect.driver.exceptions import DatabaseError

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


def run_hash_password(args: argparse.Namespace) -> int:
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


def run_topics(args: argparse.Namespace) -> int:
    from kafka_admin.settings import KafkaSettings
    from kafka_admin.topics import create_topics

    kafka = KafkaSettings.from_env()
    counts = asyncio.run(create_topics(kafka))
    for topic, partitions in counts.items():
        print(f"{topic}\t{partitions} partitions")
    if (found := counts[kafka.events_topic]) != kafka.partitions:
        print(
            f"note: {kafka.events_topic} has {found} partitions, not LABELPULSE_EVENTS_PARTITIONS={kafka.partitions}",
            file=sys.stderr,
        )
    return 0


def run_contract(args: argparse.Namespace) -> int:
    from schema.events import JSON_SCHEMA_PATH, render_json_schema

    document = render_json_schema()
    if args.write:
        JSON_SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        JSON_SCHEMA_PATH.write_text(document, encoding="utf-8")
        print(f"wrote {JSON_SCHEMA_PATH}")
    else:
        sys.stdout.write(document)
    return 0
