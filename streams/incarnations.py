"""Which incarnation of a topic the worker reads: Kafka's topic id.

A topic deleted and created again — and every topic of the in-memory embedded broker after it
restarts — starts again at offset 0. By offsets alone its new events would look like replays of
the old ones, and the sink would drop them (its watermarks say those offsets are stored). Kafka
tells the two apart by the topic id (KIP-516, Kafka 2.8+; the embedded broker has them too): every
row a worker writes carries the id of the incarnation it was read from, the sink's watermarks and
insert deduplication tokens are per incarnation, and the worker checks the id before each batch.
When it changed, the worker stops (its supervisor starts it again), so a process never mixes two
incarnations: a fresh start reads the new id and finds nothing of it stored yet.

Only Metadata v10 and later report topic ids, beyond the versions aiokafka speaks: hence the
request below. A broker without topic ids (Kafka before 2.8) gets NO_TOPIC_ID, and a recreated
topic cannot be told apart there.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from io import BytesIO
from typing import Any

from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    AbstractType,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

NO_TOPIC_ID = ""  # a broker without topic ids
_UNKNOWN_TOPIC_OR_PARTITION = 3


class TopicRecreated(RuntimeError):
    """A topic the worker reads is not the incarnation it started with (or is gone): stop, start afresh."""


class _Uuid(AbstractType[str]):
    @classmethod
    def encode(cls, value: str) -> bytes:
        return uuid.UUID(value).bytes if value else bytes(16)

    @classmethod
    def decode(cls, data: BytesIO) -> str:
        raw = data.read(16)
        return NO_TOPIC_ID if raw == bytes(16) else str(uuid.UUID(bytes=raw))


_PARTITIONS = CompactArray(
    ("error_code", Int16),
    ("partition_index", Int32),
    ("leader_id", Int32),
    ("leader_epoch", Int32),
    ("replica_nodes", CompactArray(Int32)),
    ("isr_nodes", CompactArray(Int32)),
    ("offline_replicas", CompactArray(Int32)),
    ("tags", TaggedFields),
)
_TOPICS = CompactArray(
    ("error_code", Int16),
    ("name", CompactString("utf-8")),
    ("topic_id", _Uuid),
    ("is_internal", Boolean),
    ("partitions", _PARTITIONS),
    ("topic_authorized_operations", Int32),
    ("tags", TaggedFields),
)
_BROKERS = CompactArray(
    ("node_id", Int32),
    ("host", CompactString("utf-8")),
    ("port", Int32),
    ("rack", CompactString("utf-8")),
    ("tags", TaggedFields),
)
_WANTED = CompactArray(("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields))


class _MetadataResponseV10(Response):
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", _BROKERS),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        ("topics", _TOPICS),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataResponseV12(Response):  # v11 dropped the cluster's authorized operations
    API_KEY = 3
    API_VERSION = 12
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", _BROKERS),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        ("topics", _TOPICS),
        ("tags", TaggedFields),
    )


class _MetadataRequestV10(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = _MetadataResponseV10
    SCHEMA = Schema(
        ("topics", _WANTED),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _MetadataRequestV12(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 12
    RESPONSE_TYPE = _MetadataResponseV12
    SCHEMA = Schema(
        ("topics", _WANTED),
        ("allow_auto_topic_creation", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdRequest(Request[_MetadataRequestV10 | _MetadataRequestV12]):
    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV10 | _MetadataRequestV12]) -> Any:
        wanted: list[tuple[str, str, dict[int, bytes]]] = [(NO_TOPIC_ID, topic, {}) for topic in self.topics]
        if request_struct_class is _MetadataRequestV10:
            return _MetadataRequestV10(wanted, False, False, False, {})
        return _MetadataRequestV12(wanted, False, False, {})


async def topic_ids(client: Any, topics: list[str]) -> dict[str, str]:
    """Each topic's current id (NO_TOPIC_ID from a broker without them), asked through a started
    aiokafka client; a topic that does not exist raises TopicRecreated."""
    try:
        response = await client.send(client.get_random_node(), _TopicIdRequest(topics))
    except (IncompatibleBrokerVersion, NotImplementedError):  # Metadata v10 came with Kafka 2.8
        return dict.fromkeys(topics, NO_TOPIC_ID)
    found = {name: topic_id for error, name, topic_id, *_ in response.topics if error != _UNKNOWN_TOPIC_OR_PARTITION}
    if missing := [topic for topic in topics if topic not in found]:
        raise TopicRecreated(f"topic {', '.join(missing)} does not exist (deleted, or the broker restarted empty)")
    return {topic: found[topic] for topic in topics}


class Incarnations:
    """The ids of the topics a worker reads: learnt at the first batch of each, checked before every other."""

    def __init__(self, ask: Callable[[list[str]], Awaitable[Mapping[str, str]]]) -> None:
        self._ask = ask
        self.ids: dict[str, str] = {}

    async def check(self, topic: str) -> str:
        """The id of `topic`, the same as at its first batch; TopicRecreated if Kafka's is another now."""
        current = (await self._ask([topic]))[topic]
        known = self.ids.setdefault(topic, current)
        if current != known:
            raise TopicRecreated(
                f"topic {topic} was deleted and created again (id {known or 'none'} -> {current or 'none'}), "
                "or the broker restarted empty: its offsets start again at 0. Stopping, so that a fresh start "
                "stores the new incarnation from its beginning (rows of the old one are kept)"
            )
        return current
