"""Password guessing against the embedded ClickHouse is slowed down per user and per client address:
after a few wrong passwords, attempts are answered at once with 429 (AUTHENTICATION_FAILED, Retry-After)
without being checked, until the wait runs out. Connections that already signed in keep working.
Every loop here is bounded and targets loopback only."""

from __future__ import annotations

import base64
import http.client
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema.client import ClickHouseSettings

pytestmark = pytest.mark.clickhouse
USERS = "users:\n" + "".join(
    f"  - {{name: {name}, role: reader, password_env: LP_PW}}\n" for name in ("ana", "bo", "cy")
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClickHouseSettings]:
    """A fresh server per test: what one test's guessing did must not slow the next."""
    (tmp_path / "access.yml").write_text(USERS)
    settings = ClickHouseSettings(port=free_port(), database="default", password="admin-pw")
    process = EmbeddedClickHouseProcess(
        settings,
        tmp_path / "data",
        log_path=tmp_path / "ch.log",
        env={"LABELPULSE_ACCESS_FILE": str(tmp_path / "access.yml"), "LP_PW": "right"},
    )
    process.start()
    yield settings
    process.stop()


def attempt(
    settings: ClickHouseSettings,
    user: str,
    password: str,
    *,
    source: str = "127.0.0.1",
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes, float]:
    """SELECT 1 as `user`: status, headers, body and seconds taken (a new connection unless one is given)."""
    own = connection is None
    connection = connection or http.client.HTTPConnection(
        settings.host, settings.port, timeout=10, source_address=(source, 0)
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    started = time.perf_counter()
    try:
        connection.request(
            "GET", "/?" + urllib.parse.urlencode({"query": "SELECT 1"}), headers={"Authorization": f"Basic {token}"}
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        if own:
            connection.close()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, body, time.perf_counter() - started


def test_guessing_one_users_password_is_slowed_down(server: ClickHouseSettings) -> None:
    for _ in range(5):  # the free failures
        assert attempt(server, "ana", "guess")[0] == 403
    assert attempt(server, "ana", "guess")[0] == 403  # checked: the wait starts now
    status, headers, body, took = attempt(server, "ana", "right")  # even the right password waits
    assert status == 429 and took < 0.5, "refused at once, no thread sleeps"
    assert headers["x-clickhouse-exception-code"] == "516" and int(headers["retry-after"]) >= 1
    assert b"AUTHENTICATION_FAILED" in body and b"too many failed sign-ins" in body
    assert attempt(server, "bo", "right", source="127.0.0.2")[0] == 200, "another user from elsewhere is not slowed"
    time.sleep(int(headers["retry-after"]))
    assert attempt(server, "ana", "right")[0] == 200, "the wait runs out"


def test_guesses_are_checked_at_most_once_per_wait(server: ClickHouseSettings) -> None:
    checked = refused = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:  # ~1,000 guesses a second when nothing slows them down
        status = attempt(server, "ana", "guess")[0]
        checked += status == 403
        refused += status == 429
    # 5 free failures, then waits of 1 s and 2 s: at most two more are checked in 3 s
    assert checked <= 8 and refused > 50, (checked, refused)


def test_one_client_guessing_many_users_is_slowed_down(server: ClickHouseSettings) -> None:
    for number in range(20):  # a different user name each time: the per-user waits never start
        assert attempt(server, f"nobody{number}", "guess", source="127.0.0.3")[0] == 403
    assert attempt(server, "nobody-else", "guess", source="127.0.0.3")[0] == 403
    assert attempt(server, "cy", "right", source="127.0.0.3")[0] == 429
    assert attempt(server, "cy", "right", source="127.0.0.4")[0] == 200, "other clients are not slowed"


def test_a_connection_that_signed_in_keeps_working_while_others_guess(server: ClickHouseSettings) -> None:
    worker = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        assert attempt(server, "ana", "right", connection=worker)[0] == 200
        for _ in range(8):
            attempt(server, "ana", "guess")
        assert attempt(server, "ana", "right")[0] == 429, "a new connection waits"
        assert attempt(server, "ana", "right", connection=worker)[0] == 200, "the signed-in one does not"
        assert attempt(server, "ana", "guess", connection=worker)[0] == 429, "but guesses on it wait too"
    finally:
        worker.close()
