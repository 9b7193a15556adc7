"""What a task's events say once sorted by time: its state, and the derived rows it implies.

Every derived metric is defined on a task's events sorted by `occurred_at`, ties by `event_id`
(PRODUCT.md, "Time, order and the definitions that depend on them"), never on arrival order. So a
task's state keeps the events the derivations need, in that order, and the derived rows are a pure
function of the state (`derived_rows`). When an event arrives, late or not, the worker writes the
*change*: rows the new state no longer implies with sign -1, rows it newly implies with sign +1
(`changes`). ClickHouse sums the signs, so what is stored always equals the answer for the sorted
events, whatever order they came in. An event already in the state (a replay after a restart)
changes nothing.

The derivations, per task:
- handle time of each submission: the tool's `duration_ms`, else the time since the annotator's
  latest `annotation_started` before it (at most a day);
- gold answers: each submission on a honeypot task, right when its label equals the gold label
  (the submission's own, else the task's from `task_created`);
- review rounds: a review judges one annotator's work on the task; its round is 1 + the earlier
  reviews of that (task, annotator), it is first-pass accepted when accepted with no earlier
  rejection of it, and a rework review when it comes after a rejection of it;
- agreement: each annotator's first answer (earliest submission); once two or more annotators
  have answered, the task's label counts and agreeing pairs, and one row per annotator pair. A
  task counts from its latest first answer (`labeled_at`), a pair from the later of its two.

State is plain JSON (lists, as a changelog gives them back) and replaced on change, never modified
in place (see streams.processor.StateStore).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from schema import tables
from schema.events import (
    MAX_DURATION_MS,
    AnnotationStarted,
    AnnotationSubmitted,
    Event,
    ReviewCompleted,
    TaskCompleted,
    TaskCreated,
)
from schema.rows import Position, label_text

# Longer than this between start and submission is not handle time (the contract's duration_ms limit).
MAX_HANDLE_TIME_MS = MAX_DURATION_MS

# Entries, each sorted by (occurred_ms, event_id):
#   submissions: [occurred_ms, event_id, annotator_id, label, duration_ms | None, gold_label | None]
#   starts:      [occurred_ms, event_id, annotator_id]
#   reviews:     [occurred_ms, event_id, annotator_id, verdict, reviewer_id]
# gold: [occurred_ms, event_id, gold_label] of the earliest task_created that declares it.
State = Mapping[str, Any]
Row = tuple[Any, ...]  # a derived row's values, in its table's column order (before sign and position)

HANDLE_TIMES = tables.HANDLE_TIME_CHANGES.name
GOLD_ANSWERS = tables.GOLD_ANSWER_CHANGES.name
REVIEW_ROUNDS = tables.REVIEW_ROUND_CHANGES.name
TASK_AGREEMENT = tables.TASK_AGREEMENT_CHANGES.name
PAIR_AGREEMENT = tables.PAIR_AGREEMENT_CHANGES.name
AGREEMENT = "agreement"  # both agreement tables, derived together
Key = list[Any]  # [occurred_ms, event_id]: the order every derivation is defined on


# What an event can change: (derivation, annotator, since) - for per-annotator derivations whose rows
# (None: the whole task's), and from which entry on (None: all). An event at `since` changes no row of
# an earlier entry - a start only the submissions after it, a review only itself and the reviews after
# it - so an event that arrives in order derives one row, not the task's every row, twice. A plain
# tuple: several are made per event.
Scope = tuple[str, str | None, Key | None]
# The event types that change what a derivation reads (a task_created only when it declares gold).
DERIVING = frozenset(
    {"annotation_submitted", "annotation_started", "review_completed", "task_created", "task_completed"}
)


def empty(project_id: str, task_id: str, partition: int) -> dict[str, Any]:
    return {
        "project": project_id,
        "task": task_id,
        "partition": partition,  # where its events and its state live
        "gold": None,
        "submissions": [],
        "starts": [],
        "reviews": [],
        "completed": None,
        "newest": 0,
    }


def with_event(
    state: State | None, event: Event, partition: int, occurred_ms: int
) -> tuple[dict[str, Any] | None, list[Scope]]:
    """The state with `event` (which occurred at `occurred_ms`, epoch ms) in its place, and the
    derivations that may change; (None, []) when the event is already there (a replay) or changes
    nothing a derivation reads."""
    if isinstance(event, TaskCreated) and (not event.is_gold or event.gold_label is None):
        return None, []  # the usual task_created: nothing a derivation reads
    key = [occurred_ms, event.event_id]
    base = state or empty(event.project_id, event.task_id, partition)
    if isinstance(event, AnnotationSubmitted):
        annotator = event.annotator_id
        own_gold = label_text(event.gold_label) if event.is_gold and event.gold_label is not None else None
        entry = [occurred_ms, event.event_id, annotator, label_text(event.label), event.duration_ms, own_gold]
        scopes: list[Scope] = [(HANDLE_TIMES, annotator, key)]
        if own_gold is not None or base["gold"] is not None:  # a submission's gold row is its own and its task's
            scopes.append((GOLD_ANSWERS, None, key))
        if _first_answer(base["submissions"], annotator, key):
            scopes.append((AGREEMENT, None, None))  # a later answer changes no agreement
        return _inserted(base, "submissions", entry), scopes
    if isinstance(event, AnnotationStarted):
        # A start changes the handle times of later submissions only: in order, there are none yet.
        scopes = [(HANDLE_TIMES, event.annotator_id, key)] if _any_since(base, HANDLE_TIMES, key) else []
        return _inserted(base, "starts", [*key, event.annotator_id]), scopes
    if isinstance(event, ReviewCompleted):
        entry = [*key, event.annotator_id, str(event.verdict), event.reviewer_id]
        return _inserted(base, "reviews", entry), [(REVIEW_ROUNDS, event.annotator_id, key)]
    if isinstance(event, TaskCreated):  # one that declares gold
        if base["gold"] is not None and base["gold"][:2] <= key:
            return None, []  # an earlier declaration stands (or this one, replayed)
        changed = {**base, "gold": [*key, label_text(event.gold_label)]}
        return _newest(changed, occurred_ms), [(GOLD_ANSWERS, None, None)]
    if isinstance(event, TaskCompleted):
        if base["completed"] is not None and base["completed"] <= occurred_ms:
            return None, []
        return _newest({**base, "completed": occurred_ms}, occurred_ms), []
    return None, []


def _first_answer(submissions: list[list[Any]], annotator: str, key: Key) -> bool:
    """Whether an answer of `annotator` at `key` is their first on the task (none of theirs before it)."""
    for earlier in submissions:  # in time order: the annotator's first entry is their earliest
        if earlier[2] == annotator:
            return not _before(earlier, key)
    return True


def _before(entry: list[Any], key: Key) -> bool:
    """Whether `entry` sorts before `key` ([occurred_ms, event_id]), without slicing it."""
    return entry[0] < key[0] or (entry[0] == key[0] and entry[1] < key[1])


def _inserted(state: State, field: str, entry: list[Any]) -> dict[str, Any] | None:
    entries: list[list[Any]] = state[field]
    if not entries or _before(entries[-1], entry):  # the usual case: the newest of its kind
        return _newest({**state, field: [*entries, entry]}, entry[0])
    # A key [ts, id] sorts before the entries that start with it (a list sorts before its extensions).
    at = bisect.bisect_left(entries, entry[:2])
    if at < len(entries) and entries[at][:2] == entry[:2]:
        return None  # the same event again: a replay
    return _newest({**state, field: [*entries[:at], entry, *entries[at:]]}, entry[0])


def _newest(state: dict[str, Any], occurred_ms: int) -> dict[str, Any]:
    state["newest"] = max(state["newest"], occurred_ms)
    return state


def derived_rows(state: State | None, scope: Scope) -> dict[str, set[Row]]:
    """The rows the state implies, per table, for one derivation (of one annotator, or the task; of the
    entries from `since` on, or all)."""
    if state is None:
        return {}
    derivation, annotator, since = scope
    if since is not None and not _any_since(state, derivation, since):
        return {}  # no entry from `since` on: an event in order finds none in the state before it
    if derivation == HANDLE_TIMES:
        return {HANDLE_TIMES: _handle_times(state, annotator, since)}
    if derivation == GOLD_ANSWERS:
        return {GOLD_ANSWERS: _gold_answers(state, since)}
    if derivation == REVIEW_ROUNDS:
        return {REVIEW_ROUNDS: _review_rounds(state, annotator, since)}
    return _agreement(state)


def _any_since(state: State, derivation: str, since: Key) -> bool:
    """Whether the state holds an entry whose rows the derivation makes, at or after `since`."""
    entries = state["reviews"] if derivation == REVIEW_ROUNDS else state["submissions"]
    return bool(entries) and not _before(entries[-1], since)


def changes(before: State | None, after: State, scopes: Iterable[Scope]) -> dict[str, list[tuple[Row, int]]]:
    """Per table, the rows to take back (-1) and to add (+1) so that stored rows go from what
    `before` implies to what `after` implies."""
    out: dict[str, list[tuple[Row, int]]] = {}
    for scope in scopes:
        old, new = derived_rows(before, scope), derived_rows(after, scope)
        for table, now in new.items():
            was = old.pop(table, _NONE)
            if not was:  # the usual case, an event in order: only rows to add
                if now:
                    out.setdefault(table, []).extend((row, +1) for row in now)
            elif was != now:
                out.setdefault(table, []).extend([(row, -1) for row in was - now] + [(row, +1) for row in now - was])
        for table, was in old.items():  # tables the new state implies nothing in
            if was:
                out.setdefault(table, []).extend((row, -1) for row in was)
    return out


_NONE: frozenset[Row] = frozenset()


def stored_rows(table: str, rows: list[tuple[Row, int]], position: Position) -> list[list[Any]]:
    """Changes (row, sign) as their table stores them: the row's values, the sign, then the Kafka position."""
    if table == TASK_AGREEMENT:  # label counts: kept as pairs to compare, stored as a map
        return [[*row[:4], dict(row[4]), *row[5:], sign, *position] for row, sign in rows]
    return [[*row, sign, *position] for row, sign in rows]


