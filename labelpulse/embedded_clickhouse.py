"""The embedded ClickHouse: one process owns a chDB data directory and serves ClickHouse's own
HTTP interface, so every other part of LabelPulse uses unmodified clickhouse-connect.

Only one process may open a chDB data directory, hence this server. It implements the parts
of the HTTP protocol clients rely on:

- the query in `?query=`, in the POST body, or begun in one and continued in the other;
  `multipart/form-data` bodies; settings, `database`, `default_format`, `query_id` and
  `param_<name>` values for `{name:Type}` placeholders as URL parameters;
- `INSERT … FORMAT <fmt>` with the data in the body (binary formats included), compressed
  request bodies (`Content-Encoding`: lz4, zstd, gzip, deflate, br) and compressed responses
  when `enable_http_compression=1`;
- sessions (`session_id`) with their own settings and temporary tables;
- results streamed in chunks as chDB produces them;
- errors as ClickHouse sends them: the HTTP status ClickHouse maps the code to,
  `X-ClickHouse-Exception-Code`, and a `Code: N. DB::Exception: …` body — or, once a stream
  has started, the tagged `__exception__` block clients look for;
- user and password (basic auth, `X-ClickHouse-User`/`Key` headers, or URL parameters).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import gzip
import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame
import zstandard
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from labelpulse.net import is_loopback
from schema.access import Access, User, embedded_settings
from schema.ddl import quote

log = logging.getLogger("labelpulse.clickhouse")

# Error codes we raise ourselves (names and numbers as in ClickHouse's ErrorCodes.cpp).
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
UNKNOWN_COMPRESSION_METHOD = (146, "UNKNOWN_COMPRESSION_METHOD")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
CANNOT_DECOMPRESS = (354, "CANNOT_DECOMPRESS")
SESSION_IS_LOCKED = (373, "SESSION_IS_LOCKED")
AUTHENTICATION_FAILED = (516, "AUTHENTICATION_FAILED")
READONLY = (164, "READONLY")
STD_EXCEPTION = (1001, "STD_EXCEPTION")

# HTTP status for an exception code, as ClickHouse's exceptionCodeToHTTPStatus maps them.
_STATUS_BY_CODE: dict[int, int] = {
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 516, 512, 497), 403),  # UNKNOWN_USER, WRONG_PASSWORD, AUTH…, ACCESS_DENIED
    **dict.fromkeys(
        (36, 427, 6, 25, 26, 38, 41, 72, 441, 442, 376, 27, 61, 44, 9, 1, 52, 53, 167, 168, 4, 117, 321, 62),
        400,
    ),
    **dict.fromkeys((60, 46, 47, 50, 56, 81, 115, 107, 63, 73, 170, 511, 57), 404),
    202: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    **dict.fromkeys((209, 76, 439), 503),  # SOCKET_TIMEOUT, CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK
    159: 408,  # TIMEOUT_EXCEEDED
}

# URL parameters that steer the HTTP layer and are not ClickHouse settings.
_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "quota_key",
        "compress",
        "decompress",
        "client_protocol_version",
        "role",
        # response buffering knobs of the HTTP layer: we stream as chDB produces
        "wait_end_of_query",
        "buffer_size",
    }
)

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}

# Served at GET /metrics on the HTTP port, as ClickHouse's own `prometheus` HTTP handler can be.
QUERIES = Counter("labelpulse_clickhouse_queries", "Statements served, by kind (query or insert)", ["kind"])
QUERY_ERRORS = Counter("labelpulse_clickhouse_query_errors", "Statements refused, by ClickHouse error code", ["code"])
QUERY_SECONDS = Histogram(
    "labelpulse_clickhouse_query_duration_seconds",
    "Time from request to the last byte of the answer, by kind",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_INSERT_WITH_DATA = re.compile(
    rb"^\s*(?P<head>INSERT\s+INTO\s+.+?)\s+FORMAT\s+(?P<format>[A-Za-z][A-Za-z0-9_]*)",
    re.IGNORECASE | re.DOTALL,
)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\. ")
_ERROR_NAME = re.compile(r"\(([A-Z_][A-Z0-9_]+)\)\s*$")


class ClickHouseError(Exception):
    """An error to send to the client as ClickHouse would."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name

    @classmethod
    def ours(cls, code_and_name: tuple[int, str], message: str) -> ClickHouseError:
        return cls(code_and_name[0], code_and_name[1], message)

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap a chDB exception; its text is already `Code: N. DB::Exception: … (NAME)`."""
        text = str(exc)
        match = _ERROR_CODE.search(text)
        if not match:
            return cls(STD_EXCEPTION[0], STD_EXCEPTION[1], text)
        message = text[match.start() :].strip().split("DB::Exception: ", 1)[-1]
        name = _ERROR_NAME.search(message)
        if name:
            message = message[: name.start()].rstrip()
        return cls(int(match.group(1)), name.group(1) if name else "", message)

    @property
    def http_status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 500)

    def render(self, version: str) -> bytes:
        message = str(self) if str(self).endswith(".") else f"{self}."
        name = f" ({self.name})" if self.name else ""
        return f"Code: {self.code}. DB::Exception: {message}{name} (version {version})\n".encode()


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8123
    data_dir: Path = Path(".labelpulse/clickhouse")
    user: str = "default"
    password: str = ""
    # Binding anything but loopback exposes every table to the network: opt in explicitly.
    allow_remote: bool = False
    session_timeout_s: float = 60.0
    # More users than the one above, with roles (schema.access); `database` is what their project
    # restrictions name.
    access: Access = field(default_factory=Access)
    database: str = "labelpulse"


@dataclass
class _Session:
    connection: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    expires_at: float = 0.0


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
        self._session_timeout_s = session_timeout_s
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()

    def _scalar(self, sql: str) -> str:
        return str(self._anchor.query(sql, "TabSeparated").bytes().decode().strip())

    def connect(self) -> Any:
        return chdb.connect(self._dsn)

    def session(self, session_id: str, timeout_s: float | None) -> _Session:
        now = time.monotonic()
        with self._sessions_lock:
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = _Session(self.connect())
            session.expires_at = now + (timeout_s or self._session_timeout_s)
            return session

    def _expire(self, now: float) -> None:
        for session_id, session in list(self._sessions.items()):
            if session.expires_at < now and not session.lock.locked():
                session.connection.close()
                del self._sessions[session_id]

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions.values():
                session.connection.close()
            self._sessions.clear()
        self._anchor.close()


@dataclass
class Request:
    """One HTTP request, decoded: the SQL text (and data after it), parameters and settings."""

    sql: bytes
    params: dict[str, str]
    settings: dict[str, str]
    database: str | None
    default_format: str
    session_id: str | None
    session_timeout_s: float | None
    query_id: str
    read_only: bool
    compress_response: bool
    # What the user's role imposes (schema.access), applied after the request's own settings.
    forced: dict[str, str] = field(default_factory=dict)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the second waits for
    # the client's delayed ACK, adding ~40 ms to every request.
    disable_nagle_algorithm = True
    server: ClickHouseHTTPServer

    # -- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle(read_only=True)

    def do_POST(self) -> None:
        self._handle(read_only=False)

    def do_HEAD(self) -> None:
        self._send_simple(200, b"")

    def _handle(self, *, read_only: bool) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path:
            self._read_body()  # keep the connection usable
            if path in ("/ping", "/replicas_status"):
                self._send_simple(200, b"Ok.\n")
            elif path == "/metrics":
                self._send_simple(200, generate_latest(), content_type=CONTENT_TYPE_LATEST)
            else:
                self._send_simple(404, b"There is no handle " + url.path.encode() + b"\n")
            return
        query_id = str(uuid.uuid4())
        url_params = dict(parse_qsl(url.query, keep_blank_values=True))
        started, kind = time.perf_counter(), "query"
        try:
            request = self._decode(url_params, read_only, query_id)  # reads the body, keeping the connection usable
            user = self._authenticate(url_params)
            if user is not None:
                request.forced = embedded_settings(user, self.server.settings.access, self.server.settings.database)
            if not request.sql.strip() and self.command == "GET" and "query" not in url_params:
                self._send_simple(200, b"Ok.\n")
                return
            kind = "insert" if _INSERT_WITH_DATA.match(request.sql) else "query"
            QUERIES.labels(kind).inc()
            self.server.execute(request, self)
            QUERY_SECONDS.labels(kind).observe(time.perf_counter() - started)
        except ClickHouseError as exc:
            self._send_error(exc, query_id)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            log.exception("unexpected error serving a request")
            self._send_error(ClickHouseError.ours(STD_EXCEPTION, f"{type(exc).__name__}: {exc}"), query_id)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline().strip().split(b";", 1)[0]
                size = int(size_line, 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- request decoding -------------------------------------------------------------------
    def _authenticate(self, url_params: dict[str, str]) -> User | None:
        """The access-file user making the request, or None for the server's own (admin) user."""
        name = self.headers.get("X-ClickHouse-User") or url_params.get("user")
        password = self.headers.get("X-ClickHouse-Key") or url_params.get("password")
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            try:
                name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                name, password = None, None
        name, password = name or "default", password or ""
        expected = self.server.settings
        if hmac.compare_digest(name.encode(), expected.user.encode()) and hmac.compare_digest(
            password.encode(), expected.password.encode()
        ):
            return None
        user = expected.access.user(name)
        if user is not None and hmac.compare_digest(password.encode(), user.password.encode()):
            return user
        raise ClickHouseError.ours(
            AUTHENTICATION_FAILED,
            f"{name}: Authentication failed: password is incorrect, or there is no user with such name",
        )

    def _decode(self, url_params: dict[str, str], read_only: bool, query_id: str) -> Request:
        body = _decompress(self._read_body(), self.headers.get("Content-Encoding", ""))
        content_type = self.headers.get("Content-Type", "")
        form: list[tuple[str, str]] = []
        if content_type.startswith("multipart/form-data"):
            form = _parse_multipart(content_type, body)
            body = b""
        values = dict(url_params)
        query = values.get("query", "")
        for name, value in form:
            if name == "query":
                query = value
            else:
                values[name] = value
        sql = query.encode()
        if body:
            sql = sql + b"\n" + body if sql else body
        settings = {
            name: value
            for name, value in values.items()
            if name not in _TRANSPORT_PARAMS and not name.startswith("param_")
        }
        compress = settings.get("enable_http_compression", "0") not in ("0", "", "false")
        timeout = values.get("session_timeout")
        return Request(
            sql=sql,
            params={name[6:]: value for name, value in values.items() if name.startswith("param_")},
            settings=settings,
            database=values.get("database") or None,
            default_format=values.get("default_format") or "TabSeparated",
            session_id=values.get("session_id") or None,
            session_timeout_s=float(timeout) if timeout and timeout.replace(".", "", 1).isdigit() else None,
            query_id=values.get("query_id") or query_id,
            read_only=read_only,
            compress_response=compress,
        )

    # -- responses ----------------------------------------------------------------------------
    def _common_headers(self, query_id: str) -> None:
        self.send_header("X-ClickHouse-Server-Display-Name", "labelpulse-embedded")
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", self.server.engine.timezone)

    def _send_simple(self, status: int, body: bytes, content_type: str = "text/plain; charset=UTF-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, exc: ClickHouseError, query_id: str) -> None:
        QUERY_ERRORS.labels(str(exc.code)).inc()
        body = exc.render(self.server.engine.version)
        self.send_response(exc.http_status)
        self._common_headers(query_id)
        self.send_header("X-ClickHouse-Exception-Code", str(exc.code))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_result(
        self, request: Request, fmt: str, chunks: Generator[bytes, None, None], summary: dict[str, int]
    ) -> None:
        """Stream `chunks` as the response. The first chunk is produced before any header is
        sent, so errors at the start of a query still get a proper HTTP error status."""
        try:
            self._send_chunks(request, fmt, chunks, summary)
        finally:
            # Cancel the query now, while its connection is open — also when the client went away.
            chunks.close()

    def _send_chunks(
        self, request: Request, fmt: str, chunks: Generator[bytes, None, None], summary: dict[str, int]
    ) -> None:
        try:
            first = next(chunks, b"")
        except ClickHouseError as exc:
            self._send_error(exc, request.query_id)
            return
        encoding = self._response_encoding() if request.compress_response else None
        exception_tag = secrets.token_hex(8)
        self.send_response(200)
        self._common_headers(request.query_id)
        self.send_header("X-ClickHouse-Format", fmt)
        self.send_header("Content-Type", _CONTENT_TYPES.get(fmt, "application/octet-stream"))
        self.send_header("X-ClickHouse-Exception-Tag", exception_tag)
        self.send_header("X-ClickHouse-Summary", json.dumps({k: str(v) for k, v in summary.items()}))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        compressor = _Compressor(encoding)
        try:
            self._write_chunk(compressor.compress(first))
            for chunk in chunks:
                self._write_chunk(compressor.compress(chunk))
        except ClickHouseError as exc:
            # Headers are gone: report in the body, tagged the way clients look for.
            message = exc.render(self.server.engine.version).decode().rstrip("\n")
            block = (
                f"__exception__\r\n{exception_tag}\r\n{message}\n{len(message)} {exception_tag}\r\n__exception__\r\n"
            )
            self._write_chunk(compressor.compress(block.encode()))
        self._write_chunk(compressor.flush())
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _response_encoding(self) -> str | None:
        accepted = [part.split(";")[0].strip().lower() for part in self.headers.get("Accept-Encoding", "").split(",")]
        return next((name for name in accepted if name in _Compressor.SUPPORTED), None)


class _Compressor:
    """Incremental response compression for the encodings clickhouse-connect accepts."""

    SUPPORTED = ("lz4", "zstd", "gzip", "deflate")

    def __init__(self, encoding: str | None) -> None:
        self._header = b""  # lz4 frames begin with a header of their own
        engine: Any
        if encoding == "lz4":
            engine = lz4.frame.LZ4FrameCompressor()
            self._header = engine.begin()
        elif encoding == "zstd":
            engine = zstandard.ZstdCompressor().compressobj()
        elif encoding in ("gzip", "deflate"):
            engine = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
        else:
            engine = None
        self._engine = engine

    def compress(self, data: bytes) -> bytes:
        if self._engine is None:
            return data
        return self._take_header() + self._engine.compress(data)

    def flush(self) -> bytes:
        if self._engine is None:
            return b""
        return self._take_header() + self._engine.flush()

    def _take_header(self) -> bytes:
        header, self._header = self._header, b""
        return header


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not body or encoding in ("", "identity", "none"):
        return body
    try:
        if encoding == "lz4":
            return bytes(lz4.frame.decompress(body))
        if encoding == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        if encoding == "br":
            import brotli

            return bytes(brotli.decompress(body))
    except ImportError:
        pass
    except Exception as exc:
        raise ClickHouseError.ours(CANNOT_DECOMPRESS, f"Cannot decompress request body ({encoding}): {exc}") from exc
    raise ClickHouseError.ours(UNKNOWN_COMPRESSION_METHOD, f"Unknown HTTP compression method: {encoding!r}")


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise ClickHouseError.ours(NOT_IMPLEMENTED, "external data tables are not supported by the embedded server")
        payload = part.get_payload(decode=True)
        if name is not None and isinstance(payload, bytes):
            fields.append((str(name), payload.decode("utf-8")))
    return fields


class ClickHouseHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, settings: ServerSettings) -> None:
        if not settings.allow_remote and not is_loopback(settings.host):
            raise ValueError(
                f"refusing to serve ClickHouse on non-loopback address {settings.host}: anyone on the "
                "network could read and write every table. Pass --allow-remote (and set a password) "
                "if that is what you want."
            )
        self.settings = settings
        self.engine = Engine(settings.data_dir, settings.session_timeout_s)
        super().__init__((settings.host, settings.port), Handler)

    def execute(self, request: Request, handler: Handler) -> None:
        if request.forced.get("readonly") == "1" and (changed := sorted(set(request.settings) - _HARMLESS)):
            raise ClickHouseError.ours(READONLY, f"Cannot modify '{changed[0]}' setting in readonly mode")
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
                previous = _apply(session.connection, settings, request.database, remember=True)
                try:
                    self._dispatch(session.connection, request, handler)
                finally:
                    _restore(session.connection, previous)
            finally:
                session.lock.release()
            return
        connection = self.engine.connect()
        try:
            _apply(connection, settings, request.database, remember=False)
            self._dispatch(connection, request, handler)
        finally:
            connection.close()

    def _dispatch(self, connection: Any, request: Request, handler: Handler) -> None:
        if not request.sql.strip():
            raise ClickHouseError.ours(SYNTAX_ERROR, "Empty query")
        insert = _INSERT_WITH_DATA.match(request.sql)
        if insert and insert.group("format").lower() != b"values":  # VALUES is text: runs as a query
            rows = _insert(connection, insert, request.sql)
            handler.send_result(request, insert.group("format").decode(), _nothing(), {"written_rows": rows})
            return
        try:
            sql = request.sql.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClickHouseError.ours(SYNTAX_ERROR, f"query is not valid UTF-8: {exc}") from exc
        format_clause = _FORMAT_CLAUSE.search(sql)
        fmt = format_clause.group(1) if format_clause else request.default_format
        handler.send_result(request, fmt, _stream(connection, sql, fmt, request.params), {})


_DATABASE = "__current_database__"
# Settings a read-only (readonly=1) user may still send: they change how results travel, not what runs.
_HARMLESS = frozenset(
    {"enable_http_compression", "http_zlib_compression_level", "output_format_json_quote_64bit_integers"}
)


def _apply(
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


def _restore(connection: Any, previous: dict[str, tuple[bool, str]]) -> None:
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


def _insert(connection: Any, match: re.Match[bytes], sql: bytes) -> int:
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


def _nothing() -> Generator[bytes, None, None]:
    yield from ()


def _stream(connection: Any, sql: str, fmt: str, params: dict[str, str]) -> Generator[bytes, None, None]:
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
