"""Derived metrics are defined on the events sorted by time, and come out the same whatever the arrival order.

A property over any arrival order within the lateness bound, with duplicates and with restarts from the
changelog at any point: the processor's derived rows, as a sink keeps them (replays dropped by offset,
per table) and ClickHouse sums them (signs), equal a reference computed from the sorted events with
pandas (tests/support/references.py), independently of the worker's code.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.rows import WORKER_TABLES, positions
from streams.processor import DictStateStore, Message, ProcessedBatch, Processor
from streams.task_state import GOLD_ANSWERS, HANDLE_TIMES, PAIR_AGREEMENT, REVIEW_ROUNDS, TASK_AGREEMENT
from tests.support.references import (
    expected_agreement_rows,
    expected_from,
    expected_gold_answers,
    expected_handle_times,
    expected_review_rows,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=3)
ANNOTATORS = ("ann-a", "ann-b", "ann-c")
LABELS = st.sampled_from(["cat", "dog", {"box": [1, 2]}])
KINDS = ("annotation_started", "annotation_submitted", "annotation_submitted", "review_completed")
DERIVED = (HANDLE_TIMES, GOLD_ANSWERS, REVIEW_ROUNDS, TASK_AGREEMENT, PAIR_AGREEMENT)
PARTITIONS = 2


@st.composite
def task_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The events of a few tasks: gold or not, starts and submissions (timed by the tool or not), reviews
    of any verdict, several of each per annotator; on a coarse clock, so that ties in time happen."""
    events: list[dict[str, Any]] = []
    for task in range(draw(st.integers(1, 4))):
        base = {"schema_version": 1, "project_id": f"p{task % 2}", "task_id": f"task-{task}"}

        def at() -> str:
            return (START + timedelta(seconds=10 * draw(st.integers(0, 600)))).isoformat()

        if draw(st.booleans()):
            created = {**base, "event_type": "task_created", "occurred_at": at()}
            if draw(st.booleans()):
                created |= {"is_gold": True, "gold_label": draw(LABELS)}
            events.append(created)
        for _ in range(draw(st.integers(0, 10))):
            kind = draw(st.sampled_from(KINDS))
            event = {**base, "event_type": kind, "occurred_at": at(), "annotator_id": draw(st.sampled_from(ANNOTATORS))}
            if kind == "annotation_submitted":
                event["label"] = draw(LABELS)
                if draw(st.booleans()):
                    event["duration_ms"] = draw(st.integers(0, 600_000))
                if draw(st.integers(0, 9)) == 0:  # a producer that marks gold on the submission itself
                    event |= {"is_gold": True, "gold_label": draw(LABELS)}
            elif kind == "review_completed":
                event["reviewer_id"] = "rev-1"
                event["verdict"] = draw(st.sampled_from(["accepted", "fixed", "rejected"]))
            events.append(event)
        if draw(st.booleans()):  # after its other events, as tools send it (a late answer may still arrive later)
            latest = max((e["occurred_at"] for e in events if e["task_id"] == base["task_id"]), default=at())
            completed = datetime.fromisoformat(latest) + timedelta(seconds=draw(st.integers(0, 600)))
            events.append({**base, "event_type": "task_completed", "occurred_at": completed.isoformat()})
    ids = draw(st.permutations(range(len(events))))  # ids unrelated to time: ties are broken by them
    for event, number in zip(events, ids, strict=True):
        event["event_id"] = f"e{number:03d}"
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[bytes], list[int], list[int]]:
    """Events, the messages in the order they arrive (late by up to 10 minutes, some twice), batch sizes,
    and after which batches the worker dies."""
    events = draw(task_histories())
    values = [json.dumps(event).encode() for event in events]
    late_by = [draw(st.integers(0, 600)) for _ in values]
    arrivals = [(datetime.fromisoformat(event["occurred_at"]).timestamp() + late, i)
                for i, (event, late) in enumerate(zip(events, late_by, strict=True))]  # fmt: skip
    twice = draw(st.sets(st.integers(0, max(len(values) - 1, 0)), max_size=3)) if values else set()
    arrivals += [(at + draw(st.integers(0, 300)), i) for at, i in arrivals if i in twice]
    order = [values[i] for _, i in sorted(arrivals)]
    sizes = draw(st.lists(st.integers(1, 8), min_size=1, max_size=20))
    crashes = draw(st.lists(st.integers(0, 20), max_size=2))
    return events, order, sizes, crashes


