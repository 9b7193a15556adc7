"""The processor: messages in, rows out; bad input becomes dead letters with the reason, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schema.rows import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, WORKER_TABLES, epoch_ms, positions
from streams import processor as processor_module
from streams.privacy import Pseudonymizer
from streams.processor import DictStateStore, Message, Processor, RecentIds
from tests.support.messages import event, message

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def row(columns: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    return dict(zip(columns, values, strict=True))


@pytest.fixture
def processor() -> Processor:
    return Processor(tasks=DictStateStore(), dedup_window=1000)


def test_valid_event_becomes_an_events_row_with_its_kafka_position(processor: Processor) -> None:
    batch = processor.process([message(event(), partition=2, offset=41)], now=NOW)
    assert positions("events", batch.rows("events")) == [(2, 41)]
    stored = row(EVENT_COLUMNS, batch.rows("events")[0])
    assert (stored["event_id"], stored["kafka_partition"], stored["kafka_offset"]) == ("e1", 2, 41)
    assert stored["received_at"] == epoch_ms(NOW)
    assert batch.events_by_type == {"annotation_submitted": 1}
    assert not batch.rows("dead_letters")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (b"{oops", "malformed_json"),
        (b"[]", "not_an_object"),
        (None, "malformed_json"),
        (event(event_type="annotation_exploded"), "unknown_event_type"),
        (event(duration_ms=-5), "out_of_range"),
        (event(schema_version=9), "unsupported_schema_version"),
        (event(occurred_at="2099-01-01T00:00:00Z"), "future_timestamp"),
        (event(occurred_at="2001-01-01T00:00:00Z"), "ancient_timestamp"),
        (json.dumps({"event_type": "task_created"}).encode(), "missing_field"),
    ],
)
def test_bad_messages_become_dead_letters_with_reason_and_position(
    processor: Processor, value: bytes | None, rule: str
) -> None:
    batch = processor.process([message(b'{"event_id": "ok"', 0, 0), message(value, 1, 7, key=b"k")], now=NOW)
    letter = row(DEAD_LETTER_COLUMNS, batch.rows("dead_letters")[-1])
    assert letter["rule"] == rule
    assert letter["reason"]
    assert (letter["kafka_partition"], letter["kafka_offset"], letter["kafka_key"]) == (1, 7, b"k")
    assert letter["raw"] == (value or b"")
    assert positions("dead_letters", batch.rows("dead_letters"))[-1] == (1, 7)
    assert batch.dead_letters_by_rule[rule] >= 1


def test_one_bad_message_does_not_stop_the_rest_of_the_batch(processor: Processor) -> None:
    batch = processor.process(
        [message(event("a"), offset=0), message(b"\x00garbage", offset=1), message(event("b"), offset=2)], now=NOW
    )
    assert [r[0] for r in batch.rows("events")] == ["a", "b"]
    assert len(batch.rows("dead_letters")) == 1


def test_repeated_event_id_on_a_partition_is_dropped_and_counted(processor: Processor) -> None:
    batch = processor.process([message(event("a"), offset=0), message(event("a"), offset=1)], now=NOW)
    assert len(batch.rows("events")) == 1
    assert batch.duplicates == 1
    later = processor.process([message(event("a"), offset=9)], now=NOW)
    assert later.duplicates == 1 and not later.rows("events")


def test_duplicates_are_remembered_per_partition(processor: Processor) -> None:
    batch = processor.process([message(event("a"), partition=0), message(event("a"), partition=1)], now=NOW)
    assert len(batch.rows("events")) == 2


def test_seeded_ids_count_as_seen(processor: Processor) -> None:
    processor.recent_ids(3).remember(["a", "b"])
    batch = processor.process([message(event("b"), partition=3)], now=NOW)
    assert batch.duplicates == 1


def test_recent_ids_remember_at_least_the_last_capacity_and_forget_beyond_twice_that() -> None:
    def seen_after(ids: list[str], event_id: str) -> bool:
        recent = RecentIds(capacity=2)
        recent.remember(ids)
        return recent.seen(event_id)

    ids = ["a", "b", "c", "d", "e"]
    assert [seen_after(ids, event_id) for event_id in ids] == [False, False, True, True, True]
    assert seen_after(ids[:3], "b"), "a repeat within twice the capacity"


def test_recent_ids_with_no_capacity_remember_nothing() -> None:
    recent = RecentIds(capacity=0)
    recent.remember(["a"])
    assert not recent.seen("a")
    assert not recent.seen("a")


def derived(batch: Any, table: str) -> list[tuple[dict[str, Any], int]]:
    """A derived table's rows of the batch, as (named values, sign)."""
    columns = WORKER_TABLES[table].column_names
    return [(row(columns, values), values[columns.index("sign")]) for values in batch.rows(table)]


