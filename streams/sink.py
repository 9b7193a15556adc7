"""Writes batches to ClickHouse so that a replay after a crash changes nothing.

Kafka delivers at least once: after a crash the worker re-reads everything since the last
committed offset, and some of it may already be in ClickHouse. Two ClickHouse-side
mechanisms make that harmless:

1. Offset watermarks. Every row carries the partition and offset it came from, and the
   incarnation of the topic (its Kafka id: a recreated topic starts at offset 0 again, see
   streams.incarnations). Before the first write to a partition the sink asks ClickHouse for the
   highest offset of this incarnation already stored per table, and drops replayed rows at or
   below it. Each table is filtered by its own
   watermark, because inserts into different tables (events, dead letters, agreement) are
   each atomic on their own, not together.
2. Insert deduplication tokens. Each insert carries `insert_deduplication_token =
   <table>:<topic>:<topic id>:<partition>:<first>-<last>,…` (the offsets it covers); tables keep a deduplication
   window and `deduplicate_blocks_in_dependent_materialized_views` extends it to the rollups.
   This covers the retry of an insert whose answer was lost (timeout, broken connection),
   when the watermark could not have been read in between.
   Every insert is one block, since the token applies to each block of an insert alike.

Each table is written on its own thread and connection (a lane), so a batch's tables are
inserted in parallel, and a table's inserts run one at a time in the order batches were
submitted: a table's watermark never passes a batch whose rows are not stored. Batches that
queue for a lane while it inserts go in together, as one insert: an insert's cost is mostly
fixed (the materialized views run once per insert), so under load a lane catches up instead of
each small batch waiting behind the ones before it. After an insert fails for good, no later
one runs (a restarted worker writes them after it).

Offsets are committed to Kafka only after a batch's writes are done, so nothing is committed
before it is durable here. While ClickHouse is unreachable a lane waits and retries, which
stops the stream (and its commits) instead of dropping anything.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError
from clickhouse_connect.driver.insert import InsertContext

from schema.client import ClickHouseUnavailable
from schema.rows import WORKER_TABLES, position_columns
from streams.processor import ProcessedBatch

log = logging.getLogger("labelpulse.sink")
_LOW_CARDINALITY = re.compile(r"^LowCardinality\((.*)\)$")
T = TypeVar("T")
IDS_PER_QUERY = 2_000  # event ids looked up at a time: they go in the URL, which ClickHouse limits (1 MiB)
# The time range lets ClickHouse skip the months (partitions) the events are not in.
STORED_IDS_SQL = (
    "SELECT DISTINCT event_id FROM events WHERE occurred_at BETWEEN {since:DateTime64(3, 'UTC')} "
    "AND {until:DateTime64(3, 'UTC')} AND event_id IN {ids:Array(String)}"
)
Rows = list[list[Any]]


@dataclass(frozen=True)
class WriteResult:
    written: dict[str, int]  # rows per table
    replayed_rows_skipped: int
    seconds: float

    @property
    def events_written(self) -> int:
        return self.written.get("events", 0)

    @property
    def dead_letters_written(self) -> int:
        return self.written.get("dead_letters", 0)


@dataclass(frozen=True)
class TableWrite:
    table: str
    written: int
    replayed_rows_skipped: int


@dataclass(frozen=True)
class PendingWrite:
    """A batch's inserts under way, one per table."""

    tables: list[Future[TableWrite]]
    started: float

    def result(self) -> WriteResult:
        """Wait for every table (blocking)."""
        return self._combine([table.result() for table in self.tables])

    async def done(self) -> WriteResult:
        """Wait for every table, in an event loop; raises the first error."""
        return self._combine(await asyncio.gather(*map(asyncio.wrap_future, self.tables)))

    def _combine(self, writes: list[TableWrite]) -> WriteResult:
        return WriteResult(
            {write.table: write.written for write in writes if write.written},
            sum(write.replayed_rows_skipped for write in writes),
            time.perf_counter() - self.started,
        )


