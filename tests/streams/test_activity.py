"""Active time per annotator: the tracker's sums equal the sorted-events definition whatever the arrival order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.activity import ActivityTracker, decode_activity, encode_activity
from streams.processor import ActivityEntry, DictStateStore, Message, Processor
from tests.support.messages import event, message
from tests.support.references import expected_active_time

IDLE_MS = 100_000
T0 = 1_794_999_600_000  # 2026-11-18 11:00 UTC, an hour boundary, ms


def frame(entries: dict[str, list[ActivityEntry]]) -> pd.DataFrame:
    rows = [
        {"annotator_id": annotator, "occurred_at": ts, "event_id": event_id, "project_id": project,
         "event_type": "annotation_submitted"}
        for annotator, annotator_entries in entries.items()
        for ts, event_id, project in annotator_entries
    ]  # fmt: skip
    events = pd.DataFrame(rows)
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], unit="ms", utc=True)
    return events


class Harness:
    """A tracker fed activity messages like the worker does; state goes through JSON like a changelog."""

    def __init__(self, **options: int) -> None:
        self.store = DictStateStore()
        self.options = options
        self.tracker = ActivityTracker(annotators=self.store, idle_threshold_ms=IDLE_MS, **options)
        self.offset = 0
        self.rows: list[list[object]] = []

    def send(
        self, annotator: str, entries: list[ActivityEntry], partition: int = 0, floors: dict[int, int] | None = None
    ) -> None:
        """`floors`: what the sender says of the events-topic partitions (two of them here)."""
        value = encode_activity(annotator, entries, floors or {}, 2)
        batch = self.tracker.process([Message("activity", partition, self.offset, annotator.encode(), value)])
        self.offset += 1
        self.rows.extend(batch.rows("active_time"))

    def restart(self) -> None:
        """A new worker recovering the state from its changelog (JSON)."""
        recovered = DictStateStore(json.loads(json.dumps(self.store)))
        self.store = recovered
        self.tracker = ActivityTracker(annotators=recovered, idle_threshold_ms=IDLE_MS, **self.options)

    def totals(self) -> pd.DataFrame:
        got = pd.DataFrame(
            self.rows, columns=["project_id", "annotator_id", "hour", "active_ms", "sessions", "t", "id", "p", "o"]
        )
        got["hour"] = pd.to_datetime(got["hour"]).dt.tz_localize(None)
        summed = got.groupby(["annotator_id", "project_id", "hour"])[["active_ms", "sessions"]].sum().reset_index()
        summed = summed[(summed["active_ms"] != 0) | (summed["sessions"] != 0)]
        return summed.sort_values(["annotator_id", "project_id", "hour"], ignore_index=True)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    want = want[(want["active_ms"] != 0) | (want["sessions"] != 0)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)


def test_gaps_shorter_than_the_threshold_are_active_and_longer_ones_start_sessions() -> None:
    harness = Harness()
    harness.send("a", [(T0, "e1", "p"), (T0 + 30_000, "e2", "p"), (T0 + 30_000 + IDLE_MS, "e3", "p")])
    harness.send("a", [(T0 + 30_000 + IDLE_MS + IDLE_MS - 1, "e4", "p")])
    totals = harness.totals()
    assert totals[["active_ms", "sessions"]].sum().tolist() == [30_000 + IDLE_MS - 1, 2]


def test_a_late_event_replaces_the_gap_it_falls_into() -> None:
    harness = Harness()
    harness.send("a", [(T0, "e1", "p"), (T0 + 150_000, "e3", "p")])  # idle between them: two sessions
    assert harness.totals()[["active_ms", "sessions"]].sum().tolist() == [0, 2]
    harness.send("a", [(T0 + 75_000, "e2", "p")])  # now both gaps are active: one session
    assert harness.totals()[["active_ms", "sessions"]].sum().tolist() == [150_000, 1]


def test_gaps_are_credited_to_the_project_and_hour_of_the_later_event() -> None:
    harness = Harness()
    harness.send("a", [(T0 - 10_000, "e1", "p"), (T0 + 5_000, "e2", "q")])
    totals = harness.totals().set_index("project_id")
    assert totals.loc["q", "active_ms"] == 15_000
    assert totals.loc["q", "hour"] == pd.Timestamp(datetime.fromtimestamp(T0 / 1000, UTC)).tz_localize(None)
    assert totals.loc["p", "sessions"] == 1


def test_replayed_events_change_nothing_also_after_a_restart() -> None:
    harness = Harness()
    entries = [(T0 + i * 20_000, f"e{i}", "p") for i in range(10)]
    harness.send("a", entries[:6])
    harness.restart()
    harness.send("a", entries)  # the first six again, in a message of their own
    assert_same(harness.totals(), expected_active_time(frame({"a": entries}), IDLE_MS))


def test_a_state_once_put_is_never_changed_by_later_events() -> None:
    """The worker publishes a batch's state only once the batch is durable, while it already
    processes the next: that state must not take in the next batch's events (a replay after a
    crash would then skip them as already counted, and their active time would be lost)."""
    harness = Harness()
    harness.send("ann-1", [(T0, "e1", "p"), (T0 + 60_000, "e3", "p")])
    published = harness.store["ann-1"]
    as_put = json.loads(json.dumps(published))
    harness.send("ann-1", [(T0 + 30_000, "e2", "p"), (T0 + 90_000, "e4", "p")])
    assert json.loads(json.dumps(published)) == as_put
    assert [entry[1] for entry in harness.store["ann-1"]["entries"]] == ["e1", "e2", "e3", "e4"]


def test_history_below_every_partitions_floor_is_forgotten_but_the_neighbour_of_what_may_still_come() -> None:
    harness = Harness()
    entries = [(T0 + i * 10_000, f"e{i}", "p") for i in range(10)]
    harness.send("a", entries, floors={0: T0 + 55_000})
    assert len(harness.store["a"]["entries"]) == 10, "partition 1 has not said how old its events can be"
    harness.send("a", [(T0 + 100_000, "e10", "p")], floors={1: T0 + 75_000})
    kept = [entry[1] for entry in harness.store["a"]["entries"]]
    assert kept == ["e5", "e6", "e7", "e8", "e9", "e10"], "from the last one below the lower floor (55 s) on"
    harness.send("b", [(T0 + 56_000, "b1", "p")])  # from the lagging partition, still above its floor: in place
    assert harness.tracker.too_late == 0


def test_an_activity_partition_read_ahead_does_not_prune_what_another_still_brings() -> None:
    harness = Harness()
    early = [(T0 + i * 10_000, f"a{i}", "p") for i in range(5)]
    harness.send(
        "b", [(T0 + 100 * IDLE_MS, "b1", "p")], partition=1, floors={0: T0 + 90 * IDLE_MS, 1: T0 + 90 * IDLE_MS}
    )
    harness.send("a", early, partition=0, floors={0: T0, 1: T0})  # sent long before b's, read after it
    late = [(T0 + 25_000, "a-late", "p")]  # within the bound of its own partition's watermark
    harness.send("a", late, partition=0, floors={0: T0, 1: T0})
    assert harness.tracker.too_late == 0
    everything = {"a": early + late, "b": [(T0 + 100 * IDLE_MS, "b1", "p")]}
    assert_same(harness.totals(), expected_active_time(frame(everything), IDLE_MS))


def test_an_annotator_idle_past_every_floor_keeps_its_last_event_so_replays_count_once() -> None:
    harness = Harness()
    early = [(T0, "e1", "p"), (T0 + 20_000, "e2", "p")]
    harness.send("a", early, floors={0: T0 + 10 * IDLE_MS, 1: T0 + 10 * IDLE_MS})
    assert [entry[1] for entry in harness.store["a"]["entries"]] == ["e2"]
    harness.restart()
    harness.send("a", early)  # read again after a restart: the first is known as older than what is kept
    later = [(T0 + 10 * IDLE_MS, "e3", "p")]
    harness.send("a", later)
    assert_same(harness.totals(), expected_active_time(frame({"a": early + later}), IDLE_MS))


def test_state_is_bounded_per_annotator_and_what_falls_before_it_is_counted() -> None:
    harness = Harness(max_entries=5)
    harness.send("a", [(T0 + i, f"e{i}", "p") for i in range(20)])
    assert len(harness.store["a"]["entries"]) == 5
    before = harness.totals()
    harness.send("a", [(T0 + 1, "late", "p")])
    assert harness.tracker.too_late == 1
    pd.testing.assert_frame_equal(harness.totals(), before)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    gaps=st.lists(st.integers(0, 3 * IDLE_MS), min_size=1, max_size=40),
    batch_size=st.integers(1, 8),
)
def test_any_arrival_order_gives_the_sorted_answer(seed: int, gaps: list[int], batch_size: int) -> None:
    rng = random.Random(seed)
    entries: dict[str, list[ActivityEntry]] = {"a": [], "b": []}
    clock = {"a": T0, "b": T0}
    for i, gap in enumerate(gaps):
        annotator = rng.choice("ab")
        clock[annotator] += gap
        entries[annotator].append((clock[annotator], f"e{i}", rng.choice(["p", "q"])))
    arrivals = [(annotator, entry) for annotator, annotator_entries in entries.items() for entry in annotator_entries]
    rng.shuffle(arrivals)
    harness = Harness()
    for start in range(0, len(arrivals), batch_size):
        for annotator in "ab":
            chunk = [entry for who, entry in arrivals[start : start + batch_size] if who == annotator]
            if chunk:
                harness.send(annotator, chunk)
        if rng.random() < 0.2:
            harness.restart()
    assert_same(harness.totals(), expected_active_time(frame({k: v for k, v in entries.items() if v}), IDLE_MS))


@pytest.mark.parametrize(
    "value",
    [None, b"", b"not json", b"[]", b'{"annotator_id": "a"}', b'{"annotator_id": "a", "events": [[1, "e"]]}',
     b'{"annotator_id": "a", "events": [["x", "e", "p"]]}'],
)  # fmt: skip
def test_malformed_activity_messages_are_refused(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="not an activity message"):
        decode_activity(value)


def test_a_malformed_activity_message_is_skipped_and_the_rest_processed() -> None:
    tracker = ActivityTracker(annotators=DictStateStore(), idle_threshold_ms=IDLE_MS)
    good = encode_activity("a", [(T0, "e1", "p")], {}, 1)
    batch = tracker.process([Message("activity", 0, 0, b"a", b"garbage"), Message("activity", 0, 1, b"a", good)])
    assert batch.rows("active_time") == [["p", "a", datetime.fromtimestamp(T0 / 1000, UTC), 0, 1, "activity", "", 0, 1]]


def test_the_processor_collects_annotation_work_per_annotator_for_the_activity_topic() -> None:
    processor = Processor(tasks=DictStateStore())
    batch = processor.process(
        [
            message(event("e1", "annotation_started", occurred_at="2026-11-23T11:00:00.123Z"), offset=0),
            message(event("e2", "annotation_submitted", annotator_id="a2"), offset=1),
            message(event("e3", "task_completed", annotator_id=None), offset=2),
            message(event("e4", "review_completed", verdict="accepted", reviewer_id="r"), offset=3),
        ],
        now=datetime(2026, 11, 23, 12, tzinfo=UTC),
    )
    occurred_ms = int(datetime(2026, 11, 23, 11, tzinfo=UTC).timestamp()) * 1000
    assert dict(batch.activity) == {"a1": [(occurred_ms + 123, "e1", "p")], "a2": [(occurred_ms, "e2", "p")]}