def test_events_are_stored_as_received_and_gold_answers_derived_whichever_arrives_first(processor: Processor) -> None:
    created = event("c1", "task_created", is_gold=True, gold_label="dog", occurred_at="2026-11-23T10:00:00Z")
    first = processor.process([message(event("s1", label="dog"), offset=0)], now=NOW)
    assert derived(first, "gold_answer_changes") == [], "the gold label is not known yet"
    submission = row(EVENT_COLUMNS, first.rows("events")[0])
    assert (submission["is_gold"], submission["gold_label"]) == (False, ""), "stored as received"
    later = processor.process([message(created, offset=1)], now=NOW)
    [(answer, sign)] = derived(later, "gold_answer_changes")
    assert (answer["submission_id"], answer["label"], answer["gold_label"], answer["correct"], sign) == (
        "s1",
        "dog",
        "dog",
        True,
        1,
    )
    made_known = positions("gold_answer_changes", later.rows("gold_answer_changes"))
    assert made_known == [(0, 1)], "positioned at the event that made it known"


def test_unknown_fields_are_stored_as_json(processor: Processor) -> None:
    batch = processor.process([message(event(tool="v2", ui={"zoom": 2}))], now=NOW)
    assert json.loads(row(EVENT_COLUMNS, batch.rows("events")[0])["extra"]) == {"tool": "v2", "ui": {"zoom": 2}}


def test_replayed_messages_are_not_duplicates_and_rebuild_task_state(processor: Processor) -> None:
    # After a restart the ids of stored events are seeded, and everything since the last commit
    # is read again: those replays must still feed task state (their rows are dropped by the sink).
    processor.recent_ids(0).remember(["s1", "s2"])
    replayed = [
        message(event("s1", annotator_id="a1", label="cat"), offset=0),
        message(event("s2", annotator_id="a2", label="dog"), offset=1),
    ]
    batch = processor.process(replayed, now=NOW, replayed_through={0: 1})
    assert batch.duplicates == 0
    state = processor.tasks.get("t1") or {}
    assert [(s[2], s[3]) for s in state["submissions"]] == [("a1", "cat"), ("a2", "dog")]
    again = processor.process([message(event("s2", annotator_id="a2"), offset=2)], now=NOW, replayed_through={0: 1})
    assert again.duplicates == 1, "a repeat at a new offset is a producer duplicate"


def test_an_event_already_in_the_task_changes_nothing(processor: Processor) -> None:
    values = [event("s1", annotator_id="a1", label="cat"), event("s2", annotator_id="a2", label="dog")]
    processor.process([message(value, offset=n) for n, value in enumerate(values)], now=NOW)
    again = processor.process([message(values[1], offset=1)], now=NOW, replayed_through={0: 1})
    assert not any(table != "events" for table in again.tables)


def handle_times(batch: Any) -> list[tuple[str, int, str, int]]:
    return [(r["annotator_id"], r["handle_time_ms"], r["measured_by"], sign)
            for r, sign in derived(batch, "handle_time_changes")]  # fmt: skip


def started(event_id: str, at: str, annotator: str = "a1") -> bytes:
    return event(event_id, "annotation_started", annotator_id=annotator, occurred_at=at)


def submitted(event_id: str, at: str, annotator: str = "a1", **fields: Any) -> bytes:
    return event(event_id, annotator_id=annotator, occurred_at=at, **fields)


def test_handle_time_measured_by_the_tool_is_taken_as_is(processor: Processor) -> None:
    batch = processor.process([message(submitted("s", "2026-11-23T11:00:10Z", duration_ms=4200))], now=NOW)
    assert handle_times(batch) == [("a1", 4200, "tool", 1)]


def test_handle_time_from_start_to_submit_when_the_tool_did_not_measure(processor: Processor) -> None:
    batch = processor.process(
        [
            message(started("b", "2026-11-23T11:00:00Z"), offset=0),
            message(submitted("s", "2026-11-23T11:00:07.5Z"), offset=1),
        ],
        now=NOW,
    )
    assert handle_times(batch) == [("a1", 7500, "start_to_submit", 1)]


