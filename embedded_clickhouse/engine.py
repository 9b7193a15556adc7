"""The chDB engine of one data directory, and running statements on its connections."""

from __future__ import annotations

import contextlib
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
        # The Content-Type ClickHouse sends with each output format.
        self._content_types = dict(
            line.split("\t", 1)
            for line in self._scalar("SELECT name, content_type FROM system.formats WHERE is_output").splitlines()
        )
        self._sessions = Sessions(self.connect, session_timeout_s)

    def _scalar(self, sql: str) -> str:
        return str(self._anchor.query(sql, "TabSeparated").bytes().decode().strip())

    def content_type(self, fmt: str) -> str:
        return self._content_types.get(fmt, "application/octet-stream")

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


def insert_data(match: re.Match[bytes], sql: bytes) -> bytes:
    """The data of `INSERT … FORMAT x`: the bytes after the format name."""
    data_start = match.end()
    # As ClickHouse does: data starts after the newline following the format name, if any.
    while data_start < len(sql) and sql[data_start : data_start + 1] in (b" ", b"\t", b"\f"):
        data_start += 1
    if sql[data_start : data_start + 1] == b"\r":
        data_start += 1
    if sql[data_start : data_start + 1] == b"\n":
        data_start += 1
    return sql[data_start:]


def insert(connection: Any, statement: str, fmt: str, data: bytes) -> int:
    """Run `statement FORMAT fmt` (an INSERT) with `data` after it; the rows written."""
    try:
        with connection.send_insert(statement, fmt) as inserter:
            inserter.append(data)
            return int(inserter.finish().rows_written)
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc


def nothing() -> Generator[bytes, None, None]:
    yield from ()


# Formats whose document for a whole result is the concatenation of their documents for each block:
# rows with nothing before, between or after them. chDB's streaming API formats every block as a
# document of its own, so only these are sent as it produces them. Every other format — a header
# (CSVWithNames), a footer (JSON's statistics), a separator between rows (Values), a file layout
# (Parquet, Arrow) — is produced whole, as one document, before its first byte goes out.
_CONCATENABLE = frozenset(
    name.lower()
    for name in (
        *("TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "Raw", "CSV", "HiveText", "TSKV", "LineAsString"),
        *("JSONEachRow", "JSONLines", "JSONL", "NDJSON", "JSONStringsEachRow", "PrettyJSONEachRow"),
        *("PrettyJSONLines", "PrettyNDJSON", "JSONCompactEachRow", "JSONCompactStringsEachRow"),
        *("RowBinary", "Native", "MsgPack", "BSONEachRow", "Protobuf", "RawBLOB", "Null"),
    )
)
# Turns the JSON row formats into one array: `[` before the rows, `,` between, `]` after.
_ARRAY_OF_ROWS = "output_format_json_array_of_rows"


def streams_by_block(connection: Any, sql: str, fmt: str) -> bool:
    """Whether `fmt`'s output may be sent block by block as chDB produces it (see _CONCATENABLE)."""
    if fmt.lower() not in _CONCATENABLE:
        return False
    if "json" not in fmt.lower():
        return True
    # The setting may come from the URL or the session (set on the connection) or the statement itself.
    if _ARRAY_OF_ROWS in sql.lower():
        return False
    enabled = connection.query(f"SELECT getSetting('{_ARRAY_OF_ROWS}')", "TabSeparated").bytes().strip()
    return bool(enabled in (b"0", b"false"))


def stream(connection: Any, sql: str, fmt: str, params: dict[str, str]) -> Generator[bytes, None, None]:
    """The statement's result in `fmt`: streamed block by block where the format allows, else whole."""
    if not streams_by_block(connection, sql, fmt):
        yield whole(connection, sql, fmt, params)
        return
    try:
        stream = connection.send_query(sql, fmt, params=params)
    except Exception as exc:
        if "Streaming query is not supported" not in str(exc):
            raise ClickHouseError.from_engine(exc) from exc
        # DDL and other statements without a result stream run in one go.
        yield whole(connection, sql, fmt, params)
        return
    try:
        for chunk in stream:
            yield chunk.bytes()
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc
    finally:
        stream.close()


def whole(connection: Any, sql: str, fmt: str, params: dict[str, str]) -> bytes:
    """The statement's whole result as one document in `fmt`, as ClickHouse itself writes it."""
    try:
        result = connection.query(sql, fmt, params=params)
    except Exception as exc:
        # chDB keeps what a failed statement wrote and puts it before the connection's next result:
        # a session's next query would answer with it. Let a throwaway statement take it.
        with contextlib.suppress(Exception):
            connection.query("SELECT 1", "Null")
        raise ClickHouseError.from_engine(exc) from exc
    return bytes(result.bytes()) if hasattr(result, "bytes") else bytes(result)
