"""Kafka TLS and SASL settings: read from the environment, refused with the variable named when they
cannot work, handed to every client; and a client speaking the wrong protocol to the embedded
broker (plaintext only) fails with a message that says what to check."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from config.env import ConfigError
from kafka_admin.settings import KafkaSecurity, KafkaSettings
from labelpulse.broker import BrokerSettings
from streams.settings import faust_credentials
from tests.support.services import run_cli

SASL = {
    "LABELPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "LABELPULSE_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "LABELPULSE_KAFKA_SASL_USERNAME": "worker",
    "LABELPULSE_KAFKA_SASL_PASSWORD": "s3cret",
}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    security = KafkaSettings.from_env({}).security
    assert security == KafkaSecurity()
    assert security.aiokafka_options() == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(security) is None


def test_sasl_over_tls_reaches_aiokafka_and_faust() -> None:
    kafka = KafkaSettings.from_env({**SASL, "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": "k1:9093"})
    options = kafka.client_options()
    assert options["bootstrap_servers"] == "k1:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("worker", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(kafka.security)
    assert (credentials.protocol.value, credentials.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert "s3cret" not in repr(kafka), "the password never shows in logs"


def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("-")
    security = KafkaSecurity.from_env(
        {
            "LABELPULSE_KAFKA_SECURITY_PROTOCOL": "ssl",
            "LABELPULSE_KAFKA_SSL_CAFILE": str(ca),
            "LABELPULSE_KAFKA_SSL_CERTFILE": str(cert),
            "LABELPULSE_KAFKA_SSL_KEYFILE": str(key),
        }
    )
    assert (security.protocol, security.ca_file, security.cert_file) == ("SSL", str(ca), str(cert))
    with pytest.raises(ssl.SSLError):  # the files are read when a client is made: not PEM here
        security.ssl_context()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABELPULSE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL must be one of PLAINTEXT, SSL"),
        ({**SASL, "LABELPULSE_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SASL_MECHANISM must be one of PLAIN, SCRAM"),
        ({**SASL, "LABELPULSE_KAFKA_SASL_MECHANISM": ""}, "SASL_MECHANISM must be one of"),
        ({**SASL, "LABELPULSE_KAFKA_SASL_USERNAME": ""}, "needs LABELPULSE_KAFKA_SASL_USERNAME and"),
        ({**SASL, "LABELPULSE_KAFKA_SASL_PASSWORD": ""}, "needs LABELPULSE_KAFKA_SASL_USERNAME and"),
        ({"LABELPULSE_KAFKA_SASL_USERNAME": "worker"}, "set it to SASL_SSL"),
        ({"LABELPULSE_KAFKA_SSL_CAFILE": "/etc/hosts"}, "set it to SSL or SASL_SSL"),
        (
            {"LABELPULSE_KAFKA_SECURITY_PROTOCOL": "SSL", "LABELPULSE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "SSL_CAFILE names '/nonexistent/ca.pem', which is not a readable file",
        ),
        (
            {"LABELPULSE_KAFKA_SECURITY_PROTOCOL": "SSL", "LABELPULSE_KAFKA_SSL_CERTFILE": "/etc/hosts"},
            "CERTFILE and LABELPULSE_KAFKA_SSL_KEYFILE go together",
        ),
        ({"LABELPULSE_EVENTS_PARTITIONS": "0"}, "LABELPULSE_EVENTS_PARTITIONS must be ≥ 1"),
        ({"LABELPULSE_TOPIC_REPLICATION": "three"}, "LABELPULSE_TOPIC_REPLICATION must be a whole number"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaSettings.from_env(env)


@pytest.mark.broker
@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"LABELPULSE_KAFKA_SECURITY_PROTOCOL": "SSL"}, "(SSL)"),
        (
            {**SASL, "LABELPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "(SASL_PLAINTEXT with SASL SCRAM-SHA-512 as 'worker')",
        ),
    ],
)
def test_the_wrong_protocol_for_the_broker_fails_clearly(kafka: BrokerSettings, env: dict[str, str], said: str) -> None:
    result = run_cli("topics", env={"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, **env}, timeout=90)
    assert result.returncode == 2, result.stderr
    assert f"could not create or read topics on the Kafka at {kafka.bootstrap_servers} {said}" in result.stderr
    assert "LABELPULSE_KAFKA_SECURITY_PROTOCOL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.broker
def test_topics_are_created_with_the_configured_partitions(kafka: BrokerSettings) -> None:
    env = {
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LABELPULSE_EVENTS_TOPIC": "created-here",
        "LABELPULSE_DEAD_LETTER_TOPIC": "created-here.dead-letter",
        "LABELPULSE_EVENTS_PARTITIONS": "3",
    }
    first = run_cli("topics", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "created-here\t3 partitions",
        "created-here.dead-letter\t3 partitions",
        "created-here.by-annotator\t3 partitions",
        "created-here.backfill\t3 partitions",
    ]
    again = run_cli("topics", env={**env, "LABELPULSE_EVENTS_PARTITIONS": "6"})
    assert again.returncode == 0 and again.stdout == first.stdout, "an existing topic is left as it is"
    assert "has 3 partitions, not LABELPULSE_EVENTS_PARTITIONS=6" in again.stderr
