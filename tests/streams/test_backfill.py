"""The backfill lane, without a broker: history read beside live events keeps its own event-time watermarks, so it
is never too late for derived metrics, its task states are released by its own watermark only, and its activity is
kept apart from the live activity of the same annotators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schema.events import ContractLimits
from streams.activity import ActivityTracker, encode_activity
from streams.processor import DictStateStore, Message, Processor, RecentIds
from tests.support.messages import event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)
HOUR_MS = 3_600_000


def lanes() -> tuple[Processor, Processor, DictStateStore]:
    tasks, recent = DictStateStore(), dict[int, RecentIds]()
    live = Processor(tasks=tasks, recent=recent)
    backfill = Processor(tasks=tasks, limits=ContractLimits().for_history(), lane="backfill", recent=recent)
    return live, backfill, tasks


def at(moment: datetime, **fields: object) -> bytes:
    return event(occurred_at=moment.isoformat(), **fields)


def test_history_400_days_old_is_accepted_and_not_too_late_beside_live_events() -> None:
    live, backfill, tasks = lanes()
    now_batch = live.process([Message("events", 0, 0, b"t", at(NOW, event_id="live", task_id="t-live"))], now=NOW)
    assert not now_batch.refused
    history = [
        Message("events.backfill", 0, n, b"t", at(LONG_AGO + timedelta(minutes=n), event_id=f"h{n}", task_id="t-old"))
        for n in range(3)
    ]
    batch = backfill.process(history, now=NOW)
    assert not batch.refused and not batch.too_late
    assert "t-old" in tasks, "the backfilled task keeps its state"
    assert backfill.watermark(0) < live.watermark(0), "each lane has its own watermark"
    assert [entry[1] for entry in batch.activity["a1"]] == ["h0", "h1", "h2"]
    assert batch.activity_floors[0] == backfill.watermark(0) - backfill.lateness_bound_ms


def test_the_live_lane_refuses_what_the_backfill_lane_keeps() -> None:
    live, _, _ = lanes()
    batch = live.process([Message("events", 0, 0, b"t", at(LONG_AGO))], now=NOW)
    assert [error.rule for _, error in batch.refused] == ["ancient_timestamp"]


def test_a_backfilled_task_is_released_by_its_lanes_watermark_not_the_live_one() -> None:
    live, backfill, tasks = lanes()
    old = [
        Message("b", 0, 0, b"t", at(LONG_AGO, event_id="h1", task_id="t-old", event_type="task_completed")),
    ]
    backfill.process(old, now=NOW)
    live.process([Message("events", 0, n, b"t", at(NOW, event_id=f"l{n}", task_id=f"t{n}")) for n in range(2)], now=NOW)
    assert "t-old" in tasks, "the live watermark, 400 days ahead, does not release history"
    later = LONG_AGO + timedelta(hours=2)
    backfill.process([Message("b", 0, 1, b"t", at(later, event_id="h2", task_id="t-other"))], now=NOW)
    assert "t-old" not in tasks, "released once its own lane's watermark is the lateness bound past it"
    assert "t0" in tasks, "live tasks are not released by the backfill watermark"


def test_a_task_changes_lane_with_its_newest_event() -> None:
    live, backfill, tasks = lanes()
    backfill.process([Message("b", 0, 0, b"t", at(NOW - timedelta(days=2), event_id="h1"))], now=NOW)
    assert tasks["t1"]["lane"] == "backfill"
    live.process([Message("events", 0, 0, b"t", at(NOW, event_id="l1"))], now=NOW)
    assert tasks["t1"]["lane"] == "", "its newest event came live: the live watermark releases it"


def test_an_event_delivered_live_and_then_imported_is_a_duplicate() -> None:
    live, backfill, _ = lanes()
    live.process([Message("events", 0, 0, b"t", at(NOW, event_id="same"))], now=NOW)
    batch = backfill.process([Message("b", 0, 0, b"t", at(NOW, event_id="same"))], now=NOW)
    assert batch.duplicates == 1 and not batch.rows("events")


def test_backfilled_activity_is_kept_apart_from_the_live_activity_and_its_floors() -> None:
    annotators = DictStateStore()
    tracker = ActivityTracker(annotators=annotators, idle_threshold_ms=100_000)
    now_ms, old_ms = int(NOW.timestamp() * 1000), int(LONG_AGO.timestamp() * 1000)
    live_floors = {0: now_ms - HOUR_MS, 1: now_ms - HOUR_MS}
    live = encode_activity("a1", [(now_ms, "l1", "p")], live_floors, 2)
    history = encode_activity(
        "a1", [(old_ms, "h1", "p"), (old_ms + 60_000, "h2", "p")], {0: old_ms - HOUR_MS}, 2, "backfill"
    )
    batch = tracker.process([Message("activity", 0, 0, b"a1", live), Message("activity", 0, 1, b"a1", history)])
    assert tracker.too_late == 0
    rows = batch.rows("active_time")
    assert sum(row[3] for row in rows) == 60_000 and sum(row[4] for row in rows) == 2, "h1 -> h2 active; 2 sessions"
    assert [entry[1] for entry in annotators["a1"]["entries"]] == ["l1"]
    assert [entry[1] for entry in annotators["\x00backfill:a1"]["entries"]] == ["h1", "h2"]
