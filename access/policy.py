"""Who may do what in ClickHouse, as code: roles, a settings profile for analysts, users, row policies.

Users come from an access file (LABELPULSE_ACCESS_FILE, YAML); their passwords from the
environment variables it names, never from the file. The roles are fixed here:

- writer    (workers): read and insert into LabelPulse's tables;
- reader    (dashboard, Grafana): read only, may send settings with a query (tools like Grafana's
  ClickHouse plugin send some with every query), and optionally only the rows of named projects;
- evaluator (alert evaluator): read, and insert into alert_history;
- analyst   (people with SQL): read only, with query limits (execution time, memory, result
  rows) they cannot lift, and optionally only the rows of named projects.

`statements()` renders it for a ClickHouse server (`labelpulse access apply`: roles and
grants, a settings profile, users, row policies; idempotent). The embedded ClickHouse
enforces the same file with `embedded_settings()` — each user's password, read-only for
readers and analysts, the analysts' limits, and the project restriction as
`additional_table_filters`, which the engine applies to every read of those tables, through
views and parameterized views too — and with embedded_clickhouse.guard, which checks each
statement of every role there: everyone reads only READABLE (table functions, dictionaries,
materialized views and system tables would read around the filters); the writer inserts only
into the worker's tables and the evaluator only into alert_history (INSERTABLE); nothing else
runs: no DDL, ALTER, DELETE, TRUNCATE, OPTIMIZE, SYSTEM or KILL, no file read or written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_str
from config.files import read_yaml
from schema.ddl import SINGLE_NODE, Target, quote
from schema.rows import WORKER_TABLES
from schema.tables import ALERT_HISTORY, ANALYST_VIEWS, RAW_TABLES, ROLLUPS

ROLES = ("writer", "reader", "evaluator", "analyst")
SCOPABLE = ("reader", "analyst")  # the roles that may be restricted to projects; the others work for every project
# What an analyst may not lift: ClickHouse's own settings, enforced by the engine.
DEFAULT_LIMITS: dict[str, int] = {
    "max_execution_time": 60,  # seconds
    "max_memory_usage": 4_000_000_000,  # bytes
    "max_result_rows": 1_000_000,
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_PROJECT = re.compile(r"^[^'\\\n]{1,256}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: str = field(repr=False)
    projects: tuple[str, ...] = ()  # analysts and readers: empty means every project


@dataclass(frozen=True)
class Access:
    users: tuple[User, ...] = ()
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def user(self, name: str) -> User | None:
        return next((user for user in self.users if user.name == name), None)


def from_env(env: Mapping[str, str] = os.environ) -> Access:
    """The access file LABELPULSE_ACCESS_FILE names, or no users beyond the admin when unset."""
    path = env_str(env, "ACCESS_FILE", "").strip()
    return load(Path(path), env) if path else Access()


def load(path: Path, env: Mapping[str, str] = os.environ) -> Access:
    """Read and check an access file; every mistake names the file and the field."""
    where = str(path)
    document = read_yaml(path, "access file")
    if not isinstance(document, dict) or set(document) - {"users", "analyst_limits"}:
        raise ConfigError(f"{where}: expected a mapping with `users` and optionally `analyst_limits`")
    limits = dict(DEFAULT_LIMITS)
    for name, value in (document.get("analyst_limits") or {}).items():
        if name not in DEFAULT_LIMITS:
            raise ConfigError(f"{where}: analyst_limits.{name}: unknown limit (known: {', '.join(DEFAULT_LIMITS)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}: analyst_limits.{name}: must be a whole number ≥ 1, got {value!r}")
        limits[name] = value
    users: list[User] = []
    for index, entry in enumerate(document.get("users") or []):
        users.append(_user(entry, f"{where}: users[{index}]", env))
    names = [user.name for user in users]
    if duplicate := next((name for name in names if names.count(name) > 1), None):
        raise ConfigError(f"{where}: user {duplicate!r} is defined twice")
    return Access(tuple(users), limits)


def _user(entry: Any, where: str, env: Mapping[str, str]) -> User:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with name, role, password_env")
    if unknown := set(entry) - {"name", "role", "password_env", "projects"}:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name, role, password_env = entry.get("name"), entry.get("role"), entry.get("password_env")
    if not isinstance(name, str) or not _NAME.match(name) or name == "default":
        raise ConfigError(f"{where}.name: a user name of letters, digits, '_' and '-' (not 'default'), got {name!r}")
    if role not in ROLES:
        raise ConfigError(f"{where}.role: one of {', '.join(ROLES)}, got {role!r}")
    if not isinstance(password_env, str) or not _ENV.match(password_env):
        raise ConfigError(f"{where}.password_env: the name of an environment variable, got {password_env!r}")
    password = env.get(password_env, "")
    if not password:
        raise ConfigError(f"{where}.password_env: {password_env} is not set; user {name!r} needs a password")
    projects = entry.get("projects") or []
    if projects and role not in SCOPABLE:
        raise ConfigError(
            f"{where}.projects: only analysts and readers are restricted to projects, {name!r} is a {role}"
        )
    if not isinstance(projects, list) or not all(isinstance(p, str) and _PROJECT.match(p) for p in projects):
        raise ConfigError(f"{where}.projects: a list of project ids, got {projects!r}")
    return User(name, role, password, tuple(projects))


# ------------------------------------------------------------------ for a ClickHouse server


# Every table holding data (views read these), by name.
DATA_TABLES = {table.name: table for table in RAW_TABLES} | {target.name: target for target, _ in ROLLUPS}


# What every role may read on the embedded ClickHouse, which has no grants of its own: the tables
# holding data and the analysts' views — nothing else of the database (no materialized views: reading
# one reads its target around the target's row filter).
READABLE = frozenset(DATA_TABLES) | frozenset(view.name for view in ANALYST_VIEWS)
# What each role may insert into there: the worker its own tables, the evaluator its alert history,
# nothing for the others (a ClickHouse server grants the writer INSERT on the whole database).
INSERTABLE: dict[str, frozenset[str]] = {
    "writer": frozenset(WORKER_TABLES),
    "reader": frozenset(),
    "evaluator": frozenset({ALERT_HISTORY.name}),
    "analyst": frozenset(),
}


def row_conditions(projects: tuple[str, ...]) -> dict[str, str]:
    """Per table holding data, the condition that keeps only `projects`' rows. Alert history is
    kept for alerts about those projects; rows of no project (dead letters) are not theirs."""
    listed = ", ".join(quote(project) for project in projects)
    conditions = {}
    for name, table in DATA_TABLES.items():
        if "project_id" in table.column_names:
            conditions[name] = f"project_id IN ({listed})"
        elif name == ALERT_HISTORY.name:
            conditions[name] = f"labels['project'] IN ({listed})"
        else:
            conditions[name] = "0"
    return conditions


def table_filters(projects: tuple[str, ...], database: str) -> str:
    """ClickHouse's `additional_table_filters` setting restricting every read to `projects`: the
    engine applies it to each table a query reads, through views and parameterized views too."""
    pairs = (
        f"{quote(f'{database}.{table}')}: {quote(condition)}" for table, condition in row_conditions(projects).items()
    )
    return "{" + ", ".join(pairs) + "}"


def statements(access: Access, database: str, target: Target = SINGLE_NODE) -> list[str]:
    """Idempotent SQL that makes a server match `access` (roles, grants, profile, users, row policies)."""
    on = target.on_cluster()
    db = f"`{database}`"
    limits = ", ".join(f"{name} = {value}" for name, value in access.limits.items())
    sql = [
        f"CREATE SETTINGS PROFILE OR REPLACE labelpulse_analyst{on} SETTINGS readonly = 1, {limits}",
        *(f"CREATE ROLE IF NOT EXISTS labelpulse_{role}{on}" for role in ROLES),
        f"GRANT{on} SELECT, INSERT ON {db}.* TO labelpulse_writer",
        f"GRANT{on} SELECT ON {db}.* TO labelpulse_reader",
        f"GRANT{on} SELECT ON {db}.* TO labelpulse_evaluator",
        f"GRANT{on} INSERT ON {db}.alert_history TO labelpulse_evaluator",
        f"GRANT{on} SELECT ON {db}.* TO labelpulse_analyst",
        f"ALTER ROLE labelpulse_analyst{on} SETTINGS PROFILE 'labelpulse_analyst'",
    ]
    for user in access.users:
        sql += [
            f"CREATE USER IF NOT EXISTS `{user.name}`{on}",
            f"ALTER USER `{user.name}`{on} IDENTIFIED WITH sha256_password BY {quote(user.password)}",
            f"GRANT{on} labelpulse_{user.role} TO `{user.name}`",
            f"ALTER USER `{user.name}`{on} DEFAULT ROLE labelpulse_{user.role}",
        ]
    restricted = [user for user in access.users if user.projects]
    conditions = {user.name: row_conditions(user.projects) for user in restricted}
    for table in DATA_TABLES:
        # Once a table has a row policy, ClickHouse shows nothing to users no policy names:
        # everyone else sees every row through `labelpulse_all`.
        if not restricted:
            sql.append(f"DROP ROW POLICY IF EXISTS labelpulse_all ON {db}.{table}{on}")
            continue
        except_ = ", ".join(f"`{user.name}`" for user in restricted)
        sql.append(f"CREATE ROW POLICY OR REPLACE labelpulse_all ON {db}.{table}{on} USING 1 TO ALL EXCEPT {except_}")
        for user in restricted:
            sql.append(
                f"CREATE ROW POLICY OR REPLACE `labelpulse_{user.name}` ON {db}.{table}{on} "
                f"FOR SELECT USING {conditions[user.name][table]} TO `{user.name}`"
            )
    return sql


# ------------------------------------------------------------------ for the embedded ClickHouse


def embedded_settings(user: User, access: Access, database: str) -> dict[str, str]:
    """Settings the embedded server forces on every query of `user` (applied last, readonly last of all)."""
    if INSERTABLE[user.role]:
        # They write, only into INSERTABLE (embedded_clickhouse.guard, which also refuses an INSERT's
        # own SETTINGS clause). The engine would write an insert's parse errors to any file this names.
        return {"input_format_record_errors_file_path": ""}
    # A reader may change settings per query, never write; an analyst's query can change none of these.
    forced = {name: str(value) for name, value in access.limits.items()} if user.role == "analyst" else {}
    if user.projects:
        # A restricted reader may not send its own filters either (the server refuses them): they would
        # replace these rather than narrow them, as a ClickHouse server's row policies would.
        forced["additional_table_filters"] = table_filters(user.projects, database)
    forced["readonly"] = "1" if user.role == "analyst" else "2"
    return forced


def redact(statement: str, access: Access) -> str:
    """The statement with every password replaced, for printing."""
    for user in access.users:
        statement = statement.replace(quote(user.password), "'…'")
    return statement
