"""ClickHouse's HTTP interface: requests decoded into statements, results and errors sent as ClickHouse does."""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from access.policy import User, embedded_settings
from embedded_clickhouse import origins
from embedded_clickhouse.auth import SignedIn
from embedded_clickhouse.codecs import Compressor, decompress
from embedded_clickhouse.errors import ACCESS_DENIED, NOT_IMPLEMENTED, STD_EXCEPTION, ClickHouseError

if TYPE_CHECKING:
    from embedded_clickhouse.server import ClickHouseHTTPServer

log = logging.getLogger("labelpulse.clickhouse")

# What an allowed web page may send and read (CORS).
_CORS_REQUEST_HEADERS = (
    "Authorization, Content-Type, Content-Encoding, X-ClickHouse-User, X-ClickHouse-Key, "
    "X-ClickHouse-Database, X-ClickHouse-Format, X-ClickHouse-Quota"
)
_CORS_RESPONSE_HEADERS = (
    "X-ClickHouse-Query-Id, X-ClickHouse-Format, X-ClickHouse-Timezone, X-ClickHouse-Summary, "
    "X-ClickHouse-Exception-Code, X-ClickHouse-Exception-Tag, X-ClickHouse-Server-Display-Name"
)

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

# Served at GET /metrics on the HTTP port, as ClickHouse's own `prometheus` HTTP handler can be.
QUERIES = Counter("labelpulse_clickhouse_queries", "Statements served, by kind (query or insert)", ["kind"])
QUERY_ERRORS = Counter("labelpulse_clickhouse_query_errors", "Statements refused, by ClickHouse error code", ["code"])
QUERY_SECONDS = Histogram(
    "labelpulse_clickhouse_query_duration_seconds",
    "Time from request to the last byte of the answer, by kind",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

INSERT_WITH_DATA = re.compile(
    rb"^\s*(?P<head>INSERT\s+INTO\s+.+?)\s+FORMAT\s+(?P<format>[A-Za-z][A-Za-z0-9_]*)",
    re.IGNORECASE | re.DOTALL,
)
FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)


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
    # Who asks (None: the server's own admin), and what their role imposes (access.policy),
    # applied after the request's own settings.
    user: User | None = None
    forced: dict[str, str] = field(default_factory=dict)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the second waits for
    # the client's delayed ACK, adding ~40 ms to every request.
    disable_nagle_algorithm = True
    server: ClickHouseHTTPServer

    # -- plumbing ---------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.signed_in: SignedIn = set()  # one handler serves one connection, request after request

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle(read_only=True)

    def do_POST(self) -> None:
        self._handle(read_only=False)

    def do_HEAD(self) -> None:
        self._send_simple(200, b"")

    def do_OPTIONS(self) -> None:
        """A browser's preflight: answered for allowed origins only (see `_cross_site`)."""
        self._read_body()
        if self._cross_site():
            return
        self.send_response(204)
        if self._allowed_origin():
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", _CORS_REQUEST_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")
        self._origin_headers()
        self.send_header("Allow", "GET, POST, HEAD, OPTIONS")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _handle(self, *, read_only: bool) -> None:
        if self._cross_site():
            return
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
            user = self.server.authenticator.authenticate(
                self.headers, url_params, self.client_address[0], self.signed_in
            )
            request.user = user
            if user is not None:
                request.forced = embedded_settings(user, self.server.settings.access, self.server.settings.database)
            if not request.sql.strip() and self.command == "GET" and "query" not in url_params:
                self._send_simple(200, b"Ok.\n")
                return
            kind = "insert" if INSERT_WITH_DATA.match(request.sql) else "query"
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

    def _cross_site(self) -> bool:
        """Refuse a request a web page of another site made the user's browser send (embedded_clickhouse.origins)."""
        why = origins.refusal(
            self.headers.get("Origin"),
            self.headers.get("Sec-Fetch-Site"),
            self.server.own_origins,
            self.server.settings.allowed_origins,
        )
        if why is None:
            return False
        self._read_body()  # keep the connection usable
        self._send_error(
            ClickHouseError.ours(
                ACCESS_DENIED,
                f"cross-site request refused: {why}. A web page may use this ClickHouse only from its own origin "
                "or one listed in LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS",
            ),
            str(uuid.uuid4()),
        )
        return True

    def _allowed_origin(self) -> str | None:
        origin = (self.headers.get("Origin") or "").strip()
        return origin if origin.lower().rstrip("/") in self.server.settings.allowed_origins else None

    def _origin_headers(self) -> None:
        """Let an allowed web page read the answer (CORS); nothing for anyone else."""
        if origin := self._allowed_origin():
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Expose-Headers", _CORS_RESPONSE_HEADERS)
            self.send_header("Vary", "Origin")

    # -- request decoding -------------------------------------------------------------------
    def _decode(self, url_params: dict[str, str], read_only: bool, query_id: str) -> Request:
        body = decompress(self._read_body(), self.headers.get("Content-Encoding", ""))
        content_type = self.headers.get("Content-Type", "")
        form: list[tuple[str, str]] = []
        if content_type.startswith("multipart/form-data"):
            form = parse_multipart(content_type, body)
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
        self._origin_headers()
        self.send_header("X-ClickHouse-Server-Display-Name", "labelpulse-embedded")
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", self.server.engine.timezone)

    def _send_simple(self, status: int, body: bytes, content_type: str = "text/plain; charset=UTF-8") -> None:
        self.send_response(status)
        self._origin_headers()
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
        if exc.retry_after_s is not None:
            self.send_header("Retry-After", str(exc.retry_after_s))
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
        self.send_header("Content-Type", self.server.engine.content_type(fmt))
        self.send_header("X-ClickHouse-Exception-Tag", exception_tag)
        self.send_header("X-ClickHouse-Summary", json.dumps({k: str(v) for k, v in summary.items()}))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        compressor = Compressor(encoding)
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
        return next((name for name in accepted if name in Compressor.SUPPORTED), None)


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
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
