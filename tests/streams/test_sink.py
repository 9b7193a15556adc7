"""The ClickHouse sink: durable batches, and replays after a crash that change nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from schema import migrations
from schema.client import ClickHouseSettings, ClickHouseUnavailable, connect
from streams.processor import DictStateStore, Message, ProcessedBatch, Processor
from streams.sink import ClickHouseSink, SinkStopped

pytestmark = pytest.mark.clickhouse

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def messages(first: int, last: int, partition: int = 0, bad_every: int = 0, **extra: str) -> list[Message]:
    out = []
    for offset in range(first, last + 1):
        value = json.dumps(
            {
                "event_id": f"p{partition}-o{offset}",
                "event_type": "annotation_submitted",
                "schema_version": 1,
                "occurred_at": "2026-11-23T11:00:00Z",
                "project_id": "p",
                "task_id": f"t{offset}",
                "annotator_id": "a",
                "label": "cat",
                "duration_ms": 1000,
                **extra,
            }
        ).encode()
        if bad_every and offset % bad_every == 0:
            value = b"not json"
        out.append(Message("events", partition, offset, b"k", value))
    return out


def batch_of(msgs: list[Message]) -> ProcessedBatch:
    return Processor(tasks=DictStateStore(), dedup_window=0).process(msgs, now=NOW)


def totals(client: Client) -> tuple[int, int, int]:
    return client.query(
        "SELECT (SELECT count() FROM events), (SELECT count() FROM dead_letters), "
        "(SELECT sum(annotations_submitted) FROM project_throughput_minute)"
    ).result_rows[0]


@pytest.fixture
def sink(clickhouse: ClickHouseSettings, migrated: Client) -> ClickHouseSink:
    return ClickHouseSink(lambda: connect(clickhouse), "events")


def test_first_write_to_an_empty_partition_keeps_offset_zero(sink: ClickHouseSink, migrated: Client) -> None:
    result = sink.write(batch_of(messages(0, 9)))
    assert result.events_written == 10
    assert migrated.command("SELECT min(kafka_offset) FROM events") == 0


def test_a_batch_larger_than_one_insert_block_is_stored_whole(sink: ClickHouseSink, migrated: Client) -> None:
    # clickhouse-connect splits an insert into blocks of ~1-2 MB; each block carried the batch's
    # deduplication token, so the engine dropped every block after the first as a repeat.
    # 4 kB rows (a tool's extra fields) make blocks of 512 rows.
    batch = batch_of(messages(0, 2_999, note="x" * 4096))
    assert sink.write(batch).events_written == 3_000
    assert totals(migrated) == (3_000, 0, 3_000)


def test_replay_after_a_restart_writes_nothing(clickhouse: ClickHouseSettings, migrated: Client) -> None:
    ClickHouseSink(lambda: connect(clickhouse), "events").write(batch_of(messages(0, 99, bad_every=10)))
    before = totals(migrated)
    restarted = ClickHouseSink(lambda: connect(clickhouse), "events")
    result = restarted.write(batch_of(messages(0, 99, bad_every=10)))
    # 90 events and their 90 handle times, 10 dead letters: all already stored
    assert (result.events_written, result.dead_letters_written, result.replayed_rows_skipped) == (0, 0, 190)
    assert totals(migrated) == before == (90, 10, 90)


def test_replay_with_different_batch_boundaries_writes_only_what_is_new(
    clickhouse: ClickHouseSettings, migrated: Client
) -> None:
    ClickHouseSink(lambda: connect(clickhouse), "events").write(batch_of(messages(0, 49)))
    restarted = ClickHouseSink(lambda: connect(clickhouse), "events")
    result = restarted.write(batch_of(messages(30, 79)))
    assert (result.events_written, result.replayed_rows_skipped) == (30, 40)  # 20 events + their handle times
    assert totals(migrated) == (80, 0, 80)


def test_each_table_is_replayed_by_its_own_watermark(clickhouse: ClickHouseSettings, migrated: Client) -> None:
    # A crash after the events insert but before the dead-letters insert of the same batch:
    batch = batch_of(messages(0, 19, bad_every=5))
    del batch.tables["dead_letters"]
    ClickHouseSink(lambda: connect(clickhouse), "events").write(batch)
    assert totals(migrated) == (16, 0, 16)
    ClickHouseSink(lambda: connect(clickhouse), "events").write(batch_of(messages(0, 19, bad_every=5)))
    assert totals(migrated) == (16, 4, 16)


def test_a_new_incarnation_of_the_topic_is_stored_from_offset_zero(
    clickhouse: ClickHouseSettings, migrated: Client
) -> None:
    # The topic was deleted and created again (or the in-memory broker restarted): offsets start over.
    old = ClickHouseSink(lambda: connect(clickhouse), "events", topic_id="0000-old")
    old.write(Processor(tasks=DictStateStore()).process(messages(0, 99), now=NOW, topic_id="0000-old"))
    new = ClickHouseSink(lambda: connect(clickhouse), "events", topic_id="0000-new")
    recreated = [Message("events", 0, m.offset, m.key, m.value.replace(b"p0-o", b"new-")) for m in messages(0, 49)]
    result = new.write(Processor(tasks=DictStateStore()).process(recreated, now=NOW, topic_id="0000-new"))
    assert (result.events_written, result.replayed_rows_skipped) == (50, 0)
    assert totals(migrated) == (150, 0, 150)
    by_incarnation = dict(migrated.query("SELECT kafka_topic_id, count() FROM events GROUP BY 1").result_rows)
    assert by_incarnation == {"0000-old": 100, "0000-new": 50}


def test_partitions_are_independent(sink: ClickHouseSink, migrated: Client) -> None:
    sink.write(batch_of(messages(0, 9, partition=0) + messages(0, 4, partition=1)))
    sink.write(batch_of(messages(5, 9, partition=1)))
    assert totals(migrated) == (20, 0, 20)


def test_waits_for_clickhouse_instead_of_dropping(clickhouse: ClickHouseSettings, migrated: Client) -> None:
    attempts: Counter[str] = Counter()
    pauses: list[float] = []

    def flaky_connect() -> Client:
        lane = threading.current_thread().name  # each table's lane connects (and waits) on its own
        attempts[lane] += 1
        if attempts[lane] <= 3:
            raise ClickHouseUnavailable("cannot reach ClickHouse (test)")
        return connect(clickhouse)

    sink = ClickHouseSink(flaky_connect, "events", retry_initial_s=0.1, sleep=pauses.append)
    batch = batch_of(messages(0, 4))
    assert sink.write(batch).events_written == 5
    assert sorted(pauses) == sorted([0.1, 0.2, 0.4] * len(batch.tables))  # per lane: backing off
    assert totals(migrated) == (5, 0, 5)


def test_batches_queued_behind_an_insert_go_in_together(clickhouse: ClickHouseSettings, migrated: Client) -> None:
    # An insert costs about the same however few its rows (the materialized views run once per insert):
    # small batches each waiting for their own insert would queue ever longer under load.
    inserts: Counter[str] = Counter()

    def counting_connect() -> Client:
        client = connect(clickhouse)
        insert = client.insert

        def counted(*args: Any, **kwargs: Any) -> Any:
            inserts[kwargs["context"].table.strip("`")] += 1
            return insert(*args, **kwargs)

        client.insert = counted  # type: ignore[method-assign]
        return client

    sink = ClickHouseSink(counting_connect, "events")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # the lane at work
        holding.set()
        release.wait()

    busy = threading.Thread(target=asyncio.run, args=(sink.run("events", hold),))
    busy.start()
    assert holding.wait(30)  # the batches below queue behind it, not before it
    writes = [sink.submit(batch_of(messages(first, first + 9, bad_every=5))) for first in (0, 10, 20)]
    release.set()
    busy.join()
    results = [write.result() for write in writes]
    assert [(result.events_written, result.dead_letters_written) for result in results] == [(8, 2), (8, 2), (8, 2)]
    assert inserts["events"] == 1  # (the other lanes may have had batches queue too)
    assert totals(migrated) == (24, 6, 24)
    restarted = ClickHouseSink(lambda: connect(clickhouse), "events")
    assert restarted.write(batch_of(messages(0, 29, bad_every=5))).replayed_rows_skipped == 54  # watermarks moved


def test_a_refused_statement_is_not_retried(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    sink = ClickHouseSink(lambda: connect(clickhouse), "events", sleep=lambda _: pytest.fail("should not retry"))
    with pytest.raises(DatabaseError, match=r"UNKNOWN_TABLE"):
        sink.write(batch_of(messages(0, 1)))  # no migrations ran: no events table


def test_no_batch_is_written_after_one_that_failed(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    # Tables are written on their own threads, each table's batches in order; a later batch
    # stored after a failed one would move the watermark past rows that never arrived.
    sink = ClickHouseSink(lambda: connect(clickhouse), "events")
    with pytest.raises(DatabaseError, match=r"UNKNOWN_TABLE"):
        sink.write(batch_of(messages(0, 1)))
    migrations.migrate(ch_client)  # the table is there now, yet the sink does not go on past the gap
    with pytest.raises(SinkStopped, match=r"earlier insert failed"):
        sink.write(batch_of(messages(2, 3)))
    assert totals(ch_client) == (0, 0, 0)


def test_stored_event_ids_are_found_from_any_topic_in_chunks_within_the_time_range(
    sink: ClickHouseSink, clickhouse: ClickHouseSettings
) -> None:
    sink.write(batch_of(messages(0, 4_499)))  # more ids than one look-up takes
    backfill = ClickHouseSink(lambda: connect(clickhouse), "events.backfill")
    asked = [f"p0-o{offset}" for offset in range(0, 4_500, 2)] + ["never-stored"]
    hour = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert sorted(backfill.stored_event_ids(asked, hour, hour)) == sorted(asked[:-1])
    assert backfill.stored_event_ids(asked, NOW, NOW) == [], "outside the range nothing is looked at"


def test_every_value_is_stored_as_the_processor_made_it(sink: ClickHouseSink, migrated: Client) -> None:
    """Times (epoch ms), nulls, floats, maps, and strings with quotes, escapes, line separators and emoji come
    back as the processor made them."""
    tricky = 'a "quoted" \\ back\\slash\n\u2028 line 😀 \u00e9'
    events = [
        {
            "event_id": f"e{n}",
            "event_type": "annotation_submitted",
            "schema_version": 1,
            "occurred_at": "2026-11-23T11:00:00.123Z",
            "project_id": "p",
            "task_id": "t",
            "annotator_id": annotator,
            "label": {"tricky": tricky} if n else tricky,
            "source": "model_assisted",
            "model_label": "dog",
            "model_confidence": 0.87,
            "custom": tricky,
        }
        for n, annotator in enumerate(["a", "b"])
    ]
    batch = batch_of([Message("events", 0, n, b"k", json.dumps(event).encode()) for n, event in enumerate(events)])
    sink.write(batch)
    rows = migrated.query(
        "SELECT event_id, toUnixTimestamp64Milli(occurred_at), toUnixTimestamp64Milli(received_at), label, "
        "duration_ms, model_confidence, extra FROM events ORDER BY event_id"
    ).result_rows
    assert [row[0] for row in rows] == ["e0", "e1"]
    assert {row[1] for row in rows} == {int(datetime(2026, 11, 23, 11, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000)}
    assert {row[2] for row in rows} == {int(NOW.timestamp() * 1000)}
    assert rows[0][3] == tricky and json.loads(rows[1][3]) == {"tricky": tricky}
    assert [row[4] for row in rows] == [None, None]
    assert rows[0][5] == pytest.approx(0.87)
    assert json.loads(rows[0][6]) == {"custom": tricky}
    # Two first answers: agreement rows, with a map of label counts and a DateTime64 from epoch ms.
    (labels, labeled_at) = migrated.query(
        "SELECT label_counts, toUnixTimestamp64Milli(labeled_at) FROM task_agreement_changes"
    ).result_rows[0]
    assert labels == {
        tricky: 1,
        json.dumps({"tricky": tricky}, sort_keys=True, separators=(",", ":"), ensure_ascii=False): 1,
    }
    assert labeled_at == rows[0][1]
