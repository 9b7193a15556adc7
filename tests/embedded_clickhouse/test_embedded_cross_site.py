"""A web page in the user's browser must not drive the embedded ClickHouse on 127.0.0.1: requests whose
`Origin` or `Sec-Fetch-Site` say they come from another site are refused, unless that origin is
allowed (LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS). Clients that send neither (curl, clickhouse-connect)
are not affected. Proven with the headers browsers send, and with a real headless Chromium."""

from __future__ import annotations

import http.server
import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema.client import ClickHouseSettings, connect
from tests.support.browser import chromium
from tests.support.http import http_request

pytestmark = pytest.mark.clickhouse
ALLOWED = "http://localhost:7777"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseSettings]:
    """An embedded ClickHouse that allows one other origin."""
    base = tmp_path_factory.mktemp("cross-site")
    settings = ClickHouseSettings(port=free_port(), database="default")
    process = EmbeddedClickHouseProcess(
        settings, base / "data", log_path=base / "ch.log", env={"LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS": ALLOWED}
    )
    process.start()
    yield settings
    process.stop()


def own_origin(settings: ClickHouseSettings) -> str:
    return f"http://{settings.host}:{settings.port}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.1:8501", "Sec-Fetch-Site": "same-site"},  # another port: another origin
        {"Origin": "https://evil.example"},  # browsers without Fetch Metadata
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Sec-Fetch-Site": "cross-site"},  # a cross-site navigation sends no Origin with GET
    ],
)
def test_requests_from_other_sites_are_refused(server: ClickHouseSettings, headers: dict[str, str]) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    body = f"CREATE TABLE {table} (x UInt8) ENGINE = Memory".encode()
    status, response_headers, text = http_request(
        server, "POST", body=body, headers={"Content-Type": "text/plain", **headers}
    )
    assert status == 403, text
    assert response_headers["x-clickhouse-exception-code"] == "497"
    assert b"cross-site request refused" in text and b"LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS" in text
    assert connect(server).command(f"EXISTS TABLE {table}") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, clickhouse-connect
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "<own>", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost:<port>"},  # the server's own, by another loopback name
    ],
)
def test_requests_from_the_server_itself_or_no_browser_are_served(
    server: ClickHouseSettings, headers: dict[str, str]
) -> None:
    headers = {
        name: value.replace("<own>", own_origin(server)).replace("<port>", str(server.port))
        for name, value in headers.items()
    }
    status, _, text = http_request(server, "POST", body=b"SELECT 1", headers=headers)
    assert (status, text) == (200, b"1\n")


def test_an_allowed_origin_may_ask_and_read_the_answer(server: ClickHouseSettings) -> None:
    headers = {"Origin": ALLOWED, "Sec-Fetch-Site": "same-site"}
    status, response_headers, text = http_request(server, "POST", body=b"SELECT 1", headers=headers)
    assert (status, text) == (200, b"1\n")
    assert response_headers["access-control-allow-origin"] == ALLOWED
    status, response_headers, _ = http_request(
        server,
        "OPTIONS",
        headers={
            **headers,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-clickhouse-user",
        },
    )
    assert status == 204 and response_headers["access-control-allow-origin"] == ALLOWED
    assert "x-clickhouse-user" in response_headers["access-control-allow-headers"].lower()
    status, response_headers, _ = http_request(server, "OPTIONS", headers={"Origin": "https://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in response_headers


def test_the_default_server_allows_no_other_origin(clickhouse: ClickHouseSettings) -> None:
    status, _, _ = http_request(clickhouse, "POST", body=b"SELECT 1", headers={"Origin": ALLOWED})
    assert status == 403


@pytest.fixture
def other_site() -> Iterator[str]:
    """A page on this machine at another origin: any local user's web server (Chromium asks before letting
    pages from the internet reach loopback, but a page served from loopback itself needs no permission)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>cats</body></html>")

        def log_message(self, format: str, *args: object) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://localhost:{site.server_address[1]}/"
    site.shutdown()
    site.server_close()


@pytest.mark.skipif(chromium() is None and not os.environ.get("CI"), reason="chromium is not installed")
def test_a_page_in_a_real_browser_cannot_run_ddl(server: ClickHouseSettings, other_site: str) -> None:
    """What the attack looks like: a page on another site POSTs text/plain SQL (no preflight needed)."""
    from playwright.sync_api import sync_playwright

    table = f"t_{uuid.uuid4().hex[:8]}"
    target = f"{own_origin(server)}/"
    script = f"""async () => {{
        const sql = "CREATE TABLE {table} (x UInt8) ENGINE = Memory";
        await fetch({target!r}, {{method: "POST", mode: "no-cors", body: sql}});
        try {{ await fetch({target!r} + "?query=" + encodeURIComponent("SELECT 1")); return "read"; }}
        catch (e) {{ return "blocked"; }}
    }}"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(other_site)
            assert page.evaluate(script) == "blocked"  # no Access-Control-Allow-Origin for it either
        finally:
            browser.close()
    assert connect(server).command(f"EXISTS TABLE {table}") == 0
