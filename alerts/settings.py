"""The alert evaluator's settings, built once from LABELPULSE_* variables at its entrypoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alerts.rules import DEFAULT_RULES_DIR
from config.env import env_int, env_str, env_url
from config.hosts import EVALUATOR_METRICS_PORT
from schema.client import ClickHouseSettings


@dataclass(frozen=True)
class EvaluatorSettings:
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    rules_dir: Path = DEFAULT_RULES_DIR
    alertmanager_url: str | None = None  # e.g. http://127.0.0.1:9093; alerts go to its v2 API
    webhook_url: str | None = None  # also POST Alertmanager-style webhook payloads here
    # Firing alerts are re-sent this often (Alertmanager forgets alerts not re-sent before endsAt).
    resend_delay_s: int = 60
    metrics_host: str = "127.0.0.1"
    metrics_port: int = EVALUATOR_METRICS_PORT  # Prometheus /metrics: evaluator metrics and the business gauges; 0: off
    dashboard_url: str = "http://127.0.0.1:8501"  # links from each alert back to the Alerts view
    restore_wait_s: int = 60  # how long to wait at start-up for ClickHouse (it may be starting too)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EvaluatorSettings:
        return cls(
            clickhouse=ClickHouseSettings.from_env(env),
            rules_dir=Path(env_str(env, "ALERTS_RULES_DIR", str(cls.rules_dir))),
            alertmanager_url=env_url(env, "ALERTMANAGER_URL", None),
            webhook_url=env_url(env, "ALERTS_WEBHOOK_URL", None),
            resend_delay_s=env_int(env, "ALERTS_RESEND_DELAY_S", cls.resend_delay_s, minimum=1, maximum=86_400),
            metrics_host=env_str(env, "ALERTS_METRICS_HOST", cls.metrics_host),
            metrics_port=env_int(env, "ALERTS_METRICS_PORT", cls.metrics_port, maximum=65535),
            dashboard_url=env_url(env, "DASHBOARD_URL", cls.dashboard_url) or cls.dashboard_url,
            restore_wait_s=env_int(env, "ALERTS_RESTORE_WAIT_S", cls.restore_wait_s, maximum=3600),
        )
