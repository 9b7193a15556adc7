"""The chDB engine of one data directory, and running statements on its connections."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import chdb

from embedded_clickhouse.errors import UNKNOWN_SETTING, ClickHouseError
from embedded_clickhouse.sessions import Session, Sessions
from schema.ddl import quote

log = logging.getLogger("labelpulse.clickhouse")


class Engine:
    """The chDB engine of one data directory, and the HTTP sessions opened on it."""

    def __init__(self, data_dir: Path, session_timeout_s: float) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self._dsn = f"file:{data_dir.resolve()}"
        # Held open for the life of the server: chDB stops the engine when the last connection closes.
        self._anchor = chdb.connect(self._dsn)
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self._sessions = Sessions(self.connect, session_timeout_s)

    def _scalar(self, sql: str) -> str:
        return str(self._anchor.query(sql, "TabSeparated").bytes().decode().strip())

    def connect(self) -> Any:
        return chdb.connect(self._dsn)

    def session(self, session_id: str, timeout_s: float | None) -> Session:
        return self._sessions.get(session_id, timeout_s)

    def close(self) -> None:
        self._sessions.close()
        self._anchor.close()


_DATABASE = "__current_database__"


def apply_settings(
    connection: Any, settings: dict[str, str], database: str | None, *, remember: bool
) -> dict[str, tuple[bool, str]]:
    """Apply per-request settings and database; with `remember`, return what they were."""
    previous: dict[str, tuple[bool, str]] = {}
    try:
        if remember and (settings or database):
            names = ", ".join(quote(name) for name in settings) or "''"
            current = connection.query(
                f"SELECT name, changed, value FROM system.settings WHERE name IN ({names}) "
                f"UNION ALL SELECT '{_DATABASE}', true, currentDatabase()",
                "JSONCompact",
            )
            for name, changed, value in json.loads(current.bytes())["data"]:
                previous[name] = (bool(changed), value)
        if settings:
            assignments = ", ".join(f"{_setting_name(name)} = {quote(value)}" for name, value in settings.items())
            connection.query(f"SET {assignments}")
        if database:
            connection.query(f"USE {_identifier(database)}")
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc
    return previous


def restore_settings(connection: Any, previous: dict[str, tuple[bool, str]]) -> None:
    database = previous.get(_DATABASE)
    settings = {name: state for name, state in previous.items() if name != _DATABASE}
    try:
        if settings:
            assignments = ", ".join(
                f"{_setting_name(name)} = {quote(value) if changed else 'DEFAULT'}"
                for name, (changed, value) in settings.items()
            )
            connection.query(f"SET {assignments}")
        if database:
            connection.query(f"USE {_identifier(database[1])}")
    except Exception:
        log.warning("could not restore session state %s", list(settings), exc_info=True)


def _setting_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ClickHouseError.ours(UNKNOWN_SETTING, f"Unknown setting '{name}'")
    return name


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def insert(connection: Any, match: re.Match[bytes], sql: bytes) -> int:
    """Run `INSERT … FORMAT x` with the bytes after the format name as its data."""
    data_start = match.end()
    # As ClickHouse does: data starts after the newline following the format name, if any.
    while data_start < len(sql) and sql[data_start : data_start + 1] in (b" ", b"\t", b"\f"):
        data_start += 1
    if sql[data_start : data_start + 1] == b"\r":
        data_start += 1
    if sql[data_start : data_start + 1] == b"\n":
        data_start += 1
    try:
        with connection.send_insert(match.group("head").decode("utf-8"), match.group("format").decode()) as inserter:
            inserter.append(sql[data_start:])
            return int(inserter.finish().rows_written)
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc


def nothing() -> Generator[bytes, None, None]:
    yield from ()


def stream(connection: Any, sql: str, fmt: str, params: dict[str, str]) -> Generator[bytes, None, None]:
    try:
        stream = connection.send_query(sql, fmt, params=params)
    except Exception as exc:
        if "Streaming query is not supported" not in str(exc):
            raise ClickHouseError.from_engine(exc) from exc
        # DDL and other statements without a result stream run in one go.
        try:
            result = connection.query(sql, fmt, params=params)
        except Exception as inner:
            raise ClickHouseError.from_engine(inner) from inner
        yield result.bytes() if hasattr(result, "bytes") else bytes(result)
        return
    try:
        for chunk in stream:
            yield chunk.bytes()
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc
    finally:
        stream.close()
