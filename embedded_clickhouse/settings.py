"""What the embedded ClickHouse is told at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from access import policy
from access.policy import Access
from config.env import ConfigError, env_str
from schema.client import ClickHouseSettings

_ORIGIN = re.compile(r"https?://[^/\s?#]+")


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
    # More users than the one above, with roles (access.policy); `database` is what their project
    # restrictions name.
    access: Access = field(default_factory=Access)
    database: str = "labelpulse"
    # Web pages of other sites whose browser requests are served (scheme://host:port, lower case);
    # any other site's are refused (embedded_clickhouse.origins).
    allowed_origins: frozenset[str] = frozenset()

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] = os.environ,
        *,
        data_dir: Path,
        host: str | None = None,
        port: int | None = None,
        allow_remote: bool = False,
    ) -> ServerSettings:
        """The server's settings from LABELPULSE_* variables (LABELPULSE_CLICKHOUSE_*, the access
        file); `host` and `port` override the variables."""
        clickhouse = ClickHouseSettings.from_env(env)
        return cls(
            host=host or clickhouse.host,
            port=port or clickhouse.port,
            data_dir=data_dir,
            user=clickhouse.username,
            password=clickhouse.password,
            allow_remote=allow_remote,
            access=policy.from_env(env),
            database=clickhouse.database,
            allowed_origins=allowed_origins(env_str(env, "CLICKHOUSE_ALLOWED_ORIGINS", "")),
        )


def allowed_origins(listed: str) -> frozenset[str]:
    """LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS: comma-separated origins, e.g. `https://sql.example.com`."""
    origins = [origin.strip().lower().rstrip("/") for origin in listed.split(",") if origin.strip()]
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                "LABELPULSE_CLICKHOUSE_ALLOWED_ORIGINS must list origins as scheme://host[:port] "
                f"(no path, no *), got {origin!r}"
            )
    return frozenset(origins)
