"""Slowing down password guessing (access.throttle): free failures, then waits that double up to a cap."""

from __future__ import annotations

import pytest

from access.throttle import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **options: float) -> SignInThrottle:
    settings = {"free_failures": 3, "first_delay_s": 1.0, "max_delay_s": 8.0, "forget_after_s": 60.0, **options}
    return SignInThrottle(clock=clock, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failures", "wait_s"),
    [(0, 0.0), (1, 0.0), (3, 0.0), (4, 1.0), (5, 2.0), (6, 4.0), (7, 8.0), (8, 8.0), (40, 8.0), (200, 8.0)],
)
def test_the_wait_doubles_after_the_free_failures_up_to_the_cap(failures: int, wait_s: float) -> None:
    clock = Clock()
    guarded = throttle(clock)
    for _ in range(failures):
        guarded.failed("lead")
    assert guarded.wait_s("lead") == wait_s


def test_keys_are_independent() -> None:
    guarded = throttle(Clock())
    for _ in range(5):
        guarded.failed("lead")
    assert guarded.wait_s("lead") > 0 and guarded.wait_s("ana") == 0.0


def test_the_wait_runs_out() -> None:
    clock = Clock()
    guarded = throttle(clock)
    for _ in range(5):
        guarded.failed("lead")
    clock.now += 1.5
    assert guarded.wait_s("lead") == pytest.approx(0.5)
    clock.now += 0.5
    assert guarded.wait_s("lead") == 0.0
    guarded.failed("lead")
    assert guarded.wait_s("lead") == 4.0, "the next checked failure waits longer"


def test_an_attacker_cannot_keep_the_owner_out_longer_than_the_cap() -> None:
    """Refused attempts are not checked and do not count: the wait never grows past max_delay_s."""
    clock = Clock()
    guarded = throttle(clock)
    for second in range(600):  # a guess every second for ten minutes, checked only when allowed
        clock.now = 1000.0 + second
        if guarded.wait_s("lead") == 0.0:
            guarded.failed("lead")
        assert guarded.wait_s("lead") <= 8.0


def test_failures_are_forgotten_after_a_quiet_while_and_keys_are_bounded() -> None:
    clock = Clock()
    guarded = throttle(clock, max_keys=100)
    for _ in range(3):
        guarded.failed("lead")
    clock.now += 61
    guarded.failed("lead")
    assert guarded.wait_s("lead") == 0.0, "the earlier failures were forgotten"
    for number in range(1000):
        guarded.failed(f"user-{number}")
    assert len(guarded._keys) == 100
