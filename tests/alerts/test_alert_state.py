"""The alert state machine, by tables of cases: each row is the condition at successive evaluations
(one minute apart) and the state the instance must be in after each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.state import Instance, State, Timing, fingerprint, step

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LABELS = {"project": "retail-products", "severity": "page"}
KEY = fingerprint("ThroughputDrop", LABELS)
P, F, R, I = State.PENDING, State.FIRING, State.RESOLVED, State.INACTIVE  # noqa: E741


def run(
    condition: str, timing: Timing, *, restart_after: int | None = None
) -> tuple[list[State], list[tuple[State, State]]]:
    """`condition`: one character per evaluation, '1' holds, '0' does not."""
    instances: dict[str, Instance] = {}
    states, transitions = [], []
    for i, holds in enumerate(condition):
        now = T0 + timedelta(minutes=i)
        active = {KEY: (LABELS, 42.0)} if holds == "1" else {}
        instances, moved = step("ThroughputDrop", instances, active, now, timing)
        transitions += [(t.before, t.after) for t in moved]
        states.append(instances[KEY].state if KEY in instances else I)
        if restart_after == i:  # the evaluator restarts: state comes back from its stored records
            stored = json.loads(json.dumps({k: v.to_record() for k, v in instances.items()}))
            instances = {k: Instance.from_record(v) for k, v in stored.items()}
    return states, transitions


@pytest.mark.parametrize(
    ("condition", "for_minutes", "keep_minutes", "expected"),
    [
        ("1111", 0, 0, [F, F, F, F]),  # no `for`: fires at once
        ("11110", 2, 0, [P, P, F, F, R]),  # fires once held for 2 minutes, resolves when gone
        ("1101111", 2, 0, [P, P, I, P, P, F, F]),  # a gap while pending starts the wait over
        ("1111010", 2, 0, [P, P, F, F, R, P, I]),  # flapping after firing: a new episode must wait again
        ("1110001", 0, 2, [F, F, F, F, F, R, F]),  # keep_firing_for: 2 min after the first miss, resolved
        ("1110100", 0, 2, [F, F, F, F, F, F, F]),  # a short gap is bridged: the countdown starts over
        ("11100001", 0, 2, [F, F, F, F, F, R, R, F]),  # a long one is not: resolved, then a new episode
        ("1", 5, 0, [P]),
        ("0000", 1, 1, [I, I, I, I]),
    ],
)
def test_states_follow_prometheus_semantics(
    condition: str, for_minutes: int, keep_minutes: int, expected: list[State]
) -> None:
    timing = Timing(for_=timedelta(minutes=for_minutes), keep_firing_for=timedelta(minutes=keep_minutes))
    states, _ = run(condition, timing)
    assert states == expected


def test_keep_firing_for_counts_from_the_first_evaluation_without_the_condition() -> None:
    # gone at minutes 3 and 4, back at 5: with keep_firing_for = 2 min it resolves at minute 5
    # only if counted from minute 3; it comes back at 5 so it must still be firing at 4.
    states, transitions = run("111001", Timing(keep_firing_for=timedelta(minutes=2)))
    assert states == [F, F, F, F, F, F]
    assert transitions == [(I, F)], "no resolve and re-fire: a short gap is bridged"


def test_transitions_are_recorded_for_the_history() -> None:
    _, transitions = run("1110", Timing(for_=timedelta(minutes=1)))
    assert transitions == [(I, P), (P, F), (F, R)]


def test_a_pending_instance_that_goes_away_leaves_an_inactive_transition() -> None:
    _, transitions = run("10", Timing(for_=timedelta(minutes=5)))
    assert transitions == [(I, P), (P, I)]


@pytest.mark.parametrize("restart_after", [0, 1, 2, 3, 4])
def test_a_restart_in_any_state_neither_loses_nor_refires(restart_after: int) -> None:
    timing = Timing(for_=timedelta(minutes=2))
    without, fired_without = run("111110", timing)
    with_restart, fired_with = run("111110", timing, restart_after=restart_after)
    assert with_restart == without
    assert fired_with == fired_without
    assert fired_with.count((P, F)) == 1, "fired exactly once"


def test_resolved_instances_are_forgotten_after_their_retention() -> None:
    timing = Timing(resolved_retention=timedelta(minutes=2))
    states, _ = run("10000", timing)
    assert states == [F, R, R, I, I]


def test_fingerprints_ignore_label_order_and_tell_rules_apart() -> None:
    assert fingerprint("a", {"x": "1", "y": "2"}) == fingerprint("a", {"y": "2", "x": "1"})
    assert fingerprint("a", {"x": "1"}) != fingerprint("b", {"x": "1"})
    assert fingerprint("a", {"x": "1"}) != fingerprint("a", {"x": "2"})