@dataclass
class Sink:
    """What the ClickHouse sink keeps: per table, rows above the offsets it holds for their partition."""

    rows: dict[str, list[list[Any]]] = field(default_factory=dict)

    def through(self, table: str, partition: int) -> int:
        offsets = [row[-1] for row in self.rows.get(table, []) if row[-2] == partition]
        return max(offsets, default=-1)

    def write(self, batch: ProcessedBatch, tables: set[str] | None = None) -> None:
        for table, written in batch.tables.items():
            if tables is not None and table not in tables:
                continue
            stored = {partition: self.through(table, partition) for partition in range(PARTITIONS)}
            self.rows.setdefault(table, []).extend(
                row for row, (partition, offset) in zip(written, positions(table, written), strict=True)
                if offset > stored[partition]
            )  # fmt: skip

    def standing(self, table: str) -> set[tuple[Any, ...]]:
        """The rows that stand once signs are summed; every other sum must be 0."""
        signs: Counter[tuple[Any, ...]] = Counter()
        width = len(WORKER_TABLES[table].columns) - 5  # value columns, before sign and Kafka position
        for row in self.rows.get(table, []):
            values = tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in row[:width])
            signs[values] += row[width]
        assert set(signs.values()) <= {0, 1}, {values: sign for values, sign in signs.items() if sign not in (0, 1)}
        return {values for values, sign in signs.items() if sign == 1}


def messages(order: list[bytes]) -> list[Message]:
    """Keyed by task like the producers, so a task's events share a partition, offsets in arrival order."""
    offsets = [0] * PARTITIONS
    out = []
    for value in order:
        partition = int(json.loads(value)["task_id"].split("-")[1]) % PARTITIONS
        out.append(Message("events", partition, offsets[partition], None, value))
        offsets[partition] += 1
    return out


def run(order: list[bytes], sizes: list[int], crashes: list[int]) -> Sink:
    """A worker over the messages in batches, dying after the batches `crashes` names: the batch it was
    writing reaches some tables only, its task state stays as the changelog had it before that batch,
    and the restarted worker reads again from the committed offsets, a batch or more back."""
    stream = messages(order)
    sink, published = Sink(), DictStateStore()
    position = committed = batches = 0
    processor: Processor | None = None
    stored: dict[int, int] = {}
    while position < len(stream):
        if processor is None:  # (re)start: state from the changelog, duplicate detection seeded from what is stored
            processor = Processor(tasks=copy.deepcopy(published), dedup_window=3)
            stored = {partition: sink.through("events", partition) for partition in range(PARTITIONS)}
            for row in sink.rows.get("events", []):
                processor.recent_ids(row[-2]).remember([row[0]])
            position = committed
        size = sizes[batches % len(sizes)]
        batch = stream[position : position + size]
        result = processor.process(batch, now=NOW, replayed_through=stored)
        batches += 1
        if batches in crashes:
            tables = ["events", "dead_letters", *DERIVED]
            sink.write(result, tables={table for i, table in enumerate(tables) if (batches + i) % 2})
            processor = None
            continue
        sink.write(result)
        published = copy.deepcopy(processor.tasks)  # the changelog, once the batch is durable
        committed, position = position, position + size  # commits lag a batch behind
    return sink


@given(deliveries())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_derived_rows_equal_the_answer_for_the_sorted_events_whatever_the_arrival(
    delivery: tuple[list[dict[str, Any]], list[bytes], list[int], list[int]],
) -> None:
    events, order, sizes, crashes = delivery
    sink = run(order, sizes, crashes)
    expected, refused = expected_from([json.dumps(event).encode() for event in events]) if events else (None, None)
    if expected is None:
        return
    assert not refused
    assert sink.standing(HANDLE_TIMES) == expected_handle_times(expected)
    assert sink.standing(GOLD_ANSWERS) == expected_gold_answers(expected)
    assert sink.standing(REVIEW_ROUNDS) == expected_review_rows(expected)
    tasks, pairs = expected_agreement_rows(expected)
    assert sink.standing(TASK_AGREEMENT) == tasks
    assert sink.standing(PAIR_AGREEMENT) == pairs
