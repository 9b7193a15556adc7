"""Where events flow in Kafka: the bootstrap servers, how to connect, and the topic names every component shares."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.env import ConfigError, env_int, env_port, env_str

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SERVER = re.compile(r"^[^\s:,]+:\d{1,5}$")


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How every LabelPulse client connects to Kafka: TLS and/or SASL (PLAIN, SCRAM), as Kafka's
    own clients name them (security.protocol, sasl.mechanism)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""  # PEM bundle to verify the brokers with (default: the system's)
    cert_file: str = ""  # client certificate, for brokers that require TLS client authentication
    key_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        protocol = env_str(env, "KAFKA_SECURITY_PROTOCOL", cls.protocol).strip().upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(
                f"LABELPULSE_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
            )
        mechanism = env_str(env, "KAFKA_SASL_MECHANISM", "").strip().upper()
        username, password = env_str(env, "KAFKA_SASL_USERNAME", ""), env_str(env, "KAFKA_SASL_PASSWORD", "")
        sasl = protocol.startswith("SASL_")
        if sasl:
            if mechanism not in MECHANISMS:
                raise ConfigError(
                    f"LABELPULSE_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)} with "
                    f"LABELPULSE_KAFKA_SECURITY_PROTOCOL={protocol}, got {mechanism!r}"
                )
            if not username or not password:
                raise ConfigError(
                    f"LABELPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs LABELPULSE_KAFKA_SASL_USERNAME and "
                    "LABELPULSE_KAFKA_SASL_PASSWORD"
                )
        elif mechanism or username or password:
            raise ConfigError(
                "LABELPULSE_KAFKA_SASL_* is set but LABELPULSE_KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}: set it to SASL_SSL (or SASL_PLAINTEXT) to use SASL"
            )
        files = {
            name: env_str(env, f"KAFKA_SSL_{name.upper()}", "").strip() for name in ("cafile", "certfile", "keyfile")
        }
        for name, path in files.items():
            if path and not protocol.endswith("SSL"):
                raise ConfigError(
                    f"LABELPULSE_KAFKA_SSL_{name.upper()} is set but LABELPULSE_KAFKA_SECURITY_PROTOCOL is {protocol}: "
                    "set it to SSL or SASL_SSL to use TLS"
                )
            if path and not os.path.isfile(path):
                raise ConfigError(f"LABELPULSE_KAFKA_SSL_{name.upper()} names {path!r}, which is not a readable file")
        if bool(files["certfile"]) != bool(files["keyfile"]):
            raise ConfigError(
                "LABELPULSE_KAFKA_SSL_CERTFILE and LABELPULSE_KAFKA_SSL_KEYFILE go together: set both or neither"
            )
        return cls(
            protocol,
            mechanism if sasl else "",
            username,
            password,
            files["cafile"],
            files["certfile"],
            files["keyfile"],
        )

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            options.update(
                sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username, sasl_plain_password=self.password
            )
        return options


@dataclass(frozen=True)
class KafkaSettings:
    """Defaults match the embedded broker; point bootstrap_servers at any Kafka to use it instead."""

    bootstrap_servers: str = "127.0.0.1:9092"
    events_topic: str = "labelpulse.events"
    dead_letter_topic: str = "labelpulse.events.dead-letter"
    # Workers republish annotation events keyed by annotator here, for per-annotator state (streams.activity).
    activity_topic: str = "labelpulse.events.by-annotator"
    # `labelpulse import` writes history here, keyed like the events topic: the workers read it with its own
    # event-time watermark and no age limit, so old history is kept whole and never delays live events.
    backfill_topic: str = "labelpulse.events.backfill"
    # True when LABELPULSE_KAFKA_BOOTSTRAP_SERVERS was set: an external Kafka, not the embedded broker.
    external: bool = False
    # Partitions of each topic when LabelPulse creates it: the most workers that can share the load.
    partitions: int = 4
    replication: int = 1  # replicas of each topic when LabelPulse creates it (3 on a production cluster)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> KafkaSettings:
        servers = env_str(env, "KAFKA_BOOTSTRAP_SERVERS", "")
        for server in filter(None, servers.split(",")):
            if not _SERVER.match(server.strip()):
                raise ConfigError(f"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS must be host:port[,host:port…], got {servers!r}")
        events_topic = env_str(env, "EVENTS_TOPIC", cls.events_topic)
        topics = {
            "events_topic": events_topic,
            "dead_letter_topic": env_str(env, "DEAD_LETTER_TOPIC", cls.dead_letter_topic),
            "activity_topic": env_str(env, "ACTIVITY_TOPIC", f"{events_topic}.by-annotator"),
            "backfill_topic": env_str(env, "BACKFILL_TOPIC", f"{events_topic}.backfill"),
        }
        for name, topic in topics.items():
            if not _TOPIC.match(topic):
                raise ConfigError(
                    f"LABELPULSE_{name.upper()} must be 1-249 characters of letters, digits, '.', '_', '-', "
                    f"got {topic!r}"
                )
        # Unset: the embedded broker, wherever LABELPULSE_BROKER_HOST/PORT put it.
        embedded = f"{env_str(env, 'BROKER_HOST', '127.0.0.1')}:{env_port(env, 'BROKER_PORT', 9092)}"
        return cls(
            bootstrap_servers=servers.strip() or embedded,
            external=bool(servers.strip()),
            partitions=env_int(env, "EVENTS_PARTITIONS", cls.partitions, minimum=1, maximum=1024),
            replication=env_int(env, "TOPIC_REPLICATION", cls.replication, minimum=1, maximum=16),
            security=KafkaSecurity.from_env(env),
            **topics,
        )

    def client_options(self) -> dict[str, Any]:
        """Connection options for any aiokafka client (producer, consumer, admin)."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security.aiokafka_options()}

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.events_topic, self.dead_letter_topic, self.activity_topic, self.backfill_topic)

    def first_server(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].strip().rpartition(":")
        return host, int(port)
