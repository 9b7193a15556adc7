"""Migrations: numbered, recorded, idempotent, reversible where they say so, and refusing bad history."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from schema import migrations, tables
from schema.client import connect
from schema.ddl import SINGLE_NODE, create_all
from schema.migrations import AppliedMigration, Migration, MigrationError, load, verify_history
from tests.support.services import ClickHouseService

# -- loader (no ClickHouse) ---------------------------------------------------------------------


def write_package(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    """A throwaway migrations package on sys.path."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for filename, body in files.items():
        (package / filename).write_text(textwrap.dedent(body))
    sys.path.insert(0, str(tmp_path))
    return package, name


FORWARD_ONLY = (
    '"""Create x."""\ndef forwards(target):\n    return ["CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Memory"]\n'
)


@pytest.fixture(autouse=True)
def _restore_sys_path() -> object:
    before = list(sys.path)
    yield
    sys.path[:] = before


def test_migrations_load_in_number_order(tmp_path: Path) -> None:
    directory, package = write_package(tmp_path, {"0002_second.py": FORWARD_ONLY, "0001_first.py": FORWARD_ONLY})
    loaded = load(directory, package)
    assert [m.name for m in loaded] == ["0001_first", "0002_second"]
    assert loaded[0].description == "Create x."
    assert loaded[0].backwards is None


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.py": FORWARD_ONLY, "0001_b.py": FORWARD_ONLY}, "duplicate number: 0001_a, 0001_b"),
        ({"0001_a.py": FORWARD_ONLY, "0003_c.py": FORWARD_ONLY}, "without gaps (expected 0002)"),
        ({"0002_a.py": FORWARD_ONLY}, "expected 0001"),
        ({"0001_Bad-Name.py": FORWARD_ONLY}, "named NNNN_lowercase_name.py"),
        ({"0001_empty.py": "x = 1\n"}, "must define forwards(target)"),
    ],
)
def test_loader_refuses_broken_migration_sets(tmp_path: Path, files: dict[str, str], message: str) -> None:
    directory, package = write_package(tmp_path, files)
    with pytest.raises(MigrationError) as raised:
        load(directory, package)
    assert message in str(raised.value)


def test_shipped_migrations_load_and_the_first_is_reversible() -> None:
    loaded = load()
    assert loaded[0].name == "0001_initial"
    assert all(m.backwards is not None for m in loaded)


def _migration(number: int, name: str, checksum: str = "c") -> Migration:
    return Migration(number, name, checksum, "", forwards=lambda target: [], backwards=None)


