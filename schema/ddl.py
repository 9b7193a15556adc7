"""How ClickHouse objects are described and rendered.

Objects are data (`Table`, `MaterializedView`, `View`); `render_create` turns one into SQL
for a single server or for a cluster. On a cluster every table becomes a Replicated
`<name>_local` on each node plus a Distributed `<name>` in front of it, materialized views
read and write the local tables, and analyst views read the Distributed ones — so every
query and insert in the code uses the same plain name in both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """Where DDL goes: a single server (cluster=None) or every node of a named cluster."""

    cluster: str | None = None

    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""


SINGLE_NODE = Target()


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str = ""
    default: str | None = None

    def render(self) -> str:
        default = f" DEFAULT {self.default}" if self.default is not None else ""
        return f"`{self.name}` {self.type}{default} COMMENT {quote(self.comment)}"


@dataclass(frozen=True)
class Table:
    """A MergeTree-family table. `engine` is the unreplicated engine name."""

    name: str
    columns: tuple[Column, ...]
    order_by: str
    comment: str
    engine: str = "MergeTree"
    partition_by: str | None = None
    # Sharding key of the Distributed table on a cluster: rows of one key meet on one shard.
    shard_by: str = "rand()"
    settings: dict[str, str | int] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class MaterializedView:
    """Feeds `target` from every block inserted into `source`."""

    name: str
    source: Table
    target: Table
    select: str  # must name `source` as {source}; columns in the order of target.columns


@dataclass(frozen=True)
class View:
    """A plain view for analysts; columns carry types and comments."""

    name: str
    columns: tuple[Column, ...]
    select: str  # reads tables by their plain names: the Distributed ones on a cluster
    comment: str


SchemaObject = Table | MaterializedView | View


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_name(name: str, target: Target) -> str:
    """The name of the table that holds the rows on each node."""
    return f"{name}_local" if target.cluster else name


def render_create(obj: SchemaObject, target: Target = SINGLE_NODE) -> list[str]:
    if isinstance(obj, Table):
        return _create_table(obj, target)
    if isinstance(obj, MaterializedView):
        return [_create_materialized_view(obj, target)]
    return [_create_view(obj, target)]


def render_drop(obj: SchemaObject, target: Target = SINGLE_NODE) -> list[str]:
    on_cluster = target.on_cluster()
    if isinstance(obj, Table):
        names = [obj.name, local_name(obj.name, target)] if target.cluster else [obj.name]
        return [f"DROP TABLE IF EXISTS {name}{on_cluster} SYNC" for name in names]
    if isinstance(obj, MaterializedView):
        return [f"DROP TABLE IF EXISTS {obj.name}{on_cluster} SYNC"]
    return [f"DROP VIEW IF EXISTS {obj.name}{on_cluster} SYNC"]


def create_all(objects: tuple[SchemaObject, ...], target: Target) -> list[str]:
    """CREATE statements for `objects`, in the given (dependency) order."""
    return [statement for obj in objects for statement in render_create(obj, target)]


def drop_all(objects: tuple[SchemaObject, ...], target: Target) -> list[str]:
    """DROP statements for `objects`, dependents first."""
    return [statement for obj in reversed(objects) for statement in render_drop(obj, target)]


def _engine(table: Table, target: Target) -> str:
    if not target.cluster:
        return table.engine
    name = local_name(table.name, target)
    return f"Replicated{table.engine}('/clickhouse/tables/{{shard}}/{{database}}/{name}', '{{replica}}')"


def _create_table(table: Table, target: Target) -> list[str]:
    columns = ",\n    ".join(column.render() for column in table.columns)
    clauses = [f"ENGINE = {_engine(table, target)}"]
    if table.partition_by:
        clauses.append(f"PARTITION BY {table.partition_by}")
    clauses.append(f"ORDER BY ({table.order_by})")
    settings = dict(table.settings)
    if target.cluster:
        # Replicated tables deduplicate inserts by their own window setting.
        settings.pop("non_replicated_deduplication_window", None)
    if settings:
        clauses.append("SETTINGS " + ", ".join(f"{key} = {value}" for key, value in settings.items()))
    clauses.append(f"COMMENT {quote(table.comment)}")
    name = local_name(table.name, target)
    statements = [f"CREATE TABLE IF NOT EXISTS {name}{target.on_cluster()}\n(\n    {columns}\n)\n" + "\n".join(clauses)]
    if target.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table.name}{target.on_cluster()} AS {name}\n"
            f"ENGINE = Distributed('{target.cluster}', currentDatabase(), '{name}', {table.shard_by})\n"
            f"COMMENT {quote(table.comment)}"
        )
    return statements


def _create_materialized_view(view: MaterializedView, target: Target) -> str:
    select = view.select.format(source=local_name(view.source.name, target)).strip()
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.name}{target.on_cluster()}\n"
        f"TO {local_name(view.target.name, target)}\n"
        f"AS {select}"
    )


def _create_view(view: View, target: Target) -> str:
    columns = ",\n    ".join(column.render() for column in view.columns)
    return (
        f"CREATE VIEW IF NOT EXISTS {view.name}{target.on_cluster()}\n(\n    {columns}\n)\n"
        f"AS {view.select.strip()}\n"
        f"COMMENT {quote(view.comment)}"
    )


def render_retention(table: Table, time_column: str, days: int, target: Target = SINGLE_NODE) -> str:
    """Keep `days` of rows in `table` by `time_column` (0 keeps everything)."""
    name = local_name(table.name, target)
    if days == 0:
        return f"ALTER TABLE {name}{target.on_cluster()} REMOVE TTL"
    return f"ALTER TABLE {name}{target.on_cluster()} MODIFY TTL toDateTime({time_column}) + INTERVAL {int(days)} DAY"
