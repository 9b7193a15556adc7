"""Handing messages to Kafka, and knowing that Kafka has them.

`publish` returns only once Kafka acknowledged every message (acks=all: every in-sync replica has it), or
raises KafkaUnavailable: an answer of ingest means the events are durable, or that they must be sent again.
The producer is idempotent where Kafka supports it, so its own retries never write a message twice; a message
written twice all the same (a request answered 503 whose messages reached Kafka after all, and sent again) is
dropped by the workers as a repeated event_id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import KafkaUnavailable  # the one error for a Kafka that does not answer

log = logging.getLogger("labelpulse.ingest")


# What one produce request may carry: an event at the contract's 1 MiB limit with its key. Brokers take
# about 1 MiB per message by default, so dead letters are cut to DEAD_LETTER_BYTES (the headers say so).
MAX_REQUEST_BYTES = (1 << 20) + (64 << 10)
DEAD_LETTER_BYTES = 900 << 10


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Publisher(Protocol):
    async def publish(self, messages: Sequence[Outgoing]) -> None: ...

    async def close(self) -> None: ...


class KafkaPublisher:
    """One aiokafka producer, started on first use and again after a failed start, so ingest can run (and
    answer 503) while Kafka is away, and recovers when it is back."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float, *, idempotence: bool = True) -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self.idempotence = idempotence
        self._producer: Any = None
        self._starting = asyncio.Lock()

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        from aiokafka.errors import KafkaError

        if not messages:
            return
        producer = await self._started()
        try:
            async with asyncio.timeout(self.timeout_s):
                sent = [
                    await producer.send(m.topic, m.value, key=m.key, headers=list(m.headers) or None) for m in messages
                ]
                await asyncio.gather(*sent)
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailable(
                f"Kafka at {self.kafka.bootstrap_servers} did not acknowledge within {self.timeout_s:g}s: {exc!r}"
            ) from exc

    async def _started(self) -> Any:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.kafka.client_options(),
                    acks="all",
                    enable_idempotence=self.idempotence,
                    linger_ms=2,  # requests arriving together share a produce request
                    max_request_size=MAX_REQUEST_BYTES,
                    request_timeout_ms=int(self.timeout_s * 1000),
                )
                try:
                    async with asyncio.timeout(self.timeout_s):
                        await producer.start()
                except (TimeoutError, KafkaError, OSError) as exc:
                    await producer.stop()
                    raise KafkaUnavailable(
                        f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc!r}; check that it runs "
                        "(LABELPULSE_KAFKA_BOOTSTRAP_SERVERS)"
                    ) from exc
                self._producer = producer
                log.info("producing to Kafka at %s", self.kafka.bootstrap_servers)
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
