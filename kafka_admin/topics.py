"""Making LabelPulse's topics on any Kafka: the workers, the simulator, `up` and `labelpulse topics` do it."""

from __future__ import annotations

import asyncio
import contextlib

from kafka_admin.settings import KafkaSettings


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached or refused us; the message names the servers and security settings."""


async def create_topics(settings: KafkaSettings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create LabelPulse's topics where missing; returns every topic's partition count.

    Never left to the broker's auto-creation: that picks the broker's default partition count
    (the embedded broker's is 4), and the workers' table changelogs must have as many partitions
    as the events topic they are keyed like. A topic that exists is left as it is.
    """
    from aiokafka.errors import KafkaError

    try:
        return await asyncio.wait_for(_create_topics(settings, timeout_s), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        security = settings.security
        how = security.protocol + (
            f" with SASL {security.sasl_mechanism} as {security.username!r}" if security.sasl_mechanism else ""
        )
        raise KafkaUnavailable(
            f"could not create or read topics on the Kafka at {settings.bootstrap_servers} ({how}): "
            f"{exc!r}. Check that it runs and speaks {security.protocol}, and the credentials "
            "(LABELPULSE_KAFKA_BOOTSTRAP_SERVERS, LABELPULSE_KAFKA_SECURITY_PROTOCOL, LABELPULSE_KAFKA_SASL_*, "
            "LABELPULSE_KAFKA_SSL_*)"
        ) from exc


async def _create_topics(settings: KafkaSettings, timeout_s: float) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**settings.client_options(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
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