class _Lane:
    """One table's connection, insert context and thread."""

    def __init__(self, client_factory: Callable[[], Client], name: str) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self._context: InsertContext | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.queued: list[tuple[Rows, Future[TableWrite]]] = []  # batches' rows waiting for an insert
        self.queue_lock = threading.Lock()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def reconnect(self) -> None:
        """After connection trouble: the server may have restarted."""
        self._client = None
        self._context = None

    def insert_context(self, table: str, rows: list[list[Any]], settings: dict[str, Any]) -> InsertContext:
        """The rows as one block. clickhouse-connect would split them into blocks of ~1-2 MB, and
        every block of an insert carries its token: the engine drops all blocks after the first
        as repeats of it (rows lost, without an error). The context is reused, which also saves
        the DESCRIBE that `client.insert` sends before every insert: the types are the schema's."""
        if self._context is None:
            columns = WORKER_TABLES[table].columns
            self._context = self.client.create_insert_context(
                table,
                column_names=[column.name for column in columns],
                # LowCardinality columns go as their plain type, which ClickHouse converts on insert:
                # clickhouse-connect builds their dictionaries in Python (~0.4 µs an `events` row).
                column_type_names=[_LOW_CARDINALITY.sub(r"\1", column.type) for column in columns],
            )
        context = self._context
        context.settings = {**context.settings, **settings}
        context.req_block_size = max(len(rows), 1)
        context.data = rows
        return context