def _handle_times(state: State, annotator: str | None, since: Key | None = None) -> set[Row]:
    project, task = state["project"], state["task"]
    rows: set[Row] = set()
    starts: list[list[Any]] | None = None  # the annotator's, made once a submission needs them
    for submitted_ms, event_id, submitter, _, duration_ms, _ in _from(state["submissions"], since):
        if submitter != annotator:
            continue
        if duration_ms is not None:
            rows.add((project, annotator, task, event_id, submitted_ms, duration_ms, "tool"))
            continue
        if starts is None:
            starts = [start for start in state["starts"] if start[2] == annotator]
        latest = bisect.bisect_left(starts, [submitted_ms, event_id])  # the starts before it
        if latest and 0 <= (handle_ms := submitted_ms - starts[latest - 1][0]) <= MAX_HANDLE_TIME_MS:
            rows.add((project, annotator, task, event_id, submitted_ms, handle_ms, "start_to_submit"))
    return rows


def _from(entries: list[list[Any]], since: Key | None) -> list[list[Any]]:
    """The entries at or after `since` (all for None)."""
    return entries if since is None else entries[bisect.bisect_left(entries, since) :]


def _gold_answers(state: State, since: Key | None = None) -> set[Row]:
    project, task = state["project"], state["task"]
    task_gold = state["gold"][2] if state["gold"] is not None else None
    rows: set[Row] = set()
    for submitted_ms, event_id, annotator, label, _, own_gold in _from(state["submissions"], since):
        gold = own_gold if own_gold is not None else task_gold
        if gold is not None:
            rows.add((project, annotator, task, event_id, submitted_ms, label, gold, label == gold))
    return rows


