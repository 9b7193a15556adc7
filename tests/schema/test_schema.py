"""The ClickHouse schema as code: rendered DDL, column contracts, and what the engine makes of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from schema import tables
from schema.ddl import SINGLE_NODE, Target, render_create, render_drop, render_retention
from schema.migrations import load

SNAPSHOTS = Path(__file__).parent / "snapshots"
CLUSTER = Target(cluster="labelpulse_cluster")


def rendered_schema(target: Target) -> str:
    statements = [statement for migration in load() for statement in migration.forwards(target)]
    return ";\n\n".join(statements) + ";\n"


@pytest.mark.parametrize(
    ("target", "snapshot"), [(SINGLE_NODE, "schema_single_node.sql"), (CLUSTER, "schema_cluster.sql")]
)
def test_rendered_ddl_matches_snapshot(target: Target, snapshot: str) -> None:
    path = SNAPSHOTS / snapshot
    rendered = rendered_schema(target)
    if os.environ.get("LABELPULSE_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.read_text() == rendered, (
        f"DDL changed: review the diff, then LABELPULSE_UPDATE_SNAPSHOTS=1 pytest {__file__}"
    )


def test_cluster_variant_replicates_and_distributes_every_table() -> None:
    for table in (*tables.RAW_TABLES, *(rollup for rollup, _ in tables.ROLLUPS)):
        local, distributed = render_create(table, CLUSTER)
        assert f"CREATE TABLE IF NOT EXISTS {table.name}_local ON CLUSTER 'labelpulse_cluster'" in local
        assert (
            f"ENGINE = Replicated{table.engine}('/clickhouse/tables/{{shard}}/{{database}}/{table.name}_local'" in local
        )
        assert "non_replicated_deduplication_window" not in local
        assert f"ENGINE = Distributed('labelpulse_cluster', currentDatabase(), '{table.name}_local'" in distributed


def test_cluster_materialized_views_read_and_write_local_tables() -> None:
    for _, view in tables.ROLLUPS:
        (statement,) = render_create(view, CLUSTER)
        assert f"TO {view.target.name}_local" in statement
        assert f"FROM {view.source.name}_local" in statement


def test_single_node_tables_deduplicate_replayed_inserts() -> None:
    for table in (tables.EVENTS, tables.DEAD_LETTERS, *(rollup for rollup, _ in tables.ROLLUPS)):
        assert "non_replicated_deduplication_window = 10000" in render_create(table)[0]


def test_events_are_ordered_for_project_annotator_time_questions() -> None:
    assert tables.EVENTS.order_by == "project_id, annotator_id, occurred_at"
    assert tables.EVENTS.partition_by == "toYYYYMM(occurred_at)"


def test_every_column_of_every_analyst_view_is_documented() -> None:
    for view in tables.ANALYST_VIEWS:
        assert view.comment
        undocumented = [column.name for column in view.columns if not column.comment]
        assert not undocumented, f"{view.name}: {undocumented}"


def test_drop_undoes_create_in_reverse_dependency_order() -> None:
    migration = load()[0]
    assert migration.backwards is not None
    drops = migration.backwards(SINGLE_NODE)
    assert drops[0] == "DROP VIEW IF EXISTS gold_accuracy_hour SYNC"
    assert drops[-1] == "DROP TABLE IF EXISTS events SYNC"
    assert render_drop(tables.EVENTS, CLUSTER) == [
        "DROP TABLE IF EXISTS events ON CLUSTER 'labelpulse_cluster' SYNC",
        "DROP TABLE IF EXISTS events_local ON CLUSTER 'labelpulse_cluster' SYNC",
    ]


@pytest.mark.parametrize(
    ("days", "statement"),
    [
        (0, "ALTER TABLE events REMOVE TTL"),
        (30, "ALTER TABLE events MODIFY TTL toDateTime(occurred_at) + INTERVAL 30 DAY"),
    ],
)
def test_retention_statement(days: int, statement: str) -> None:
    assert render_retention(tables.EVENTS, "occurred_at", days) == statement


# -- against the real engine -------------------------------------------------------------------


WINDOW = {"from": "2026-01-01 00:00:00", "to": "2027-01-01 00:00:00"}  # for parameterized views


def described_columns(client: Client, select: str) -> list[tuple[str, str]]:
    parameters = WINDOW if "{from:" in select else None
    rows = client.query(f"DESCRIBE ({select})", parameters=parameters).result_rows
    return [(row[0], row[1]) for row in rows]


@pytest.mark.clickhouse
@pytest.mark.parametrize("pair", tables.ROLLUPS, ids=lambda pair: pair[1].name)
def test_materialized_view_select_matches_its_target_columns_in_order(migrated: Client, pair: tuple) -> None:  # type: ignore[type-arg]
    target, view = pair
    columns = described_columns(migrated, view.select.format(source=view.source.name))
    assert [name for name, _ in columns] == list(target.column_names)
    expected_types = {column.name: column.type for column in target.columns}
    for name, type_ in columns:
        if expected_types[name].startswith("SimpleAggregateFunction"):
            continue  # the MV yields the plain value; the table stores it as a simple state
        assert type_ == expected_types[name], f"{view.name}.{name}: {type_} != {expected_types[name]}"


@pytest.mark.clickhouse
@pytest.mark.parametrize("view", tables.ANALYST_VIEWS, ids=lambda view: view.name)
def test_analyst_view_select_yields_its_declared_columns_in_order(migrated: Client, view: tables.View) -> None:
    columns = described_columns(migrated, view.select)
    assert [name for name, _ in columns] == [column.name for column in view.columns]


@pytest.mark.clickhouse
def test_analyst_view_column_comments_reach_clickhouse(migrated: Client) -> None:
    comments = dict(
        migrated.query(
            "SELECT name, comment FROM system.columns "
            "WHERE database = currentDatabase() AND table = 'gold_accuracy_hour'"
        ).result_rows
    )
    assert comments["gold_accuracy"] == "gold_correct / gold_answers"


@pytest.mark.clickhouse
def test_cluster_variant_is_valid_clickhouse_syntax(ch_client: Client) -> None:
    # The embedded engine has no cluster to run it on, but its parser is the server's.
    statements = [statement for migration in load() for statement in migration.forwards(CLUSTER)]
    for statement in statements:
        ch_client.query("SELECT formatQuery({sql:String})", parameters={"sql": statement})