FILES = [_migration(1, "0001_a", "aaa"), _migration(2, "0002_b", "bbb")]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([AppliedMigration(3, "0003_c", "ccc")], "there is no such file"),
        ([AppliedMigration(1, "0001_renamed", "aaa")], "was applied as 0001_renamed but the file is 0001_a"),
        ([AppliedMigration(1, "0001_a", "zzz")], "changed after it was applied"),
        ([AppliedMigration(2, "0002_b", "bbb")], "hole before 0002_b"),
    ],
)
def test_history_that_does_not_match_the_files_is_refused(history: list[AppliedMigration], message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        verify_history(FILES, history)


def test_history_that_is_a_prefix_of_the_files_is_fine() -> None:
    verify_history(FILES, [AppliedMigration(1, "0001_a", "aaa")])
    verify_history(FILES, [])


# -- against the real engine -------------------------------------------------------------------

pytest_clickhouse = pytest.mark.clickhouse
SHIPPED = [m.name for m in load()]


def object_names(client: Client) -> set[str]:
    return {row[0] for row in client.query("SHOW TABLES").result_rows}


@pytest_clickhouse
def test_forwards_creates_every_object_and_records_it(ch_client: Client) -> None:
    ran = migrations.migrate(ch_client)
    assert [m.name for m in ran] == SHIPPED
    names = object_names(ch_client)
    for obj in ("events", "dead_letters", "alert_history", "rollup_annotator_hour", "mv_rollup_gold_hour"):
        assert obj in names
    assert [a.name for a in migrations.applied(ch_client)] == SHIPPED


@pytest_clickhouse
def test_migrate_twice_is_a_no_op(ch_client: Client) -> None:
    migrations.migrate(ch_client)
    before = ch_client.command("SELECT count() FROM schema_migrations")
    messages: list[str] = []
    assert migrations.migrate(ch_client, progress=messages.append) == []
    assert messages == [f"schema is up to date (at {SHIPPED[-1]})"]
    assert ch_client.command("SELECT count() FROM schema_migrations") == before


@pytest_clickhouse
def test_backwards_then_forwards_again_on_a_fresh_database(ch_client: Client) -> None:
    migrations.migrate(ch_client)
    undone = migrations.rollback(ch_client, to=0)
    assert [m.name for m in undone] == SHIPPED[::-1]
    assert object_names(ch_client) == {"schema_migrations"}
    assert migrations.applied(ch_client) == []
    migrations.migrate(ch_client)
    assert "events" in object_names(ch_client)
    assert [a.name for a in migrations.applied(ch_client)] == SHIPPED


@pytest_clickhouse
def test_migrate_to_a_number_stops_there_and_continues_later(ch_client: Client) -> None:
    assert [m.name for m in migrations.migrate(ch_client, to=1)] == ["0001_initial"]
    assert "task_agreement" not in object_names(ch_client)
    assert [m.name for m in migrations.migrate(ch_client)] == SHIPPED[1:]
    assert "task_agreement" in object_names(ch_client)


@pytest_clickhouse
def test_migrate_refuses_when_recorded_history_does_not_match(ch_client: Client) -> None:
    migrations.migrate(ch_client)
    ch_client.command(
        "INSERT INTO schema_migrations (number, name, checksum, direction, applied_at) "
        "VALUES (1, '0001_initial', 'edited-since', 'forwards', now64(6) + 1)"
    )
    with pytest.raises(MigrationError, match="0001_initial changed after it was applied"):
        migrations.migrate(ch_client)


@pytest_clickhouse
def test_retention_can_be_set_and_removed(migrated: Client) -> None:
    migrations.apply_retention(migrated, 30)
    assert "TTL toDateTime(occurred_at) + toIntervalDay(30)" in migrated.command("SHOW CREATE TABLE events")
    migrations.apply_retention(migrated, 0)
    migrations.apply_retention(migrated, 0)  # removing twice is fine
    assert "TTL" not in migrated.command("SHOW CREATE TABLE events")


def schema_of(client: Client) -> dict[str, object]:
    """Every object of the database as the engine describes it: columns (type, default, comment, in
    order) and the statement that would create it, with the database's own name taken out."""
    database = client.command("SELECT currentDatabase()")
    columns = client.query(
        "SELECT table, name, type, default_kind, default_expression, comment FROM system.columns "
        "WHERE database = currentDatabase() AND table != 'schema_migrations' ORDER BY table, position"
    ).result_rows
    created = client.query(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND name != 'schema_migrations' ORDER BY name"
    ).result_rows
    return {
        "columns": columns,
        "created": [(name, query.replace(f"{database}.", "")) for name, query in created],
    }


@pytest.fixture
def new_database(clickhouse_service: ClickHouseService) -> Iterator[Callable[[], Client]]:
    """Makes empty databases on the test session's ClickHouse; drops them afterwards."""
    admin = connect(clickhouse_service.settings, database="default")
    made: list[str] = []

    def make() -> Client:
        made.append(f"test_{uuid.uuid4().hex[:12]}")
        admin.command(f"CREATE DATABASE {made[-1]}")
        return connect(replace(clickhouse_service.settings, database=made[-1]))

    yield make
    for name in made:
        admin.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest_clickhouse
def test_every_upgrade_path_ends_in_the_schema_that_schema_tables_describes(
    new_database: Callable[[], Client],
) -> None:
    upgraded, fresh, described = new_database(), new_database(), new_database()
    for number in range(1, len(SHIPPED) + 1):  # release by release, over time
        migrations.migrate(upgraded, to=number)
    migrations.migrate(fresh)
    for statement in create_all(tables.ALL_OBJECTS, SINGLE_NODE):
        described.command(statement)
    assert schema_of(upgraded) == schema_of(fresh)
    assert schema_of(described) == schema_of(fresh), "schema.tables and the migrations disagree: add a migration"


@pytest_clickhouse
def test_databases_migrated_before_migrations_were_frozen_upgrade_on(ch_client: Client) -> None:
    migrations.migrate(ch_client, to=4)
    # As an earlier LabelPulse recorded them: by the sha256 of the migration file.
    for number, file_checksum in migrations._RECORDED_AS_FILES.items():
        ch_client.command(
            "ALTER TABLE schema_migrations UPDATE checksum = {c:String} WHERE number = {n:UInt32}",
            parameters={"c": file_checksum, "n": number},
            settings={"mutations_sync": 2},
        )
    assert [m.name for m in migrations.migrate(ch_client)] == SHIPPED[4:]