def _review_rounds(state: State, annotator: str | None, since: Key | None = None) -> set[Row]:
    project, task = state["project"], state["task"]
    rows: set[Row] = set()
    review_round, rejected_before = 0, False
    for reviewed_ms, event_id, reviewed, verdict, reviewer in state["reviews"]:
        if reviewed != annotator:
            continue
        review_round += 1
        if since is None or [reviewed_ms, event_id] >= since:
            first_pass, rework = verdict == "accepted" and not rejected_before, rejected_before
            rows.add(
                (project, task, annotator, reviewer, event_id, reviewed_ms, review_round, verdict, first_pass, rework)
            )
        rejected_before = rejected_before or verdict == "rejected"
    return rows


def _agreement(state: State) -> dict[str, set[Row]]:
    project, task = state["project"], state["task"]
    first: dict[str, tuple[int, str]] = {}  # annotator -> (occurred_ms, label) of the first answer
    for submitted_ms, _, annotator, label, _, _ in state["submissions"]:
        first.setdefault(annotator, (submitted_ms, label))
    if len(first) < 2:
        return {}
    counts: dict[str, int] = {}  # a plain dict: Counter costs more than the rest of the derivation
    labeled_ms = 0
    for submitted_ms, label in first.values():
        counts[label] = counts.get(label, 0) + 1
        labeled_ms = max(labeled_ms, submitted_ms)
    agreeing_pairs = sum(n * (n - 1) for n in counts.values())
    task_row = (project, task, labeled_ms, len(first), tuple(sorted(counts.items())), agreeing_pairs)
    pairs = {
        (project, task, max(first[a][0], first[b][0]), a, b, first[a][1], first[b][1])
        for a, b in combinations(sorted(first), 2)
    }
    return {TASK_AGREEMENT: {task_row}, PAIR_AGREEMENT: pairs}
