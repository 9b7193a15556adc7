"""Task and annotator state in Faust tables, published to their changelog topics once per batch.

The state lives in a Faust table (memory store, rebuilt from its changelog topic on start and on
a rebalance); the worker writes its changelog itself, once per key per batch and only once the
batch is durable, not on every change as Faust would.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import msgspec

from streams.faust_internals import RecordsByPartition, aiokafka_producer, send_records, table_dict

# Task (or annotator) state changed by a batch, as it was then: key -> (partition, state; None if deleted).
Changes = dict[str, tuple[int, dict[str, Any] | None]]


def encode_key(key: str) -> bytes:
    """A changelog key byte for byte as Faust's json serializer writes it (the tables' key
    serializer): compaction and partitioning compare keys as bytes."""
    return json.dumps(key, separators=(",", ":")).encode()


def encode_state(state: dict[str, Any]) -> bytes:
    """A state as JSON, which the tables' json value serializer reads back on recovery. msgspec
    rather than json.dumps: an annotator's activity state holds up to thousands of entries and
    is written every batch it changes in (~0.1 ms against ~0.8 ms for 2,000 entries)."""
    return msgspec.json.encode(state)


END_MARKER = "\x00labelpulse-end"  # a key no real task or annotator id is (it starts with NUL)


class TableStateStore:
    """State per task (or per annotator) in a Faust table (changelog-backed, so it survives restarts and rebalances).

    Faust writes a key's changelog to the partition of the event being processed; a batch
    spans partitions, so the partition is given here: that of the task's own events, which is
    where its state must live. Changes are published once per key per batch (`take_changes`,
    then `publish` once the batch is durable), not on every event: a task's events often share
    a batch, and each changelog write costs a JSON encoding and a producer message.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._dict: dict[str, Any] | None = None
        self._changed: dict[str, int] = {}  # key -> partition, since the last take_changes
        self._touched: set[int] = set()  # changelog partitions written since the last end markers

    @property
    def _states(self) -> dict[str, Any]:
        # Looked up once: the table's store and its dict live as long as the table (a rebalance clears
        # the dict, never replaces it), and get/put run for every event that derives something.
        if self._dict is None:
            self._dict = table_dict(self.table)
        return self._dict

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self._states.get(key)  # no copy: states are replaced, never modified (StateStore)

    def put(self, key: str, state: dict[str, Any], partition: int) -> None:
        self._states[key] = state
        self._changed[key] = partition

    def delete(self, key: str, partition: int) -> None:
        self._states.pop(key, None)
        self._changed[key] = partition

    def items(self) -> Iterable[tuple[str, Mapping[str, Any] | None]]:
        return self._states.items()

    def take_changes(self) -> Changes:
        """Every key changed since the last call, with its state as it is now (states are
        replaced on change, never modified, so this is a snapshot)."""
        changes = {key: (partition, self._states.get(key)) for key, partition in self._changed.items()}
        self._changed.clear()
        return changes

    async def publish(self, changes: Changes) -> list[Awaitable[Any]]:
        """Send the changes to the changelog (a deleted key as a tombstone); returns futures,
        done when Kafka has them."""
        records: RecordsByPartition = defaultdict(list)
        for key, (partition, state) in changes.items():
            records[partition].append((encode_key(key), None if state is None else encode_state(state)))
        self._touched.update(records)
        return await self._send(records)

    async def end_markers(self) -> list[Awaitable[Any]]:
        """One tombstone of a key no state uses, per changelog partition written since the last
        call. Send them only once everything published is in Kafka, so each is a batch of its own.

        Recovery after a rebalance reads a changelog partition up to the end offset the broker
        reports, and the embedded broker (Tansu 0.6) reports the last record *batch's* base
        offset + 1: every record of a multi-record last batch but its first would be left
        unread, and that task state lost. A single-record last batch makes that offset the true
        end. On Kafka, where the end is right anyway, it is one small record per partition."""
        marker = encode_key(END_MARKER)
        records: RecordsByPartition = {partition: [(marker, None)] for partition in self._touched}
        self._touched.clear()
        return await self._send(records)

    async def _send(self, records: RecordsByPartition) -> list[Awaitable[Any]]:
        return await send_records(
            aiokafka_producer(self.table.app), self.table.changelog_topic.get_topic_name(), records
        )
