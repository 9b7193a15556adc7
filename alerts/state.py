"""How one alerting rule's instances move between states, exactly as Prometheus defines it. Pure.

Each evaluation gives the label sets for which the rule's condition holds (with a value). Per
label set ("instance"):

    inactive --condition--> pending --held for `for`--> firing
    pending  --condition gone--> inactive                     (never fired: nothing to resolve)
    firing   --condition gone for `keep_firing_for`--> resolved (counted from the first evaluation
                                                       without it, as Prometheus does)
    resolved --condition--> pending (a new episode, new active_at)

With `for` = 0 an instance fires on the evaluation that first sees it. While firing, a
condition that comes back within `keep_firing_for` keeps it firing (no flap). Resolved
instances are kept for `resolved_retention` so the resolution can be re-sent, then forgotten.

State is plain data (`to_record` / `from_record`), so the evaluator can store it in ClickHouse
after every evaluation and resume after a restart in whatever state it was: a firing alert
stays firing (its `fired_at` unchanged) and is not fired twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class State(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Stable identity of an instance: rule name and label set, order-independent."""
    canonical = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Instance:
    rule: str
    labels: dict[str, str]
    state: State
    active_at: datetime  # when the condition began holding, this episode
    last_active_at: datetime  # the latest evaluation at which it held
    value: float
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    keep_firing_since: datetime | None = None  # first evaluation without the condition, while firing

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.labels)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["state"] = self.state.value
        for key in ("active_at", "last_active_at", "fired_at", "resolved_at", "keep_firing_since"):
            record[key] = record[key].isoformat() if record[key] else None
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Instance:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(record[key]) if record.get(key) else None

        return cls(
            rule=record["rule"],
            labels=dict(record["labels"]),
            state=State(record["state"]),
            active_at=datetime.fromisoformat(record["active_at"]),
            last_active_at=datetime.fromisoformat(record["last_active_at"]),
            value=float(record["value"]),
            fired_at=when("fired_at"),
            resolved_at=when("resolved_at"),
            keep_firing_since=when("keep_firing_since"),
        )


@dataclass(frozen=True)
class Transition:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    before: State
    after: State
    at: datetime
    value: float


@dataclass(frozen=True)
class Timing:
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    resolved_retention: timedelta = timedelta(minutes=15)


def step(
    rule: str,
    instances: Mapping[str, Instance],
    active: Mapping[str, tuple[dict[str, str], float]],
    now: datetime,
    timing: Timing,
) -> tuple[dict[str, Instance], list[Transition]]:
    """One evaluation of one rule. `instances`: known instances by fingerprint; `active`: the
    label sets (by fingerprint) whose condition holds now, with their values. Returns the new
    instances (inactive ones dropped) and the transitions made."""
    result: dict[str, Instance] = {}
    transitions: list[Transition] = []

    def move(instance: Instance, after: State, **changes: Any) -> Instance:
        moved = replace(instance, state=after, **changes)
        transitions.append(
            Transition(instance.fingerprint, rule, instance.labels, instance.state, after, now, moved.value)
        )
        return moved

    for key, (labels, value) in active.items():
        known = instances.get(key)
        if known is None or known.state is State.RESOLVED:  # a new episode
            fresh = Instance(rule, labels, State.INACTIVE, now, now, value)
            result[key] = (
                move(fresh, State.FIRING, fired_at=now) if timing.for_ <= timedelta(0) else move(fresh, State.PENDING)
            )
        elif known.state is State.PENDING and now - known.active_at >= timing.for_:
            result[key] = move(known, State.FIRING, fired_at=now, last_active_at=now, value=value)
        else:  # pending and not yet due, or firing already (a keep-firing countdown starts over)
            result[key] = replace(known, last_active_at=now, value=value, keep_firing_since=None)

    for key, known in instances.items():
        if key in active:
            continue
        if known.state is State.PENDING:
            move(known, State.INACTIVE)  # recorded, then dropped
        elif known.state is State.FIRING:
            since = known.keep_firing_since or now
            if now - since >= timing.keep_firing_for:
                result[key] = move(known, State.RESOLVED, resolved_at=now, keep_firing_since=None)
            else:  # keep firing for a while: the condition may come back
                result[key] = replace(known, keep_firing_since=since)
        elif known.state is State.RESOLVED and now - (known.resolved_at or now) < timing.resolved_retention:
            result[key] = known  # kept a while so the resolution can be sent again
    return result, transitions
