"""Settings from the environment: sane defaults, and bad values refused naming the variable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.env import ConfigError
from dashboard.settings import DashboardSettings
from kafka_admin.settings import KafkaSettings
from labelpulse.broker import BrokerSettings
from labelpulse.net import free_port
from labelpulse.runtime import RuntimeSettings
from schema.client import ClickHouseSettings
from streams.settings import WorkerSettings
from tests.support.services import run_cli


def test_defaults_match_the_embedded_default() -> None:
    assert ClickHouseSettings.from_env({}) == ClickHouseSettings()
    assert ClickHouseSettings().url == "http://127.0.0.1:8123"
    kafka = KafkaSettings.from_env({})
    assert (kafka.bootstrap_servers, kafka.external) == ("127.0.0.1:9092", False)
    assert BrokerSettings.from_env({}).bootstrap_servers == "127.0.0.1:9092"


def test_kafka_follows_the_embedded_broker_port_unless_told_otherwise() -> None:
    assert KafkaSettings.from_env({"LABELPULSE_BROKER_PORT": "19092"}).bootstrap_servers == "127.0.0.1:19092"
    external = KafkaSettings.from_env({"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9093"})
    assert external.external
    assert external.first_server() == ("k1", 9092)


def test_values_are_read() -> None:
    settings = ClickHouseSettings.from_env(
        {
            "LABELPULSE_CLICKHOUSE_HOST": "ch.internal",
            "LABELPULSE_CLICKHOUSE_PORT": "8443",
            "LABELPULSE_CLICKHOUSE_SECURE": "yes",
            "LABELPULSE_CLICKHOUSE_CLUSTER": "lp_cluster",
        }
    )
    assert settings.url == "https://ch.internal:8443"
    assert settings.cluster == "lp_cluster"


@pytest.mark.parametrize(
    ("factory", "env", "message"),
    [
        (
            ClickHouseSettings.from_env,
            {"LABELPULSE_CLICKHOUSE_PORT": "80a"},
            "LABELPULSE_CLICKHOUSE_PORT must be a whole",
        ),
        (ClickHouseSettings.from_env, {"LABELPULSE_CLICKHOUSE_PORT": "-1"}, "must be ≥ 1 and ≤ 65535, got -1"),
        (
            ClickHouseSettings.from_env,
            {"LABELPULSE_CLICKHOUSE_SECURE": "2"},
            "LABELPULSE_CLICKHOUSE_SECURE must be one",
        ),
        (ClickHouseSettings.from_env, {"LABELPULSE_CLICKHOUSE_DATABASE": "lp`; DROP"}, "plain identifier"),
        (ClickHouseSettings.from_env, {"LABELPULSE_CLICKHOUSE_CA_FILE": "/etc/hosts"}, "SECURE is not: set it"),
        (
            ClickHouseSettings.from_env,
            {"LABELPULSE_CLICKHOUSE_SECURE": "true", "LABELPULSE_CLICKHOUSE_CA_FILE": "/nope.pem"},
            "CLICKHOUSE_CA_FILE names '/nope.pem', which is not a readable file",
        ),
        (ClickHouseSettings.from_env, {"LABELPULSE_CLICKHOUSE_CLUSTER": "a b"}, "LABELPULSE_CLICKHOUSE_CLUSTER must"),
        (KafkaSettings.from_env, {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": "kafka"}, "must be host:port"),
        (KafkaSettings.from_env, {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": "a:1, b"}, "must be host:port"),
        (KafkaSettings.from_env, {"LABELPULSE_EVENTS_TOPIC": "events/v1"}, "LABELPULSE_EVENTS_TOPIC must be"),
        (KafkaSettings.from_env, {"LABELPULSE_DEAD_LETTER_TOPIC": ""}, "LABELPULSE_DEAD_LETTER_TOPIC must be"),
        (KafkaSettings.from_env, {"LABELPULSE_ACTIVITY_TOPIC": "a b"}, "LABELPULSE_ACTIVITY_TOPIC must be"),
        (WorkerSettings.from_env, {"LABELPULSE_WORKER_METRICS_PORT": "70000"}, "WORKER_METRICS_PORT must be ≥ 0"),
        (WorkerSettings.from_env, {"LABELPULSE_IDLE_THRESHOLD_S": "0"}, "LABELPULSE_IDLE_THRESHOLD_S must be ≥ 1"),
        (WorkerSettings.from_env, {"LABELPULSE_IDLE_THRESHOLD_S": "1.5"}, "must be a whole number"),
        (WorkerSettings.from_env, {"LABELPULSE_LATENESS_BOUND_S": "10"}, "LATENESS_BOUND_S must be ≥ 60"),
        (WorkerSettings.from_env, {"LABELPULSE_ACTIVITY_LATE_WINDOW_S": "600"}, "is now LABELPULSE_LATENESS_BOUND_S"),
        (WorkerSettings.from_env, {"LABELPULSE_OPEN_TASK_RETENTION_S": "x"}, "OPEN_TASK_RETENTION_S must be"),
        (WorkerSettings.from_env, {"LABELPULSE_PSEUDONYMIZE_KEY": "too-short"}, "PSEUDONYMIZE_KEY must be at least 16"),
        (WorkerSettings.from_env, {"LABELPULSE_PUBLISH_TIMEOUT_S": "0"}, "LABELPULSE_PUBLISH_TIMEOUT_S must be ≥ 1"),
        (DashboardSettings.from_env, {"LABELPULSE_DASHBOARD_PORT": "0"}, "LABELPULSE_DASHBOARD_PORT must be ≥ 1"),
        (DashboardSettings.from_env, {"LABELPULSE_DASHBOARD_REFRESH_S": "soon"}, "must be a whole number"),
        (DashboardSettings.from_env, {"LABELPULSE_DASHBOARD_CACHE_TTL_S": "-1"}, "CACHE_TTL_S must be ≥ 0"),
        (BrokerSettings.from_env, {"LABELPULSE_BROKER_PORT": "99999"}, "LABELPULSE_BROKER_PORT must be ≥ 1"),
        (RuntimeSettings.from_env, {"LABELPULSE_RAW_EVENTS_TTL_DAYS": "-3"}, "must be ≥ 0"),
        (RuntimeSettings.from_env, {"LABELPULSE_RAW_EVENTS_TTL_DAYS": "ninety"}, "must be a whole number"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    factory: Callable[[dict[str, str]], object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        factory(env)


@pytest.mark.clickhouse  # `up` starts the embedded ClickHouse before it looks for Kafka
def test_up_with_an_external_kafka_that_does_not_answer_fails_clearly(tmp_path: Path) -> None:
    result = run_cli(
        "up",
        env={
            "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "LABELPULSE_CLICKHOUSE_PORT": str(free_port()),
            "LABELPULSE_INGEST_PORT": str(free_port()),
            "LABELPULSE_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 2
    assert "no Kafka answers at 127.0.0.1:" in result.stderr
    assert "unset LABELPULSE_KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_clickhouse_settings_survive_a_trip_through_the_environment() -> None:
    settings = ClickHouseSettings(
        host="ch", port=9000, username="w", password="p", database="lp", secure=True, ca_file=__file__, cluster="c"
    )
    assert ClickHouseSettings.from_env(settings.to_env()) == settings