def test_handle_time_when_the_submission_arrives_before_its_start_even_in_another_batch(processor: Processor) -> None:
    first = processor.process([message(submitted("s", "2026-11-23T11:00:09Z"), offset=0)], now=NOW)
    assert handle_times(first) == []
    later = processor.process([message(started("b", "2026-11-23T11:00:00Z"), offset=1)], now=NOW)
    assert handle_times(later) == [("a1", 9000, "start_to_submit", 1)]
    completed = positions("handle_time_changes", later.rows("handle_time_changes"))
    assert completed == [(0, 1)], "positioned at the event that completed the pair"


def test_a_later_start_arriving_late_takes_back_the_handle_time_it_changes(processor: Processor) -> None:
    # The annotator opened the task twice; the second opening arrives after the submission.
    processor.process(
        [
            message(started("b1", "2026-11-23T11:00:00Z"), offset=0),
            message(submitted("s", "2026-11-23T11:01:00Z"), 0, 1),
        ],
        now=NOW,
    )
    later = processor.process([message(started("b2", "2026-11-23T11:00:50Z"), offset=2)], now=NOW)
    assert sorted(handle_times(later)) == [("a1", 10000, "start_to_submit", 1), ("a1", 60000, "start_to_submit", -1)]


def test_each_annotator_pairs_with_their_own_start(processor: Processor) -> None:
    batch = processor.process(
        [
            message(started("b1", "2026-11-23T11:00:00Z", "a1"), offset=0),
            message(started("b2", "2026-11-23T11:00:05Z", "a2"), offset=1),
            message(submitted("s2", "2026-11-23T11:00:06Z", "a2"), offset=2),
            message(submitted("s1", "2026-11-23T11:00:30Z", "a1"), offset=3),
        ],
        now=NOW,
    )
    assert handle_times(batch) == [("a2", 1000, "start_to_submit", 1), ("a1", 30000, "start_to_submit", 1)]


def test_a_start_after_its_submission_gives_no_handle_time(processor: Processor) -> None:
    batch = processor.process(
        [
            message(started("b", "2026-11-23T11:00:10Z"), offset=0),
            message(submitted("s", "2026-11-23T11:00:00Z"), offset=1),
        ],
        now=NOW,
    )
    assert handle_times(batch) == []


def review(
    event_id: str, verdict: str, offset: int, at: str = "2026-11-23T11:00:00Z", annotator: str = "a1"
) -> Message:
    value = event(
        event_id, "review_completed", verdict=verdict, reviewer_id="r1", annotator_id=annotator, occurred_at=at
    )
    return message(value, offset=offset)


def rounds(batch: Any) -> list[tuple[str, int, str, bool, bool, int]]:
    return sorted((r["annotator_id"], r["round"], r["verdict"], r["first_pass_accepted"], r["rework"], sign)
                  for r, sign in derived(batch, "review_round_changes"))  # fmt: skip


def test_reviews_carry_their_round_first_pass_and_rework_per_annotators_work(processor: Processor) -> None:
    batch = processor.process(
        [
            review("v1", "rejected", 0, "2026-11-23T11:00:00Z"),
            review("v2", "fixed", 1, "2026-11-23T11:01:00Z"),
            review("v3", "accepted", 2, "2026-11-23T11:02:00Z"),
            review("w1", "accepted", 3, "2026-11-23T11:03:00Z", annotator="a2"),  # another annotator's work
        ],
        now=NOW,
    )
    assert rounds(batch) == [
        ("a1", 1, "rejected", False, False, 1),
        ("a1", 2, "fixed", False, True, 1),
        ("a1", 3, "accepted", False, True, 1),  # accepted, but only after a rejection: rework
        ("a2", 1, "accepted", True, False, 1),
    ]


def test_an_acceptance_that_arrives_after_a_later_rejection_is_still_first_pass(processor: Processor) -> None:
    processor.process([review("v2", "rejected", 0, "2026-11-23T11:05:00Z")], now=NOW)
    late = processor.process([review("v1", "accepted", 1, "2026-11-23T11:00:00Z")], now=NOW)
    assert rounds(late) == [
        ("a1", 1, "accepted", True, False, 1),
        ("a1", 1, "rejected", False, False, -1),  # the rejection was round 1; now it is round 2
        ("a1", 2, "rejected", False, False, 1),
    ]


