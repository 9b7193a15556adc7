"""`labelpulse alerts backtest`: replay rules over stored history and tell when each would have fired.

Every kind's query reads only what was there as of the moment it is given, so stepping a rule
through past moments with the same state machine shows exactly what the evaluator would have
done — without writing history or sending anything. Use it to tune thresholds before they page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client

from alerts.conditions import holding
from alerts.rules import Rule
from alerts.state import Instance, State, step


@dataclass(frozen=True)
class Episode:
    """One time an alert instance fired: from `fired_at` until `resolved_at` (None: still firing)."""

    rule: str
    labels: dict[str, str]
    fired_at: datetime
    resolved_at: datetime | None
    value: float  # the value when it fired

    @property
    def duration(self) -> timedelta | None:
        return self.resolved_at - self.fired_at if self.resolved_at else None


def moments(since: datetime, until: datetime, step_by: timedelta) -> list[datetime]:
    count = int((until - since) / step_by) + 1
    return [since + i * step_by for i in range(count)]


def backtest(
    client: Client,
    rules: Sequence[Rule],
    since: datetime,
    until: datetime,
    step_by: timedelta | None = None,
    progress: Callable[[Rule, int, int], None] = lambda rule, done, total: None,
) -> list[Episode]:
    """Every firing episode of every rule between `since` and `until`, evaluated at each rule's
    group interval (or `step_by`), in order of firing."""
    episodes: list[Episode] = []
    for rule in rules:
        instances: dict[str, Instance] = {}
        open_episodes: dict[str, Episode] = {}
        times = moments(since, until, step_by or rule.interval)
        for done, now in enumerate(times, start=1):
            instances, transitions = step(rule.alert, instances, holding(client, rule, now), now, rule.timing)
            for t in transitions:
                if t.after is State.FIRING:
                    open_episodes[t.fingerprint] = Episode(rule.alert, t.labels, now, None, t.value)
                elif t.after is State.RESOLVED and t.fingerprint in open_episodes:
                    fired = open_episodes.pop(t.fingerprint)
                    episodes.append(Episode(fired.rule, fired.labels, fired.fired_at, now, fired.value))
            progress(rule, done, len(times))
        episodes += open_episodes.values()
    return sorted(episodes, key=lambda e: (e.fired_at, e.rule))
