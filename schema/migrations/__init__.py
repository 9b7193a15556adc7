"""Numbered schema migrations, recorded in ClickHouse.

Each migration is a module `NNNN_name.py` in this package with

    def forwards(target: Target) -> list[str]    # statements to apply, in order
    def backwards(target: Target) -> list[str]   # optional: statements that undo forwards

Migrations return SQL and do no I/O, so they can be rendered, snapshotted and reviewed;
`migrate` runs them. Each carries the DDL it applies written out (`FORWARDS`, and for a cluster
`FORWARDS_ON_CLUSTER`), never rendered from today's `schema.tables`: a migration keeps doing what
it did when tables change later, so a fresh install and an upgraded one run the same statements.
Applied migrations are recorded (number, name, checksum of the DDL they produce) in
`schema_migrations`; `migrate` refuses to run when that record does not match the files — a
migration changed, renamed or deleted after it was applied — because then nobody knows what
schema the database really has.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from schema.client import ClickHouseSettings, connect
from schema.ddl import SINGLE_NODE, Column, Table, Target, render_create, render_retention
from schema.tables import EVENTS

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.py$")
Statements = list[str]
# What a frozen migration's cluster statements name the cluster by.
CLUSTER_PLACEHOLDER = "__CLUSTER__"
# Migrations 0001-0004 were first written as renderings of schema.tables and recorded by the sha256
# of their file. Rewritten to carry the same statements literally, they are known by those too.
_RECORDED_AS_FILES = {
    1: "08011e596aba03e8c4ba0133192c5afe4cb633848897c16b1e513675c52c5dcc",
    2: "4e7b34561811fae88e4ef19299107c8a4eb26459721b9db7a04a67443fec10c0",
    3: "0e291c3a811d734c6265ac987ab755abcbb6694c5079dc7e682af3209e3adf2f",
    4: "b20a9b34b801c5ed2f539cec9495fe646522ab352f47146bbbc703c84e675db8",
}


def on_target(single_node: Statements, on_cluster: Statements) -> Callable[[Target], Statements]:
    """The statements of a frozen migration for a target; on a cluster with the cluster's name."""

    def statements(target: Target) -> Statements:
        if not target.cluster:
            return list(single_node)
        return [statement.replace(CLUSTER_PLACEHOLDER, target.cluster) for statement in on_cluster]

    return statements


def checksum(forwards: Callable[[Target], Statements], backwards: Callable[[Target], Statements] | None) -> str:
    """sha256 of every statement a migration produces, both ways and in both shapes."""
    shapes = (SINGLE_NODE, Target(cluster=CLUSTER_PLACEHOLDER))
    produced = [forwards(shape) for shape in shapes] + [backwards(shape) for shape in shapes if backwards]
    return hashlib.sha256(json.dumps(produced).encode()).hexdigest()


MIGRATIONS_TABLE = Table(
    name="schema_migrations",
    comment="Which schema migrations ran, when, in which direction. Written by `labelpulse migrate`.",
    columns=(
        Column("number", "UInt32", "Migration number"),
        Column("name", "String", "File name without .py"),
        Column("checksum", "String", "sha256 of the migration file when it ran"),
        Column("direction", "Enum8('forwards' = 1, 'backwards' = 2)", "What ran"),
        Column("applied_at", "DateTime64(6, 'UTC')", "When, UTC"),
    ),
    order_by="number, applied_at",
)


class MigrationError(RuntimeError):
    """The migration files or the recorded history are not in a state we can safely act on."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    checksum: str
    description: str
    forwards: Callable[[Target], list[str]]
    backwards: Callable[[Target], list[str]] | None


@dataclass(frozen=True)
class AppliedMigration:
    number: int
    name: str
    checksum: str


def load(directory: Path = Path(__file__).parent, package: str = __name__) -> list[Migration]:
    """All migrations in `directory`, ordered; refuses duplicate numbers and gaps."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("[0-9]*.py")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.py")
        module = importlib.import_module(f"{package}.{path.stem}")
        if not callable(getattr(module, "forwards", None)):
            raise MigrationError(f"{path.name}: a migration must define forwards(target) -> list[str]")
        migrations.append(
            Migration(
                number=int(match.group(1)),
                name=path.stem,
                checksum=checksum(module.forwards, getattr(module, "backwards", None)),
                description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "",
                forwards=module.forwards,
                backwards=getattr(module, "backwards", None),
            )
        )
    for expected, migration in enumerate(migrations, start=1):
        if migration.number != expected:
            clash = [m.name for m in migrations if m.number == migration.number]
            problem = f"duplicate number: {', '.join(clash)}" if len(clash) > 1 else f"expected {expected:04d}"
            raise MigrationError(f"{migration.name}: migrations are numbered 0001, 0002, … without gaps ({problem})")
    return migrations


