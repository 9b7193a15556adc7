"""The ingest service's settings, built once from LABELPULSE_* variables at its entrypoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config.env import ConfigError, env_bool, env_int, env_port, env_str
from config.hosts import is_loopback
from kafka_admin.settings import KafkaSettings
from schema.events import ContractLimits

# Label Studio sends the secret verbatim in a header its webhook is configured with (it signs nothing).
SECRET_HEADER = "X-LabelPulse-Secret"
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class IngestSettings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = 8090
    allow_remote: bool = False
    # A contract event is a few hundred bytes: 16 MiB is a batch of tens of thousands.
    max_body_bytes: int = 16 << 20
    # Label Studio sends up to 5,000 tasks, each with its data and the project, in one request.
    max_webhook_bytes: int = 64 << 20
    # How long a request waits for Kafka to acknowledge before it is answered 503. It only decides when to
    # answer 503: Label Studio waits its WEBHOOK_TIMEOUT (1 s by default) and never retries, whatever we answer.
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    # Kafka's idempotent producer (no duplicates from its own retries). The embedded broker (Tansu 0.6, memory
    # storage) cannot serve it; without it a retried send may store a message twice, which the workers drop
    # as a repeated event_id.
    idempotence: bool = True
    label_studio_secret: str = field(default="", repr=False)
    labelbox_secret: str = field(default="", repr=False)  # the webhook's secret: Labelbox signs with it
    cvat_secret: str = field(default="", repr=False)  # the webhook's secret: CVAT signs with it
    limits: ContractLimits = field(default_factory=ContractLimits)  # the workers' own (same variables)

    def __post_init__(self) -> None:
        if not self.allow_remote and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve ingest on non-loopback address {self.host}; put it behind your proxy, or set "
                "LABELPULSE_INGEST_ALLOW_REMOTE=true if that is intended"
            )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> IngestSettings:
        kafka = KafkaSettings.from_env(env)
        return cls(
            kafka=kafka,
            host=env_str(env, "INGEST_HOST", cls.host),
            port=env_port(env, "INGEST_PORT", cls.port),
            allow_remote=env_bool(env, "INGEST_ALLOW_REMOTE", cls.allow_remote),
            max_body_bytes=env_int(env, "INGEST_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            max_webhook_bytes=env_int(env, "INGEST_MAX_WEBHOOK_BYTES", cls.max_webhook_bytes, minimum=1024),
            publish_timeout_s=env_int(
                env, "INGEST_PUBLISH_TIMEOUT_MS", round(cls.publish_timeout_s * 1000), minimum=100, maximum=120_000
            )
            / 1000,
            retry_after_s=env_int(env, "INGEST_RETRY_AFTER_S", cls.retry_after_s, minimum=1, maximum=3600),
            idempotence=env_bool(env, "INGEST_IDEMPOTENCE", kafka.external),
            label_studio_secret=_secret(env, "LABEL_STUDIO_SECRET"),
            labelbox_secret=_secret(env, "LABELBOX_SECRET"),
            cvat_secret=_secret(env, "CVAT_SECRET"),
            limits=ContractLimits.from_env(env),
        )


def _secret(env: Mapping[str, str], name: str) -> str:
    """A shared secret from LABELPULSE_<name>, or from the file LABELPULSE_<name>_FILE names (Docker secrets)."""
    value = env_str(env, name, "")
    if path := env_str(env, f"{name}_FILE", ""):
        if value:
            raise ConfigError(f"set LABELPULSE_{name} or LABELPULSE_{name}_FILE, not both")
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"LABELPULSE_{name}_FILE: cannot read {path} ({exc.strerror})") from exc
    if value and len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"LABELPULSE_{name} must be at least {MIN_SECRET_LENGTH} characters (a random secret, e.g. "
            "`openssl rand -hex 32`)"
        )
    return value
