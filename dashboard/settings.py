"""The dashboard's settings, built once from LABELPULSE_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_int, env_port, env_str, env_url
from config.hosts import EVALUATOR_METRICS_PORT
from dashboard.auth import AUTH_MODES, DashboardUser, load_users
from kafka_admin.settings import KafkaSettings
from schema.client import ClickHouseSettings


@dataclass(frozen=True)
class DashboardSettings:
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)  # for the workers' consumer lag
    consumer_group: str = "labelpulse-worker"
    host: str = "127.0.0.1"  # loopback unless deliberately exposed
    port: int = 8501
    refresh_s: int = 10  # default auto-refresh interval; viewers can change or pause it
    cache_ttl_s: int = 5  # how long one query result is reused across viewers and reruns
    auth: str = "none"  # how people sign in: none, password, oidc (dashboard.auth)
    users: Mapping[str, DashboardUser] = field(default_factory=dict)  # who may sign in, and their projects
    # The alert evaluator's /metrics: the rules it watches with, for the Alerts view and the quality targets.
    # By default where `labelpulse alerts` serves it on this machine; empty when it serves none.
    alerts_metrics_url: str = f"http://127.0.0.1:{EVALUATOR_METRICS_PORT}/metrics"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DashboardSettings:
        return cls(
            clickhouse=ClickHouseSettings.from_env(env),
            kafka=KafkaSettings.from_env(env),
            consumer_group=env_str(env, "CONSUMER_GROUP", cls.consumer_group),
            host=env_str(env, "DASHBOARD_HOST", cls.host),
            port=env_port(env, "DASHBOARD_PORT", cls.port),
            refresh_s=env_int(env, "DASHBOARD_REFRESH_S", cls.refresh_s, minimum=0, maximum=3600),
            cache_ttl_s=env_int(env, "DASHBOARD_CACHE_TTL_S", cls.cache_ttl_s, minimum=0, maximum=3600),
            alerts_metrics_url=_alerts_metrics_url(env),
            **_sign_in(env),
        )


def _sign_in(env: Mapping[str, str]) -> dict[str, Any]:
    auth = env_str(env, "DASHBOARD_AUTH", "none").strip().lower()
    if auth not in AUTH_MODES:
        raise ConfigError(f"LABELPULSE_DASHBOARD_AUTH must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    path = env_str(env, "DASHBOARD_USERS_FILE", "").strip()
    if auth != "none" and not path:
        raise ConfigError(
            f"LABELPULSE_DASHBOARD_AUTH={auth} needs LABELPULSE_DASHBOARD_USERS_FILE "
            "(who may sign in, and their projects)"
        )
    if auth == "none" and path:
        raise ConfigError(
            "LABELPULSE_DASHBOARD_USERS_FILE is set but LABELPULSE_DASHBOARD_AUTH is none: set it to password or oidc"
        )
    return {"auth": auth, "users": load_users(Path(path), auth) if path else {}}


def _alerts_metrics_url(env: Mapping[str, str]) -> str:
    port = env_int(env, "ALERTS_METRICS_PORT", EVALUATOR_METRICS_PORT, maximum=65535)  # the evaluator's own setting
    return env_url(env, "ALERTS_METRICS_URL", None) or (f"http://127.0.0.1:{port}/metrics" if port else "")
