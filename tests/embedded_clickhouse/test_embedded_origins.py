"""Which browser requests the embedded ClickHouse refuses as cross-site (pure), and the allow-list setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.env import ConfigError
from embedded_clickhouse.origins import own_origins, refusal
from embedded_clickhouse.settings import ServerSettings

OWN = own_origins("127.0.0.1", 8123)
ALLOWED = frozenset({"https://sql.example.com"})


@pytest.mark.parametrize(
    ("origin", "fetch_site", "refused"),
    [
        (None, None, False),  # not a browser
        (None, "none", False),  # typed into the address bar
        (None, "same-origin", False),
        ("http://127.0.0.1:8123", "same-origin", False),
        ("http://localhost:8123", None, False),
        ("http://[::1]:8123", None, False),
        ("https://sql.example.com", "cross-site", False),  # allowed
        ("HTTPS://SQL.example.com/", "cross-site", False),
        ("https://evil.example", "cross-site", True),
        ("https://evil.example", None, True),
        ("http://127.0.0.1:8501", "same-site", True),  # another port of this machine is another origin
        ("null", "cross-site", True),
        ("", None, True),
        (None, "cross-site", True),  # a navigation from another site sends no Origin with GET
        (None, "same-site", True),
    ],
)
def test_who_is_refused(origin: str | None, fetch_site: str | None, refused: bool) -> None:
    assert (refusal(origin, fetch_site, OWN, ALLOWED) is not None) == refused


def test_a_server_on_another_address_is_its_own_origin_there() -> None:
    assert own_origins("10.0.0.5", 8123) == {"http://10.0.0.5:8123", "https://10.0.0.5:8123"}
    assert "http://[::1]:9000" in own_origins("::1", 9000)


def test_allowed_origins_come_from_the_environment() -> None:
    env = {"LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS": "https://sql.example.com, http://localhost:3000/"}
    settings = ServerSettings.from_env(env, data_dir=Path("x"))
    assert settings.allowed_origins == {"https://sql.example.com", "http://localhost:3000"}
    assert ServerSettings.from_env({}, data_dir=Path("x")).allowed_origins == frozenset()


@pytest.mark.parametrize("listed", ["*", "sql.example.com", "https://sql.example.com/path", "ftp://x"])
def test_allowed_origins_that_are_not_origins_are_refused_naming_the_variable(listed: str) -> None:
    with pytest.raises(ConfigError, match="LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS must list origins"):
        ServerSettings.from_env({"LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS": listed}, data_dir=Path("x"))