def test_events_later_than_the_lateness_bound_are_stored_and_counted_but_not_derived() -> None:
    processor = Processor(tasks=DictStateStore(), lateness_bound_ms=3_600_000)
    now = [message(submitted("s-now", "2026-11-23T11:59:00Z"), offset=0)]
    processor.process(now, now=NOW)
    late = processor.process(
        [message(submitted("s-old", "2026-11-23T10:58:00Z", duration_ms=5000), offset=1)],  # 61 minutes behind
        now=NOW,
    )
    stored = row(EVENT_COLUMNS, late.rows("events")[0])
    assert (stored["event_id"], stored["too_late"]) == ("s-old", True)
    assert late.too_late == {"annotation_submitted": 1}
    assert not any(table != "events" for table in late.tables) and not late.activity
    within = processor.process([message(submitted("s-ok", "2026-11-23T11:00:00Z", duration_ms=1), offset=2)], now=NOW)
    assert row(EVENT_COLUMNS, within.rows("events")[0])["too_late"] is False and handle_times(within)


def test_a_completed_task_is_released_once_nothing_within_the_bound_can_change_it() -> None:
    processor = Processor(tasks=DictStateStore(), lateness_bound_ms=3_600_000)
    done = [message(submitted("s", "2026-11-23T09:00:00Z"), offset=0),
            message(event("c", "task_completed", occurred_at="2026-11-23T09:10:00Z"), offset=1)]  # fmt: skip
    processor.process(done, now=NOW)
    other = event("x1", task_id="t9", occurred_at="2026-11-23T10:10:00Z")  # the partition's clock: 60 min later
    assert processor.process([message(other, offset=2)], now=NOW).released == 0
    assert processor.tasks.get("t1") is not None
    later = event("x2", task_id="t9", occurred_at="2026-11-23T10:10:01Z")
    assert processor.process([message(later, offset=3)], now=NOW).released == 1
    assert processor.tasks.get("t1") is None and processor.tasks.get("t9") is not None


def test_a_task_that_completes_after_it_was_first_seen_is_released_within_the_bound_too() -> None:
    # Found by bench/soak.py: a task first seen in a batch of its own was due only after the open-task
    # retention (7 days), however soon it completed: the worker's memory grew by every task.
    processor = Processor(tasks=DictStateStore(), lateness_bound_ms=3_600_000)
    clock = iter(range(10, 100))

    def at(time: str, name: str, **fields: Any) -> list[Message]:
        return [message(event(name, occurred_at=f"2026-11-23T{time}Z", **fields), offset=next(clock))]

    processor.process(at("08:00:00", "x0", task_id="t9"), now=NOW)  # the partition's first batch
    processor.process(at("09:00:00", "s", event_type="annotation_submitted", label="cat", duration_ms=1), now=NOW)
    processor.process(at("09:10:00", "c", event_type="task_completed"), now=NOW)
    assert processor.process(at("10:10:00", "x1", task_id="t9"), now=NOW).released == 0
    assert processor.process(at("10:10:01", "x2", task_id="t9"), now=NOW).released == 1
    assert processor.tasks.get("t1") is None


def test_a_task_that_never_completes_is_released_after_the_open_task_retention() -> None:
    processor = Processor(tasks=DictStateStore(), lateness_bound_ms=60_000, open_task_retention_ms=7_200_000)
    processor.process([message(submitted("s", "2026-11-23T09:00:00Z"), offset=0)], now=NOW)
    almost = processor.process(
        [message(event("x1", task_id="t9", occurred_at="2026-11-23T11:00:00Z"), offset=1)], now=NOW
    )
    assert almost.released == 0
    past = processor.process(
        [message(event("x2", task_id="t9", occurred_at="2026-11-23T11:00:01Z"), offset=2)], now=NOW
    )
    assert past.released == 1 and processor.tasks.get("t1") is None


