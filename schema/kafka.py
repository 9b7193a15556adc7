"""Where events flow in Kafka: the bootstrap servers and the topic names every component shares."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from schema.config import ConfigError, env_int, env_port, env_str

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SERVER = re.compile(r"^[^\s:,]+:\d{1,5}$")


@dataclass(frozen=True)
class KafkaSettings:
    """Defaults match the embedded broker; point bootstrap_servers at any Kafka to use it instead."""

    bootstrap_servers: str = "127.0.0.1:9092"
    events_topic: str = "labelpulse.events"
    dead_letter_topic: str = "labelpulse.events.dead-letter"
    # Workers republish annotation events keyed by annotator here, for per-annotator state (streams.activity).
    activity_topic: str = "labelpulse.events.by-annotator"
    # True when LABELPULSE_KAFKA_BOOTSTRAP_SERVERS was set: an external Kafka, not the embedded broker.
    external: bool = False
    # Partitions of each topic when LabelPulse creates it: the most workers that can share the load.
    partitions: int = 4
    replication: int = 1  # replicas of each topic when LabelPulse creates it (3 on a production cluster)

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
            **topics,
        )

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.events_topic, self.dead_letter_topic, self.activity_topic)

    def first_server(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].strip().rpartition(":")
        return host, int(port)


async def create_topics(settings: KafkaSettings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create LabelPulse's topics where missing; returns every topic's partition count.

    Never left to the broker's auto-creation: that picks the broker's default partition count
    (the embedded broker's is 4), and the workers' table changelogs must have as many partitions
    as the events topic they are keyed like. A topic that exists is left as it is.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in settings.topics if topic not in existing]
        if missing:
            new = [NewTopic(topic, settings.partitions, settings.replication) for topic in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them meanwhile
                await admin.create_topics(new)
        described = await admin.describe_topics(list(settings.topics))
        return {topic["topic"]: len(topic["partitions"]) for topic in described}
    finally:
        await admin.close()
