"""The server: one chDB engine behind ClickHouse's HTTP interface, running each request's statement."""

from __future__ import annotations

from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from access.policy import INSERTABLE, READABLE
from config.env import ConfigError
from config.hosts import is_loopback
from embedded_clickhouse import engine, guard, origins
from embedded_clickhouse.auth import Authenticator
from embedded_clickhouse.engine import Engine
from embedded_clickhouse.errors import (
    READONLY,
    SESSION_IS_LOCKED,
    SETTING_CONSTRAINT_VIOLATION,
    SYNTAX_ERROR,
    ClickHouseError,
)
from embedded_clickhouse.protocol import FORMAT_CLAUSE, INSERT_WITH_DATA, Handler, Request
from embedded_clickhouse.settings import ServerSettings

# Settings a read-only (readonly=1) user may still send: they change how results travel, not what runs.
_HARMLESS = frozenset(
    {"enable_http_compression", "http_zlib_compression_level", "output_format_json_quote_64bit_integers"}
)


class ClickHouseHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, settings: ServerSettings) -> None:
        if not settings.allow_remote and not is_loopback(settings.host):
            raise ConfigError(
                f"refusing to serve ClickHouse on non-loopback address {settings.host}: anyone on the "
                "network could read and write every table. Pass --allow-remote (and set a password) "
                "if that is what you want."
            )
        if not settings.password and (settings.access.users or settings.allow_remote):
            why = "with an access file" if settings.access.users else "with --allow-remote"
            raise ConfigError(
                f"refusing to serve ClickHouse {why} while its admin user '{settings.user}' has no password: "
                "anyone on this machine (or network) could read and change every table as that user. Set "
                "LABELPULSE_CLICKHOUSE_PASSWORD to a secret (e.g. `export LABELPULSE_CLICKHOUSE_PASSWORD="
                "$(openssl rand -hex 16)`) for this server and every LabelPulse process that uses it as admin."
            )
        self.settings = settings
        self.engine = Engine(settings.data_dir, settings.session_timeout_s)
        self.grants = {role: guard.Grants(settings.database, READABLE, tables) for role, tables in INSERTABLE.items()}
        self.authenticator = Authenticator(settings)
        self.own_origins = origins.own_origins(settings.host, settings.port)
        super().__init__((settings.host, settings.port), Handler)

    def execute(self, request: Request, handler: Handler) -> None:
        if request.user is not None:
            # Their unqualified names resolve where LabelPulse's tables are, unless they name a database.
            request.database = request.database or self.settings.database
        if request.forced.get("readonly") == "1" and (changed := sorted(set(request.settings) - _HARMLESS)):
            raise ClickHouseError.ours(READONLY, f"Cannot modify '{changed[0]}' setting in readonly mode")
        if request.user and request.user.projects and "additional_table_filters" in request.settings:
            # Its projects' filters would replace these, not narrow them as a server's row policies would.
            raise ClickHouseError.ours(
                SETTING_CONSTRAINT_VIOLATION,
                f"Setting additional_table_filters should not be changed: {request.user.name} is restricted "
                "to projects by the access file, and ClickHouse filters its reads to them",
            )
        settings = {**request.settings, **request.forced}  # readonly last: it locks what came before
        if "readonly" in settings:
            settings["readonly"] = settings.pop("readonly")
        if request.read_only and settings.get("readonly", "0") in ("0", ""):
            settings["readonly"] = "2"  # GET may read and change settings, never write
        # readonly cannot be switched back off, so such requests never touch a session.
        if request.session_id and "readonly" not in settings:
            session = self.engine.session(request.session_id, request.session_timeout_s)
            # A client's next request can arrive while the previous one is still releasing the session.
            if not session.lock.acquire(timeout=5.0):
                raise ClickHouseError.ours(
                    SESSION_IS_LOCKED, f"Session {request.session_id} is locked by a concurrent client"
                )
            try:
                # URL settings apply to this query only, as on a server: put the session's back after.
                previous = engine.apply_settings(session.connection, settings, request.database, remember=True)
                try:
                    self._dispatch(session.connection, request, handler)
                finally:
                    engine.restore_settings(session.connection, previous)
            finally:
                session.lock.release()
            return
        connection = self.engine.connect()
        try:
            engine.apply_settings(connection, settings, request.database, remember=False)
            self._dispatch(connection, request, handler)
        finally:
            connection.close()

    def _dispatch(self, connection: Any, request: Request, handler: Handler) -> None:
        if not request.sql.strip():
            raise ClickHouseError.ours(SYNTAX_ERROR, "Empty query")
        # A user of the access file runs only what embedded_clickhouse.guard lets their role run, as the
        # engine parsed and checked it.
        asker = self._asker(request)
        insert = INSERT_WITH_DATA.match(request.sql)
        # VALUES is text, run as a query — but not for users of the access file: the guard refuses it.
        if insert and (asker is not None or insert.group("format").lower() != b"values"):
            head, fmt = insert.group("head").decode("utf-8"), insert.group("format").decode()
            if asker is not None:
                head = guard.check_insert(connection, head, fmt, asker)
            rows = engine.insert(connection, head, fmt, engine.insert_data(insert, request.sql))
            handler.send_result(request, fmt, engine.nothing(), {"written_rows": rows})
            return
        try:
            sql = request.sql.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClickHouseError.ours(SYNTAX_ERROR, f"query is not valid UTF-8: {exc}") from exc
        format_clause = FORMAT_CLAUSE.search(sql)
        fmt = format_clause.group(1) if format_clause else request.default_format
        if asker is not None:
            checked = guard.check(connection, sql, request.params, asker, request.default_format)
            sql, fmt = checked.sql, checked.fmt
        handler.send_result(request, fmt, engine.stream(connection, sql, fmt, request.params), {})

    def _asker(self, request: Request) -> guard.Asker | None:
        """Whom the guard checks the request's statement for: nobody for the server's own admin."""
        if request.user is None:
            return None
        role = request.user.role
        return guard.Asker(request.user.name, role, self.grants[role], request.database or "")


def serve(settings: ServerSettings, *, ready: Callable[[ClickHouseHTTPServer], None] | None = None) -> None:
    """Serve until interrupted. `ready` is called once the socket is listening."""
    server = ClickHouseHTTPServer(settings)
    try:
        if ready:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.engine.close()
