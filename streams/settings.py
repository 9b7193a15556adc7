"""The worker's settings, built once from LABELPULSE_* variables at its entrypoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.env import ConfigError, env_int, env_str
from kafka_admin.settings import KafkaSecurity, KafkaSettings
from schema.client import ClickHouseSettings
from schema.events import ContractLimits
from streams.privacy import Pseudonymizer


@dataclass(frozen=True)
class WorkerSettings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    consumer_group: str = "labelpulse-worker"
    # One Kafka fetch at most: the batch the sink writes at once. Catching up, 50,000 moved ~10 % more
    # events a second than 25,000 (fewer inserts and changelog writes; 100,000 no more: bench/RESULTS.md).
    batch_max_events: int = 50_000
    # How long the broker may hold a fetch while it has no data (streams.faust_internals.ConsumerThread).
    fetch_max_wait_ms: int = 300
    dedup_window: int = 100_000  # event_ids remembered per partition to drop producer retries
    commit_interval_s: float = 2.8  # how often acknowledged offsets are committed to Kafka
    # How long the group waits for a worker that stopped answering before its partitions move.
    session_timeout_s: float = 30.0
    # How long Kafka may take to accept what a batch produced before the worker gives up and exits
    # (the unacknowledged batch is replayed by the next worker, harmlessly).
    publish_timeout_s: float = 60.0
    # A gap between an annotator's events at least this long is idle, not active time (PRODUCT.md).
    idle_threshold_s: int = 100
    # How far behind its partition's newest event an event may arrive and still change derived metrics
    # (handle times, gold, reviews, agreement, active time); later ones are stored and counted only.
    lateness_bound_s: int = 3600
    # A task that never completes (some tools send no task_completed) keeps its state this long after
    # its last event (event time); then its state is released and later events start it afresh.
    open_task_retention_s: int = 7 * 86_400
    limits: ContractLimits = field(default_factory=ContractLimits)
    # Set: annotator and reviewer ids are replaced by a keyed hash at ingest (streams.privacy).
    pseudonymize_key: str = field(default="", repr=False)
    state_dir: Path = Path(".labelpulse/worker")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9810  # Prometheus /metrics of this worker; 0 turns it off

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerSettings:
        if "LABELPULSE_ACTIVITY_LATE_WINDOW_S" in env:
            raise ConfigError(
                "LABELPULSE_ACTIVITY_LATE_WINDOW_S is now LABELPULSE_LATENESS_BOUND_S: one bound, on event time, for "
                "every derived metric (rename it; the default is 3600)"
            )
        return cls(
            kafka=KafkaSettings.from_env(env),
            clickhouse=ClickHouseSettings.from_env(env),
            consumer_group=env_str(env, "CONSUMER_GROUP", cls.consumer_group),
            batch_max_events=env_int(env, "BATCH_MAX_EVENTS", cls.batch_max_events, minimum=1, maximum=1_000_000),
            fetch_max_wait_ms=env_int(env, "FETCH_MAX_WAIT_MS", cls.fetch_max_wait_ms, minimum=10, maximum=60_000),
            dedup_window=env_int(env, "DEDUP_WINDOW", cls.dedup_window, minimum=0, maximum=10_000_000),
            commit_interval_s=env_int(env, "COMMIT_INTERVAL_MS", 2800, minimum=10, maximum=3_600_000) / 1000,
            session_timeout_s=env_int(env, "SESSION_TIMEOUT_MS", 30_000, minimum=1000, maximum=600_000) / 1000,
            publish_timeout_s=float(env_int(env, "PUBLISH_TIMEOUT_S", 60, minimum=1, maximum=3600)),
            idle_threshold_s=env_int(env, "IDLE_THRESHOLD_S", cls.idle_threshold_s, minimum=1, maximum=86_400),
            lateness_bound_s=env_int(env, "LATENESS_BOUND_S", cls.lateness_bound_s, minimum=60, maximum=30 * 86_400),
            open_task_retention_s=env_int(
                env, "OPEN_TASK_RETENTION_S", cls.open_task_retention_s, minimum=3600, maximum=366 * 86_400
            ),
            limits=ContractLimits.from_env(env),
            pseudonymize_key=_pseudonymize_key(env),
            state_dir=Path(env_str(env, "DATA_DIR", ".labelpulse")) / "worker",
            metrics_host=env_str(env, "WORKER_METRICS_HOST", cls.metrics_host),
            metrics_port=env_int(env, "WORKER_METRICS_PORT", cls.metrics_port, maximum=65535),
        )


def _pseudonymize_key(env: Mapping[str, str]) -> str:
    key = env_str(env, "PSEUDONYMIZE_KEY", "")
    if key and len(key) < Pseudonymizer.MIN_KEY_LENGTH:
        raise ConfigError(
            f"LABELPULSE_PSEUDONYMIZE_KEY must be at least {Pseudonymizer.MIN_KEY_LENGTH} characters "
            "(a random secret, e.g. `openssl rand -hex 32`); keep it: a new key gives everyone new pseudonyms"
        )
    return key


def faust_credentials(security: KafkaSecurity) -> Any:
    """The Kafka security settings as Faust's `broker_credentials` (None: plaintext)."""
    import faust

    if security.sasl_mechanism:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=security.ssl_context(),
            mechanism=security.sasl_mechanism,
        )
    if security.tls:
        return faust.SSLCredentials(security.ssl_context())
    return None
