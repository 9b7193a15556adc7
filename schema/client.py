"""The one way LabelPulse code reaches ClickHouse: clickhouse-connect over HTTP.

The embedded default and a real ClickHouse server speak the same HTTP interface, so this
factory is all that differs between them — and only by host, port and credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from config.env import ConfigError, env_bool, env_port, env_str

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ClickHouseSettings:
    """Where ClickHouse is. Defaults match the embedded default (`labelpulse clickhouse`)."""

    host: str = "127.0.0.1"
    port: int = 8123
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str = "labelpulse"
    secure: bool = False  # HTTPS, verified against the system's CAs or ca_file
    ca_file: str = ""  # PEM bundle to verify the server with, e.g. a private CA
    # Name of the ClickHouse cluster for the replicated schema; None for a single server.
    cluster: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ClickHouseSettings:
        database = env_str(env, "CLICKHOUSE_DATABASE", cls.database)
        if not _IDENTIFIER.match(database):
            raise ConfigError(
                f"LABELPULSE_CLICKHOUSE_DATABASE must be a plain identifier (letters, digits, _), got {database!r}"
            )
        secure = env_bool(env, "CLICKHOUSE_SECURE", cls.secure)
        ca_file = env_str(env, "CLICKHOUSE_CA_FILE", "").strip()
        if ca_file and not secure:
            raise ConfigError(
                "LABELPULSE_CLICKHOUSE_CA_FILE is set but LABELPULSE_CLICKHOUSE_SECURE is not: set it to true"
            )
        if ca_file and not os.path.isfile(ca_file):
            raise ConfigError(f"LABELPULSE_CLICKHOUSE_CA_FILE names {ca_file!r}, which is not a readable file")
        cluster = env_str(env, "CLICKHOUSE_CLUSTER", "") or None
        if cluster is not None and not _IDENTIFIER.match(cluster):
            raise ConfigError(f"LABELPULSE_CLICKHOUSE_CLUSTER must be a plain identifier, got {cluster!r}")
        return cls(
            host=env_str(env, "CLICKHOUSE_HOST", cls.host),
            port=env_port(env, "CLICKHOUSE_PORT", cls.port),
            username=env_str(env, "CLICKHOUSE_USER", cls.username),
            password=env_str(env, "CLICKHOUSE_PASSWORD", cls.password),
            database=database,
            secure=secure,
            ca_file=ca_file,
            cluster=cluster,
        )

    def to_env(self) -> dict[str, str]:
        """The LABELPULSE_* variables that point a child process at this same ClickHouse."""
        env = {
            "LABELPULSE_CLICKHOUSE_HOST": self.host,
            "LABELPULSE_CLICKHOUSE_PORT": str(self.port),
            "LABELPULSE_CLICKHOUSE_USER": self.username,
            "LABELPULSE_CLICKHOUSE_PASSWORD": self.password,
            "LABELPULSE_CLICKHOUSE_DATABASE": self.database,
            "LABELPULSE_CLICKHOUSE_SECURE": str(self.secure).lower(),
        }
        if self.cluster:
            env["LABELPULSE_CLICKHOUSE_CLUSTER"] = self.cluster
        if self.ca_file:
            env["LABELPULSE_CLICKHOUSE_CA_FILE"] = self.ca_file
        return env

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse did not answer; the message says where we looked and how to start it."""


def connect(settings: ClickHouseSettings, *, database: str | None = None, **options: Any) -> Client:
    """A clickhouse-connect client for `settings` (database overridable, e.g. before it exists).

    Raises ClickHouseUnavailable when nothing answers, instead of a bare connection error.
    """
    tls: dict[str, Any] = {"ca_cert": settings.ca_file} if settings.ca_file else {}
    try:
        return clickhouse_connect.get_client(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            database=settings.database if database is None else database,
            secure=settings.secure,
            **tls,
            # No HTTP sessions: nothing here keeps SET or temporary tables between queries, and
            # sessions serialize a client's queries on the server for nothing.
            **{"autogenerate_session_id": False, **options},
        )
    except OperationalError as exc:
        raise ClickHouseUnavailable(unreachable_message(settings, exc)) from exc
    except DatabaseError as exc:
        if "UNKNOWN_DATABASE" in str(exc):
            raise ClickHouseUnavailable(
                f"ClickHouse at {settings.url} has no database {settings.database!r}. "
                "Create the schema with `labelpulse migrate`."
            ) from exc
        raise


def unreachable_message(settings: ClickHouseSettings, cause: BaseException) -> str:
    return (
        f"cannot reach ClickHouse at {settings.url} ({_first_line(cause)}). "
        "Start the embedded one with `labelpulse clickhouse` (or everything with `labelpulse up`), "
        "or point LABELPULSE_CLICKHOUSE_HOST / LABELPULSE_CLICKHOUSE_PORT at your server."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