def applied(client: Client) -> list[AppliedMigration]:
    """Migrations currently applied (last direction recorded is forwards), in order."""
    rows = client.query(
        """
        SELECT number, argMax(name, applied_at), argMax(checksum, applied_at), argMax(direction, applied_at)
        FROM schema_migrations GROUP BY number ORDER BY number
        """
    ).result_rows
    return [AppliedMigration(n, name, checksum) for n, name, checksum, direction in rows if direction == "forwards"]


def verify_history(migrations: list[Migration], history: list[AppliedMigration]) -> None:
    """Refuse when what the database recorded is not a prefix of the migration files."""
    by_number = {m.number: m for m in migrations}
    for position, record in enumerate(history, start=1):
        migration = by_number.get(record.number)
        if migration is None:
            raise MigrationError(
                f"the database has migration {record.name} applied, but there is no such file: "
                "this checkout is older than the database, or the file was deleted"
            )
        if migration.name != record.name:
            raise MigrationError(
                f"migration {record.number:04d} was applied as {record.name} but the file is {migration.name}"
            )
        if record.checksum not in (migration.checksum, _RECORDED_AS_FILES.get(record.number)):
            raise MigrationError(
                f"{migration.name} changed after it was applied (checksum {record.checksum[:12]} recorded, "
                f"{migration.checksum[:12]} now: it produces other DDL); applied migrations are immutable — "
                "add a new migration"
            )
        if record.number != position:
            raise MigrationError(f"migration history has a hole before {record.name}")


def open_database(settings: ClickHouseSettings, target: Target = SINGLE_NODE) -> Client:
    """A client on the settings' database, created first if it does not exist yet."""
    server = connect(settings, database="default")
    server.command(f"CREATE DATABASE IF NOT EXISTS `{settings.database}`{target.on_cluster()}")
    return connect(settings)


def migrate(
    client: Client,
    target: Target = SINGLE_NODE,
    *,
    to: int | None = None,
    migrations: list[Migration] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Migration]:
    """Apply pending migrations up to `to` (default: all). Idempotent; returns what ran."""
    migrations = load() if migrations is None else migrations
    for statement in render_create(MIGRATIONS_TABLE, target):
        client.command(statement)
    history = applied(client)
    verify_history(migrations, history)
    done = {record.number for record in history}
    pending = [m for m in migrations if m.number not in done and (to is None or m.number <= to)]
    if not pending:
        progress("schema is up to date" + (f" (at {history[-1].name})" if history else ""))
    for migration in pending:
        progress(f"applying {migration.name}: {migration.description}")
        for statement in migration.forwards(target):
            client.command(statement)
        _record(client, migration, "forwards")
    return pending


def rollback(
    client: Client,
    target: Target = SINGLE_NODE,
    *,
    to: int,
    migrations: list[Migration] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Migration]:
    """Undo applied migrations above number `to`, newest first. Returns what was undone."""
    migrations = load() if migrations is None else migrations
    history = applied(client)
    verify_history(migrations, history)
    by_number = {m.number: m for m in migrations}
    undo = [by_number[record.number] for record in reversed(history) if record.number > to]
    for migration in undo:
        if migration.backwards is None:
            raise MigrationError(f"{migration.name} is forward-only; cannot roll back past it")
    for migration in undo:
        progress(f"rolling back {migration.name}")
        assert migration.backwards is not None
        for statement in migration.backwards(target):
            client.command(statement)
        _record(client, migration, "backwards")
    return undo


def _record(client: Client, migration: Migration, direction: str) -> None:
    client.command(
        "INSERT INTO schema_migrations (number, name, checksum, direction, applied_at) "
        "SELECT {number:UInt32}, {name:String}, {checksum:String}, {direction:String}, now64(6)",
        parameters={
            "number": migration.number,
            "name": migration.name,
            "checksum": migration.checksum,
            "direction": direction,
        },
    )


def apply_retention(client: Client, raw_events_ttl_days: int, target: Target = SINGLE_NODE) -> None:
    """Keep raw events for `raw_events_ttl_days` days (0: forever). Rollups are kept."""
    try:
        client.command(render_retention(EVENTS, "occurred_at", raw_events_ttl_days, target))
    except Exception as exc:
        if raw_events_ttl_days == 0 and "doesn't have any table TTL" in str(exc):
            return  # nothing to remove
        raise
