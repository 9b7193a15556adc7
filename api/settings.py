"""The API's settings, built once from LABELPULSE_* variables, and its clients' tokens.

Tokens come from the file LABELPULSE_API_TOKENS_FILE names, or from LABELPULSE_API_TOKENS holding the
same YAML; only their SHA-256 is stored:

    clients:
      - name: ops-grafana
        token_sha256: 5e884898da28…   # printf %s "$TOKEN" | sha256sum
        projects: all                  # or a list of project ids

Without tokens every caller sees every project, which is allowed on loopback only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_int, env_port, env_str
from config.hosts import is_loopback
from config.scope import parse_projects
from schema.client import ClickHouseSettings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ApiClient:
    """Who called: a token's client and the projects it may see (None: every project)."""

    name: str
    projects: tuple[str, ...] | None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ApiSettings:
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    host: str = "127.0.0.1"  # loopback unless deliberately exposed (then tokens are required)
    port: int = 50051
    # By SHA-256 of the token; empty: no tokens, every caller sees every project (loopback only).
    clients: Mapping[str, ApiClient] = field(default_factory=dict)
    tls_cert_file: str = ""  # PEM; with tls_key_file, the server speaks TLS only
    tls_key_file: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9812  # Prometheus /metrics: requests and latencies per method; 0: off

    @property
    def tokens_in_clear_text(self) -> bool:
        """Client tokens would cross the network unencrypted: allowed (behind a TLS-terminating proxy, or on a
        private compose network) but warned about at start-up, as gRPC servers do for insecure ports."""
        return bool(self.clients) and not self.tls_cert_file and not is_loopback(self.host)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ApiSettings:
        host = env_str(env, "API_HOST", cls.host)
        clients = _clients(env)
        if not clients and not is_loopback(host):
            raise ConfigError(
                f"LABELPULSE_API_HOST={host} without client tokens would let anyone on the network read every "
                "project: list clients in LABELPULSE_API_TOKENS_FILE (see deploy/api-tokens.yml) or keep the API "
                "on 127.0.0.1"
            )
        cert, key = env_str(env, "API_TLS_CERT_FILE", "").strip(), env_str(env, "API_TLS_KEY_FILE", "").strip()
        if bool(cert) != bool(key):
            raise ConfigError("set both LABELPULSE_API_TLS_CERT_FILE and LABELPULSE_API_TLS_KEY_FILE, or neither")
        for variable, path in (("API_TLS_CERT_FILE", cert), ("API_TLS_KEY_FILE", key)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"LABELPULSE_{variable} names {path!r}, which is not a readable file")
        return cls(
            clickhouse=ClickHouseSettings.from_env(env),
            host=host,
            port=env_port(env, "API_PORT", cls.port),
            clients=clients,
            tls_cert_file=cert,
            tls_key_file=key,
            metrics_host=env_str(env, "API_METRICS_HOST", cls.metrics_host),
            metrics_port=env_int(env, "API_METRICS_PORT", cls.metrics_port, maximum=65535),
        )


def _clients(env: Mapping[str, str]) -> dict[str, ApiClient]:
    import yaml

    from config.files import read_yaml

    path, inline = env_str(env, "API_TOKENS_FILE", "").strip(), env_str(env, "API_TOKENS", "").strip()
    if path and inline:
        raise ConfigError("set LABELPULSE_API_TOKENS_FILE or LABELPULSE_API_TOKENS, not both")
    if path:
        return load_clients(read_yaml(Path(path), "API tokens file"), path)
    if inline:
        try:
            document = yaml.safe_load(inline)
        except yaml.YAMLError as exc:
            raise ConfigError(f"LABELPULSE_API_TOKENS: not valid YAML ({exc})") from exc
        return load_clients(document, "LABELPULSE_API_TOKENS")
    return {}


def load_clients(document: Any, where: str) -> dict[str, ApiClient]:
    """The clients of a tokens document, by token hash; every mistake names where and the field."""
    if not isinstance(document, dict) or set(document) != {"clients"} or not isinstance(document["clients"], list):
        raise ConfigError(f"{where}: expected `clients:`, a list of {{name, token_sha256, projects}}")
    clients: dict[str, ApiClient] = {}
    names: set[str] = set()
    for index, entry in enumerate(document["clients"]):
        at = f"{where}: clients[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: expected a mapping with name, token_sha256, projects")
        if unknown := set(entry) - {"name", "token_sha256", "projects"}:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        name, digest, projects = entry.get("name"), entry.get("token_sha256"), entry.get("projects")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{at}.name: a name for the client (shown in logs), got {name!r}")
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise ConfigError(
                f'{at}.token_sha256: the token\'s SHA-256 in hex (printf %s "$TOKEN" | sha256sum), got {digest!r}'
            )
        scope = parse_projects(projects, f"{at}.projects")
        if name in names or digest.lower() in clients:
            raise ConfigError(f"{at}: client {name!r} or its token is listed twice")
        names.add(name)
        clients[digest.lower()] = ApiClient(name.strip(), scope)
    return clients
