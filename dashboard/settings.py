"""The dashboard's settings, built once from LABELPULSE_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from schema.client import ClickHouseSettings
from schema.config import env_int, env_port, env_str
from schema.kafka import KafkaSettings


@dataclass(frozen=True)
class DashboardSettings:
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)  # for the workers' consumer lag
    consumer_group: str = "labelpulse-worker"
    host: str = "127.0.0.1"  # loopback unless deliberately exposed
    port: int = 8501
    refresh_s: int = 10  # default auto-refresh interval; viewers can change or pause it
    cache_ttl_s: int = 5  # how long one query result is reused across viewers and reruns

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
        )