def test_release_heaps_rebuilt_together_keep_each_partitions_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The heaps are rebuilt from the store in one pass for every partition; rebuild at every chance here.
    monkeypatch.setattr(processor_module, "REINDEX_SLACK", 0)
    processor = Processor(tasks=DictStateStore(), lateness_bound_ms=3_600_000)
    offsets = {0: iter(range(100)), 1: iter(range(100))}

    def at(partition: int, time: str, name: str, task: str, **fields: Any) -> Message:
        value = event(name, task_id=task, occurred_at=f"2026-11-23T{time}Z", **fields)
        return message(value, partition=partition, offset=next(offsets[partition]))

    tasks = {f"t{n}": n % 2 for n in range(6)}  # three on each partition
    processor.process([at(p, "09:00:00", f"s-{task}", task, duration_ms=1) for task, p in tasks.items()], now=NOW)
    done = [at(p, "09:10:00", f"c-{task}", task, event_type="task_completed") for task, p in tasks.items()]
    assert processor.process(done, now=NOW).released == 0
    # Partition 0's clock passes the bound: its three tasks go, partition 1's stay until its own clock does.
    assert processor.process([at(0, "10:10:01", "x0", "t-other0")], now=NOW).released == 3
    assert sorted(task for task in tasks if processor.tasks.get(task)) == ["t1", "t3", "t5"]
    assert processor.process([at(1, "10:10:01", "x1", "t-other1")], now=NOW).released == 3
    assert not any(processor.tasks.get(task) for task in tasks)


def test_released_state_is_found_again_after_a_restart() -> None:
    # The release index is built from the recovered state on the first batch of a partition.
    tasks = DictStateStore()
    Processor(tasks=tasks, lateness_bound_ms=60_000).process(
        [
            message(submitted("s", "2026-11-23T09:00:00Z"), offset=0),
            message(event("c", "task_completed", occurred_at="2026-11-23T09:00:01Z"), offset=1),
        ],
        now=NOW,
    )
    restarted = Processor(tasks=tasks, lateness_bound_ms=60_000)
    batch = restarted.process(
        [message(event("x", task_id="t9", occurred_at="2026-11-23T11:00:00Z"), offset=2)], now=NOW
    )
    assert batch.released == 1 and tasks.get("t1") is None


def test_pseudonymized_people_are_replaced_everywhere_and_consistently() -> None:
    pseudonymizer = Pseudonymizer("k" * 32)
    processor = Processor(tasks=DictStateStore(), pseudonymizer=pseudonymizer)
    review = event("r1", "review_completed", reviewer_id="rev-bob", verdict="accepted", label=None)
    started = event("e2", "annotation_started", label=None)
    messages = [message(event("e1"), offset=0), message(started, offset=1), message(review, offset=2)]
    batch = processor.process(messages, now=NOW)
    rows = [row(EVENT_COLUMNS, values) for values in batch.rows("events")]
    alice = pseudonymizer.of("a1")
    assert [r["annotator_id"] for r in rows] == [alice, alice, alice], "one person, one pseudonym"
    assert rows[2]["reviewer_id"] == pseudonymizer.of("rev-bob") != alice
    assert alice.startswith("p-") and len(alice) == 26
    assert list(batch.activity) == [alice], "the activity topic is keyed by the pseudonym too"
    assert Pseudonymizer("another key, 16+").of("a1") != alice, "without the key, no way to the same pseudonym"
    assert "a1" not in repr(batch.rows("events")) and "rev-bob" not in repr(batch.rows("events"))


def test_pseudonymized_dead_letters_keep_where_and_why_but_not_the_message() -> None:
    processor = Processor(tasks=DictStateStore(), pseudonymizer=Pseudonymizer("k" * 32))
    bad = event(annotator_id="x" * 300)  # too long: the error would quote the name
    batch = processor.process([message(bad, partition=1, offset=7)], now=NOW)
    stored = row(DEAD_LETTER_COLUMNS, batch.rows("dead_letters")[0])
    assert (stored["kafka_partition"], stored["kafka_offset"], stored["field"]) == (1, 7, "annotator_id")
    assert stored["raw"] == b"" and "withheld" in stored["reason"]
    assert batch.refused[0][0].value == bad, "the dead-letter topic still gets the message as sent"


def test_a_short_pseudonymization_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        Pseudonymizer("short")


class FailingStore(DictStateStore):
    """State that breaks on one task, as a bug of ours might."""

    def get(self, key: str) -> dict[str, Any] | None:
        if key == "t-cursed":
            raise ValueError("a bug of ours")
        return super().get(key)


def test_a_message_the_processor_fails_on_is_set_aside_and_the_rest_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    processor = Processor(tasks=FailingStore(), dedup_window=1000)
    values = [event("e1"), event("e2", task_id="t-cursed"), event("e3", task_id="t3")]
    batch = processor.process([message(value, offset=offset) for offset, value in enumerate(values)], now=NOW)
    assert [row(EVENT_COLUMNS, values)["event_id"] for values in batch.rows("events")] == ["e1", "e3"]
    letter = row(DEAD_LETTER_COLUMNS, batch.rows("dead_letters")[0])
    assert (letter["rule"], letter["kafka_offset"], letter["raw"]) == ("unprocessable", 1, values[1])
    assert "ValueError: a bug of ours" in letter["reason"]
    assert batch.dead_letters_by_rule == {"unprocessable": 1}
    assert "a bug of ours" in caplog.text  # with its traceback, for us to fix