class ClickHouseSink:
    def __init__(
        self,
        client_factory: Callable[[], Client],
        topic: str,
        *,
        topic_id: str = "",
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client_factory = client_factory
        self.topic = topic
        self.topic_id = topic_id  # the incarnation of `topic` whose rows this sink writes (streams.incarnations)
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._sleep = sleep
        self._watermarks: dict[str, dict[int, int]] = {}  # table -> partition -> last stored offset
        self._lanes: dict[str, _Lane] = {}
        self._failed: BaseException | None = None  # an insert that failed for good: none may follow it

    def _lane(self, table: str) -> _Lane:
        if table not in self._lanes:
            self._lanes[table] = _Lane(self._client_factory, f"sink-{self.topic}-{table}")
        return self._lanes[table]

    async def run(self, table: str, function: Callable[..., T], *args: Any) -> T:
        """Run blocking ClickHouse work on a table's lane, after the inserts submitted to it."""
        return await asyncio.get_running_loop().run_in_executor(self._lane(table).executor, function, *args)

    def forget_partitions(self) -> None:
        """On a rebalance: another worker may have written since; read watermarks afresh."""
        self._watermarks.clear()

    def recent_event_ids(self, partition: int, limit: int) -> list[str]:
        """The newest event_ids stored for a partition, to seed duplicate detection after a restart."""
        lane = self._lane("events")
        rows = self._retrying(
            lane,
            lambda: (
                lane.client.query(
                    "SELECT event_id FROM events WHERE kafka_topic = {topic:String} AND kafka_topic_id = {id:String} "
                    "AND kafka_partition = {p:UInt32} ORDER BY kafka_offset DESC LIMIT {limit:UInt64}",
                    parameters={"topic": self.topic, "id": self.topic_id, "p": partition, "limit": limit},
                ).result_rows
            ),
        )
        return [row[0] for row in reversed(rows)]

    def stored_event_ids(self, event_ids: list[str], since: datetime, until: datetime) -> list[str]:
        """Those of the event ids (of events that occurred from `since` to `until`) stored from any topic."""
        lane = self._lane("events")

        def stored(ids: list[str]) -> list[str]:
            parameters = {"since": since, "until": until, "ids": ids}
            return [row[0] for row in lane.client.query(STORED_IDS_SQL, parameters=parameters).result_rows]

        chunks = (event_ids[first : first + IDS_PER_QUERY] for first in range(0, len(event_ids), IDS_PER_QUERY))
        return [event_id for ids in chunks for event_id in self._retrying(lane, partial(stored, ids))]

    def write(self, batch: ProcessedBatch) -> WriteResult:
        """Make the batch durable: one insert per table, rows already stored skipped (blocking)."""
        return self.submit(batch).result()

    def submit(self, batch: ProcessedBatch) -> PendingWrite:
        """Start the batch's inserts, one per table on its lane, each after the batches submitted before
        (or with those still waiting for the lane: see the module's docstring)."""
        started = time.perf_counter()
        writes: list[Future[TableWrite]] = []
        for table, rows in batch.tables.items():
            lane = self._lane(table)
            write: Future[TableWrite] = Future()
            with lane.queue_lock:
                lane.queued.append((rows, write))
            lane.executor.submit(self._write_queued, table, lane)
            writes.append(write)
        return PendingWrite(writes, started)

    def _write_queued(self, table: str, lane: _Lane) -> None:
        """Every batch queued for the lane, in one insert (none: an earlier call took them along)."""
        with lane.queue_lock:
            queued, lane.queued = lane.queued, []
        if not queued:
            return
        try:
            if self._failed is not None:
                raise SinkStopped(f"not writing to {table}: an earlier insert failed ({self._failed})")
            fresh = [self._fresh(table, rows) for rows, _ in queued]
            rows = fresh[0][0] if len(fresh) == 1 else [row for batch_rows, _, _ in fresh for row in batch_rows]
            if rows:
                ranges: dict[int, tuple[int, int]] = {}
                for _, batch_ranges, _ in fresh:  # batches in offset order: the first's first, the last's last
                    for partition, (first, last) in batch_ranges.items():
                        ranges[partition] = (ranges.get(partition, (first, last))[0], last)
                self._insert(table, rows, ranges)
                watermarks = self._watermarks.get(table)  # None if forgotten meanwhile (a rebalance): read afresh
                if watermarks is not None:
                    watermarks.update({partition: last for partition, (_, last) in ranges.items()})
        except BaseException as exc:
            if not isinstance(exc, SinkStopped):
                self._failed = exc
            for _, write in queued:
                write.set_exception(exc)
            return
        for (batch_rows, _, skipped), (_, write) in zip(fresh, queued, strict=True):
            write.set_result(TableWrite(table, len(batch_rows), skipped))

    def _fresh(self, table: str, table_rows: Rows) -> tuple[Rows, dict[int, tuple[int, int]], int]:
        """Rows not yet stored, and the (first, last) offset they cover per partition."""
        if not table_rows:
            return table_rows, {}, 0
        partitions, offsets = position_columns(table, table_rows)
        # Rows come in offset order per partition: the first offset seen of a partition is its lowest.
        first = dict(zip(reversed(partitions), reversed(offsets), strict=True))
        if all(offset > self.stored_through(table, partition) for partition, offset in first.items()):
            last = dict(zip(partitions, offsets, strict=True))  # nothing replayed: the usual case, no loop a row
            return table_rows, {partition: (first[partition], last[partition]) for partition in first}, 0
        rows: list[list[Any]] = []
        ranges: dict[int, tuple[int, int]] = {}
        skipped = 0
        for row, partition, offset in zip(table_rows, partitions, offsets, strict=True):
            if offset <= self.stored_through(table, partition):
                skipped += 1
                continue
            rows.append(row)
            lowest, _ = ranges.get(partition, (offset, offset))
            ranges[partition] = (lowest, offset)
        return rows, ranges, skipped

    def stored_through(self, table: str, partition: int) -> int:
        """The last offset of `partition` already stored in `table` from this incarnation of the topic (-1: none)."""
        if table not in self._watermarks:
            # Every partition of the topic in one query; a partition with no rows has none (-1).
            lane = self._lane(table)
            rows = self._retrying(
                lane,
                lambda: (
                    lane.client.query(
                        f"SELECT kafka_partition, max(kafka_offset) FROM {table} "
                        "WHERE kafka_topic = {topic:String} AND kafka_topic_id = {id:String} GROUP BY kafka_partition",
                        parameters={"topic": self.topic, "id": self.topic_id},
                    ).result_rows
                ),
            )
            self._watermarks[table] = {int(p): int(offset) for p, offset in rows}
        return self._watermarks[table].get(partition, -1)

    def _insert(self, table: str, rows: list[list[Any]], ranges: dict[int, tuple[int, int]]) -> None:
        covered = ",".join(f"{partition}:{first}-{last}" for partition, (first, last) in sorted(ranges.items()))
        settings = {
            # The same rows from the same offsets always carry the same token: a retry is dropped.
            "insert_deduplication_token": f"{table}:{self.topic}:{self.topic_id}:{covered}",
            "deduplicate_blocks_in_dependent_materialized_views": 1,
        }
        lane = self._lane(table)
        self._retrying(lane, lambda: lane.client.insert(context=lane.insert_context(table, rows, settings)))

    def _retrying(self, lane: _Lane, operation: Callable[[], T]) -> T:
        delay = self._retry_initial_s
        while True:
            try:
                return operation()
            except (ClickHouseError, ClickHouseUnavailable) as exc:
                if isinstance(exc, ClickHouseError) and not _transient(exc):
                    raise
                log.warning("ClickHouse unavailable (%s); retrying in %.1fs", str(exc).splitlines()[0][:200], delay)
                lane.reconnect()
                self._sleep(delay)
                delay = min(delay * 2, self._retry_max_s)


class SinkStopped(RuntimeError):
    """An insert failed for good earlier: writing later batches would put them before it."""


def _transient(exc: ClickHouseError) -> bool:
    """Connection trouble is worth waiting out; a refused statement is not."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DatabaseError) and getattr(exc, "code", None) in (159, 202, 209, 210, 236, 241, 439)