# The causes of handle times and gold answers missing under real delivery (issue 17), each pinned down:


def test_a_submission_arriving_after_its_task_completed_keeps_its_handle_time_and_gold(processor: Processor) -> None:
    # Cause: task_completed deleted the task's state, start and gold label included, so a submission that
    # occurred before the completion but arrived after it found neither.
    arrived = [
        event("c", "task_created", is_gold=True, gold_label="cat", occurred_at="2026-11-23T11:00:00Z"),
        started("b", "2026-11-23T11:00:01Z"),
        event("done", "task_completed", occurred_at="2026-11-23T11:00:30Z"),
        submitted("s", "2026-11-23T11:00:10Z", label="cat"),
    ]
    batch = processor.process([message(value, offset=n) for n, value in enumerate(arrived)], now=NOW)
    assert handle_times(batch) == [("a1", 9000, "start_to_submit", 1)]
    assert [(r["correct"], sign) for r, sign in derived(batch, "gold_answer_changes")] == [(True, 1)]


def test_a_reopening_that_arrives_before_the_submission_does_not_hide_the_start_before_it(
    processor: Processor,
) -> None:
    # Cause: one start was kept per annotator, the last to arrive; a reopening (rework after a rejection)
    # that arrived before the first submission replaced its start, and start > submission gave no row.
    arrived = [
        started("b1", "2026-11-23T11:00:00Z"),
        started("b2", "2026-11-23T11:05:00Z"),  # reopened later, for rework
        submitted("s1", "2026-11-23T11:00:20Z"),
        submitted("s2", "2026-11-23T11:05:30Z"),
    ]
    batch = processor.process([message(value, offset=n) for n, value in enumerate(arrived)], now=NOW)
    assert sorted(handle_times(batch)) == [("a1", 20000, "start_to_submit", 1), ("a1", 30000, "start_to_submit", 1)]


def test_a_submission_arriving_before_its_gold_task_is_judged_once_the_task_arrives(processor: Processor) -> None:
    # Cause: the gold label was copied onto submissions only if task_created had arrived first.
    arrived = [
        submitted("s", "2026-11-23T11:00:10Z", label="dog"),
        event("c", "task_created", is_gold=True, gold_label="cat", occurred_at="2026-11-23T11:00:00Z"),
    ]
    batch = processor.process([message(value, offset=n) for n, value in enumerate(arrived)], now=NOW)
    assert [(r["label"], r["gold_label"], r["correct"]) for r, _ in derived(batch, "gold_answer_changes")] == [
        ("dog", "cat", False)
    ]


def test_edits_and_deletions_are_stored_and_leave_the_derived_metrics_as_they_were(processor: Processor) -> None:
    submitted = processor.process([message(event("e1", duration_ms=5000, source_system="label-studio"))], now=NOW)
    later = [
        message(event("e2", "annotation_updated", label="dog", annotation_id="17", source_system="label-studio"), 0, 1),
        message(event("e3", "annotation_deleted", annotator_id=None, label=None, annotation_id="17"), 0, 2),
    ]
    batch = processor.process(later, now=NOW)
    assert batch.events_by_type == {"annotation_updated": 1, "annotation_deleted": 1}
    assert batch.events_by_source == {"label-studio": 1, "": 1}
    assert not batch.rows("dead_letters")
    stored = [row(EVENT_COLUMNS, values) for values in batch.rows("events")]
    assert [(r["annotation_id"], r["source_system"]) for r in stored] == [("17", "label-studio"), ("17", "")]
    # Work done is not un-counted: no derived row (handle time, gold, agreement, ...) is taken back or added.
    assert {table for table, rows in batch.tables.items() if rows} == {"events"}
    assert row(EVENT_COLUMNS, submitted.rows("events")[0])["source_system"] == "label-studio"
    assert submitted.rows("handle_time_changes")


def test_events_are_counted_by_source_system_under_a_bounded_set_of_labels() -> None:
    from streams.telemetry import source_label

    assert [source_label(name) for name in ("label-studio", "cvat", "", "my-own-tool")] == [
        "label-studio",
        "cvat",
        "unspecified",
        "other",
    ]
