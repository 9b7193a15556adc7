"""Realistic labeling activity, reproducible from a seed: the demo load and the tests' input.

`generate(plan)` is pure: the same plan (seed, start, rate, anomalies) yields the same
messages, byte for byte. Every id a run makes holds its seed (task and session ids as text, event
ids as the name of a name-based UUID), so runs with different seeds never share one, however they
interleave; `random_seed()` gives a run without `--seed` its own. `send(...)` paces the messages
into Kafka and optionally records exactly what was sent, so tests can compute expected answers
independently.

The world: three projects, each with its label set and its crew; annotators with their own speed,
accuracy, skip rate and use of model pre-labels (the same people in every run: ann-01 is always
ann-01); some tasks labeled by three annotators (for agreement), some honeypots with a known answer,
model pre-labels on some, reviews that accept, fix or reject (then a second round), and skips.

The crew works as people do. Each annotator takes one task at a time from their project's queue,
opens it, answers after their handle time and moves on; works 30-90 min between breaks of 3-15 min
and shifts of 2-4 h (0.5-1.5 h off between); idles when the queue is empty. Tasks arrive in small batches as the stream
needs them for its rate, and now and then a bulk import of 5-10 minutes of work arrives, which the
crew works down. The crew is sized for the rate at 85 % utilization, so it keeps up. What the
events then show, and tests/test_simulator.py checks with pandas (idle threshold 100 s):
- events per second: the rate from the first minute on; long runs about 2 % above it (bulk imports);
- handle time: median 30-60 s overall (each annotator 0.75-1.35x a project's typical 30, 40 or 55 s),
  a long tail (p90 about 2x the median);
- an annotator does about one answer per handle time while active: active seconds per answer are
  1.1-1.8x the median handle time across the crew, 0.5-2.5x for each annotator (opening an item
  and moving on add to it; a task longer than the idle threshold counts as idle), 30-120 answers
  per active hour;
- sessions: a new one after every break, shift start or idle spell over 100 s (and, as the metric
  is defined, after a task longer than that): several a shift;
- backlog (created - completed): a few minutes of work in progress and review, a jump at each bulk
  import worked down within minutes; ETA = backlog / last hour's completions well under an hour.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import json
import math
import random
import secrets
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import KafkaUnavailable, create_topics
from labelpulse.broker import kafka_reachable
from labelpulse.terminal import bar

PROJECTS: dict[str, tuple[str, ...]] = {
    "retail-products": ("shoe", "bag", "shirt", "hat", "watch"),
    "street-scenes": ("car", "pedestrian", "cyclist", "truck"),
    "support-tickets": ("billing", "bug", "feature", "account", "other"),
}
ANOMALIES = ("throughput-collapse", "click-through", "garbage")
PROJECT_IDS = tuple(PROJECTS)
# Event ids are name-based UUIDs (RFC 4122 version 5) of "seed/number" in this namespace.
EVENT_IDS = uuid.UUID("6f1c2a4e-0b7d-4c1e-9a53-3d2f8e5b7a10")


def random_seed() -> int:
    """A seed for a run that was given none: one of 2^31, so two such runs practically never share it."""
    return secrets.randbelow(2**31)


# A typical annotator's median handle time per project, seconds: a ticket is read quicker than a street
# scene is boxed. Each annotator is 0.75-1.35 times as slow as typical.
TYPICAL_HANDLE_S = {"retail-products": 40.0, "street-scenes": 55.0, "support-tickets": 30.0}
HANDLE_SPREAD = 0.45  # sigma of ln(handle time) around an annotator's median: the long tail
# How people work, in seconds of simulated time (an annotator's own times are divided by the pace).
OPEN_S = (1.0, 4.0)  # task_assigned -> annotation_started: the item loads
NEXT_S = (2.0, 12.0)  # a submission -> the next assignment
WAKE_S = (1.0, 6.0)  # an idle annotator notices new work
STRETCH_S = (1_800.0, 5_400.0)  # work between breaks
BREAK_S = (180.0, 900.0)  # longer than the idle threshold (100 s): a break ends a session
SHIFT_S = (7_200.0, 14_400.0)  # on shift
OFF_S = (1_800.0, 5_400.0)  # off between shifts
ON_SHIFT = sum(SHIFT_S) / (sum(SHIFT_S) + sum(OFF_S))
AVAILABLE = ON_SHIFT * sum(STRETCH_S) / (sum(STRETCH_S) + sum(BREAK_S))  # share of time at work
REVIEW_AFTER_S = (20.0, 300.0)
REWORK_S = (60.0, 600.0)  # a rejection -> the reworked answer's second review
UTILIZATION = 0.85  # of the crew's capacity the rate needs: the headroom that works a backlog down
BULK_EVERY_S, BULK_SIZE_S, BULK_OVER_S = (2_400.0, 4_800.0), (300.0, 600.0), 30.0


@dataclass(frozen=True)
class Annotator:
    """One person, the same in every run (their traits follow from their number, not the seed)."""

    annotator_id: str
    project_id: str
    median_handle_ms: int
    accuracy: float
    skip_rate: float
    uses_model: float  # share of work done with a model pre-label

    @property
    def answers_per_s(self) -> float:
        """Answers per second on average over shifts and breaks, with work always waiting."""
        mean_handle_s = self.median_handle_ms / 1000 * math.exp(HANDLE_SPREAD**2 / 2)
        return AVAILABLE / (mean_handle_s + sum(OPEN_S) / 2 + sum(NEXT_S) / 2)


@dataclass(frozen=True)
class Plan:
    """What to simulate. `rate` is events per second, reached from the first second: the crew is sized for
    it (`annotators` None) with some headroom, and tasks are imported as the stream needs them. A given
    `annotators` keeps the crew at that size; if it is too small for the rate, everyone works faster than
    people do (compressed time, for benchmarks). Anomalies start `anomaly_after_s` seconds of simulated
    time in and last `anomaly_for_s` seconds (None: until the end)."""

    seed: int = 1
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    rate: float = 20.0  # events per second of simulated time
    anomalies: tuple[str, ...] = ()
    anomaly_after_s: float = 0.0
    anomaly_for_s: float | None = None
    overlap_share: float = 0.25  # tasks labeled by three annotators
    gold_share: float = 0.1
    review_share: float = 0.6
    annotators: int | None = None


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    occurred_at: datetime


def annotator(number: int) -> Annotator:
    rng = random.Random(f"annotator-{number}")
    project = PROJECT_IDS[number % len(PROJECT_IDS)]
    return Annotator(
        annotator_id=f"ann-{number:02d}",
        project_id=project,
        median_handle_ms=int(TYPICAL_HANDLE_S[project] * rng.uniform(0.75, 1.35) * 1000),
        accuracy=rng.uniform(0.72, 0.97),
        skip_rate=rng.uniform(0.0, 0.06),
        uses_model=rng.uniform(0.0, 0.7),
    )


def events_per_task(plan: Plan) -> float:
    """About: created, completed, three per answer (assigned, started, submitted) and the reviews."""
    return 2 + 3 * (1 + 2 * plan.overlap_share) + 1.1 * plan.review_share


def crew(plan: Plan) -> tuple[list[Annotator], float]:
    """The annotators and the pace they work at (1: as people do; 2: twice as fast)."""
    per_answer = events_per_task(plan) / (1 + 2 * plan.overlap_share)
    if plan.annotators is not None:
        members = [annotator(number) for number in range(1, plan.annotators + 1)]
        capacity = sum(member.answers_per_s for member in members) * per_answer * UTILIZATION
        return members, max(1.0, plan.rate / capacity)
    members, capacity = [], 0.0
    while capacity < plan.rate or len(members) < len(PROJECT_IDS):
        members.append(annotator(len(members) + 1))
        capacity += members[-1].answers_per_s * per_answer * UTILIZATION
    return members, 1.0


# What an annotator is doing; a wake-up is scheduled for everyone but the idle.
OFF, BREAK, IDLE, WAKING, WORKING = range(5)


@dataclass
class _Person:
    who: Annotator
    status: int
    epoch: int = 0  # a wake-up of an older epoch was cancelled
    shift_end: float = 0.0
    break_at: float = 0.0
    session: int = 0


@dataclass
class _Task:
    task_id: str
    project_id: str
    truth: str
    prelabel: str | None
    to_review: bool
    open_answers: int  # answers nobody has taken yet
    workers: set[str] = field(default_factory=set)
    last_activity: float = 0.0


class _World:
    """A discrete-event simulation: one heap of things due (a message to emit, or an action that
    schedules more), in time order. Times are seconds since the plan's start."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        members, self.pace = crew(plan)
        self.people = [_Person(member, OFF) for member in members]
        self.reviewers = [f"rev-{n}" for n in range(1, max(3, len(members) // 10) + 1)]
        self.due: list[tuple[float, int, Callable[[float], Message | None]]] = []
        self.sequence = self.events_made = self.tasks_made = 0
        self.queue = {project: deque[_Task]() for project in PROJECT_IDS}
        self.idle = {project: deque[_Person]() for project in PROJECT_IDS}
        answers = {project: 0.0 for project in PROJECT_IDS}
        for member in members:
            answers[member.project_id] += member.answers_per_s * self.pace
        answers_per_task = 1 + 2 * plan.overlap_share
        total = sum(answers.values())
        # Per project: events per second the stream owes, and tasks per second the crew can do.
        self.rate = {project: plan.rate * answers[project] / total for project in PROJECT_IDS}
        self.capacity = {project: answers[project] / answers_per_task for project in PROJECT_IDS}
        self.owed = dict.fromkeys(PROJECT_IDS, 0.0)
        self.batch = {project: self.batch_size(project) for project in PROJECT_IDS}
        self.anomaly_end = None if plan.anomaly_for_s is None else plan.anomaly_after_s + plan.anomaly_for_s

    # -- the heap

    def at(self, moment: float, action: Callable[[float], Message | None]) -> None:
        self.sequence += 1
        heapq.heappush(self.due, (moment, self.sequence, action))

    def post(self, moment: float, payload: dict[str, Any] | bytes, task: _Task, counted: bool = True) -> None:
        """Emit at `moment`, keyed by its task; `counted` ones pay what the stream owes the rate when they go
        out (not garbage, nor the tasks imported for it: those are paid for when imported)."""
        key = task.task_id if counted or isinstance(payload, dict) else "x"

        def emit(now: float) -> Message:
            if counted:
                self.owed[task.project_id] -= 1
            value = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
            return Message(key.encode(), value, self.plan.start + timedelta(seconds=now))

        self.at(moment, emit)

    def event(self, event_type: str, moment: float, task: _Task, **fields: Any) -> dict[str, Any]:
        self.events_made += 1
        occurred = self.plan.start + timedelta(seconds=moment)
        return {
            "event_id": str(uuid.uuid5(EVENT_IDS, f"{self.plan.seed}/{self.events_made}")),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "project_id": task.project_id,
            "task_id": task.task_id,
            "source_system": "simulator",
            **fields,
        }

    def during_anomaly(self, anomaly: str, moment: float) -> bool:
        return (
            anomaly in self.plan.anomalies
            and moment >= self.plan.anomaly_after_s
            and (self.anomaly_end is None or moment < self.anomaly_end)
        )

    def messages(self) -> Iterator[Message]:
        rng = self.rng
        for number, person in enumerate(self.people):  # the crew at the start: most on shift, mid-task
            opens = number < len(PROJECT_IDS)  # each project's first annotator opens it, for a whole shift
            if opens or rng.random() < ON_SHIFT:
                person.status, person.session = WORKING, 1
                shift_s = rng.uniform(*SHIFT_S)
                person.shift_end = (shift_s if opens else rng.uniform(0, shift_s)) / self.pace
                person.break_at = rng.uniform(0, rng.uniform(*STRETCH_S)) / self.pace
                self.wake_at(person, rng.uniform(0, AVAILABLE / person.who.answers_per_s) / self.pace)
            else:
                self.wake_at(person, rng.uniform(0, rng.uniform(*OFF_S)) / self.pace)
        self.at(0.0, self.tick)
        for project in PROJECT_IDS:
            self.at(rng.uniform(300, 900), partial(self.bulk_import, project=project))
        if "click-through" in self.plan.anomalies:
            self.at(self.plan.anomaly_after_s, self.start_clicking)
        collapsed = f"{PROJECT_IDS[0]}-".encode()
        while True:
            now, _, action = heapq.heappop(self.due)
            message = action(now)
            if message is None:
                continue
            collapsing = self.during_anomaly("throughput-collapse", now) and message.key.startswith(collapsed)
            if collapsing and rng.random() < 0.95:
                continue  # the project's labeling all but stops: its tool sends (almost) nothing
            yield message

    # -- tasks arrive

    def batch_size(self, project: str) -> int:
        """Tasks arrive in small batches (bursts) of a few seconds of the project's work."""
        mean = max(1.0, 5 * self.capacity[project] * UTILIZATION)
        return 1 + int(self.rng.expovariate(1 / mean))

    def tick(self, now: float) -> None:
        """Every second: import tasks for the events the stream still owes the rate (paying their
        task_created at once, the rest as it is sent), unless the crew is already ten minutes behind.
        Owed events are banked for at most 30 s, over-paid ones forgiven past 60 s."""
        for project, rate in self.rate.items():
            self.owed[project] = max(-60 * rate, min(30 * rate, self.owed[project] + rate))
            while self.owed[project] >= self.batch[project] and len(self.queue[project]) < self.backlog_cap(project):
                for _ in range(self.batch[project]):
                    self.at(now + self.rng.random(), partial(self.new_task, project=project))
                self.owed[project] -= self.batch[project]
                self.batch[project] = self.batch_size(project)
        self.at(now + 1, self.tick)

    def backlog_cap(self, project: str) -> float:
        return max(50.0, 600 * self.capacity[project])

    def bulk_import(self, now: float, project: str) -> None:
        """Now and then a lead uploads a big batch (minutes of the crew's work), over half a minute: the
        backlog jumps, then is worked down. Its task_created events come on top of the rate."""
        if len(self.queue[project]) < self.backlog_cap(project):
            size = max(1, round(self.capacity[project] * self.rng.uniform(*BULK_SIZE_S)))
            for number in range(size):
                self.at(now + BULK_OVER_S * number / size, partial(self.new_task, project=project))
        self.at(now + self.rng.uniform(*BULK_EVERY_S), partial(self.bulk_import, project=project))

    def new_task(self, now: float, project: str) -> None:
        rng = self.rng
        self.tasks_made += 1
        labels = PROJECTS[project]
        truth = rng.choice(labels)
        # A model pre-labels most tasks, right about four times in five.
        prelabel = (truth if rng.random() < 0.8 else rng.choice(labels)) if rng.random() < 0.7 else None
        task = _Task(
            # The seed in the id: two runs (two seeds) never share a task, however they interleave.
            task_id=f"{project}-{self.plan.seed}-{self.tasks_made}",
            project_id=project,
            truth=truth,
            prelabel=prelabel,
            to_review=rng.random() < self.plan.review_share,
            open_answers=3 if rng.random() < self.plan.overlap_share else 1,
            last_activity=now,
        )
        gold = {"is_gold": True, "gold_label": task.truth} if rng.random() < self.plan.gold_share else {}
        self.post(now, self.event("task_created", now, task, **gold), task, counted=False)
        if self.during_anomaly("garbage", now) and rng.random() < 0.5:
            broken = self.event(rng.choice(["annotation_submitted", "task_created"]), now, task, task_id="x")
            self.post(now, _garbage(rng, broken), task, counted=False)
        self.queue[project].append(task)
        for _ in range(min(task.open_answers, len(self.idle[project]))):
            person = self.idle[project].popleft()
            person.status = WAKING
            notices = rng.uniform(0.3, 1.0) if self.clicking(person, now) else rng.uniform(*WAKE_S) / self.pace
            self.wake_at(person, now + notices)

    # -- people work

    def wake_at(self, person: _Person, moment: float) -> None:
        epoch = person.epoch
        self.at(moment, lambda now: self.wake(now, person, epoch))

    def clicking(self, person: _Person, moment: float) -> bool:
        return person is self.people[0] and self.during_anomaly("click-through", moment)

    def start_clicking(self, now: float) -> None:
        """The clicking annotator starts at once, from a break, off shift or idle."""
        person = self.people[0]
        if person.status in (OFF, BREAK, IDLE):
            if person.status == IDLE:
                self.idle[person.who.project_id].remove(person)
                person.status = WAKING
            person.epoch += 1
            self.wake_at(person, now)

    def wake(self, now: float, person: _Person, epoch: int) -> None:
        if epoch != person.epoch:
            return
        rng, pace = self.rng, self.pace
        if person.status in (OFF, BREAK):  # back to work: a new session
            if person.status == OFF:
                person.shift_end = now + rng.uniform(*SHIFT_S) / pace
            person.break_at = now + rng.uniform(*STRETCH_S) / pace
            person.session += 1
        if not self.clicking(person, now):
            if now >= person.shift_end:
                person.status = OFF
                self.wake_at(person, now + rng.uniform(*OFF_S) / pace)
                return
            if now >= person.break_at:
                person.status = BREAK
                self.wake_at(person, now + rng.uniform(*BREAK_S) / pace)
                return
        queue = self.queue[person.who.project_id]
        found = next(
            (
                index
                for index, task in enumerate(itertools.islice(queue, 10))
                if person.who.annotator_id not in task.workers
            ),
            None,
        )
        if found is None:
            person.status = IDLE
            if self.clicking(person, now):  # first in line for new work: clicking through, they race for it
                self.idle[person.who.project_id].appendleft(person)
            else:
                self.idle[person.who.project_id].append(person)
            return
        task = queue[found]
        task.open_answers -= 1
        if not task.open_answers:
            del queue[found]
        person.status = WORKING
        done = self.answer(now, person, task)
        self.wake_at(person, done + (rng.uniform(1, 3) if self.clicking(person, now) else rng.uniform(*NEXT_S) / pace))

    def answer(self, now: float, person: _Person, task: _Task) -> float:
        """`person` takes one answer of `task` now: its events, its review, and the task's completion once
        it was the last answer taken. Returns when the answer is done."""
        rng, who = self.rng, person.who
        task.workers.add(who.annotator_id)
        clicking = self.clicking(person, now)
        self.post(now, self.event("task_assigned", now, task, annotator_id=who.annotator_id), task)
        begin = now + (rng.uniform(0.3, 1.0) if clicking else rng.uniform(*OPEN_S) / self.pace)
        session = f"s-{self.plan.seed}-{who.annotator_id}-{person.session}"
        self.post(begin, self.event("annotation_started", begin, task, annotator_id=who.annotator_id,
                                    session_id=session), task)  # fmt: skip
        if clicking:
            handle_ms = 1_000
        else:
            natural = rng.lognormvariate(math.log(who.median_handle_ms), HANDLE_SPREAD)
            handle_ms = max(1, int(max(3_000.0, natural) / self.pace))
        done = begin + handle_ms / 1000
        task.last_activity = max(task.last_activity, done)
        common = {"annotator_id": who.annotator_id, "session_id": session, "duration_ms": handle_ms}
        if not clicking and rng.random() < who.skip_rate:
            skipped = self.event("annotation_skipped", done, task, reason="unclear item", **common)
            self.post(done, skipped, task)
        else:
            self.submit(done, who, task, clicking, common)
        if not task.open_answers:  # the task completes after all of its work
            finish = task.last_activity + 1
            self.post(finish, self.event("task_completed", finish, task), task)
        return done

    def submit(self, done: float, who: Annotator, task: _Task, clicking: bool, common: dict[str, Any]) -> None:
        rng, labels = self.rng, PROJECTS[task.project_id]
        assisted = task.prelabel is not None and rng.random() < who.uses_model
        if clicking:
            label = rng.choice(labels)
        elif task.prelabel is not None and assisted and rng.random() < 0.85:
            label = task.prelabel
        else:
            label = task.truth if rng.random() < who.accuracy else rng.choice(labels)
        fields: dict[str, Any] = {"label": label, **common}
        if assisted:
            fields |= {
                "source": "model_assisted",
                "model_label": task.prelabel,
                "model_confidence": round(rng.random(), 3),
            }
        self.post(done, self.event("annotation_submitted", done, task, **fields), task)
        if not task.to_review:
            return
        task.to_review = False  # one answer per task is reviewed
        review_at = done + rng.uniform(*REVIEW_AFTER_S)
        correct = label == task.truth
        verdict = ("accepted" if rng.random() < 0.9 else "fixed") if correct else rng.choice(["fixed", "rejected"])
        review: dict[str, Any] = {"reviewer_id": rng.choice(self.reviewers), "annotator_id": who.annotator_id,
                                  "verdict": verdict, "duration_ms": rng.randint(2_000, 25_000)}  # fmt: skip
        if verdict == "rejected":
            review["reason"] = rng.choice(["wrong class", "incomplete", "guideline violation"])
        if verdict == "fixed":
            review["label"] = task.truth
        self.post(review_at, self.event("review_completed", review_at, task, **review), task)
        if verdict == "rejected":  # the annotator reworks it and it is reviewed again: round 2
            review_at += rng.uniform(*REWORK_S)
            again = {**review, "verdict": "accepted" if rng.random() < 0.8 else "fixed"}
            again.pop("reason", None)
            if again["verdict"] == "fixed":
                again["label"] = task.truth
            self.post(review_at, self.event("review_completed", review_at, task, **again), task)
        task.last_activity = max(task.last_activity, review_at)


def generate(plan: Plan) -> Iterator[Message]:
    """Endless, time-ordered messages for `plan` (stop when you have enough)."""
    return _World(plan).messages()


def _garbage(rng: random.Random, valid: dict[str, Any]) -> bytes:
    """One broken message, of a kind a misbehaving producer really sends."""
    kind = rng.choice(["truncated", "not-json", "missing-field", "unknown-type", "negative-duration", "wrong-type"])
    if kind == "truncated":
        return json.dumps(valid).encode()[: rng.randint(5, 40)]
    if kind == "not-json":
        return b"\x00\xffGARBAGE " + bytes(rng.getrandbits(8) for _ in range(12))
    broken = dict(valid)
    if kind == "missing-field":
        broken.pop("project_id")
    elif kind == "unknown-type":
        broken["event_type"] = "annotation_exploded"
    elif kind == "negative-duration":
        broken |= {"event_type": "annotation_submitted", "annotator_id": "ann-x", "label": "?", "duration_ms": -5}
    else:
        broken["schema_version"] = "one"
    return json.dumps(broken).encode()


@dataclass(frozen=True)
class Delivery:
    """How the messages reach Kafka, as from a fleet of real producers: a share `late` of them (all by
    default) each late by up to `disorder_s` seconds of simulated time, so they are overtaken by others
    (the rest are sent as they occur), and a share `duplicates` sent twice (a retry)."""

    disorder_s: float = 0.0
    duplicates: float = 0.0
    seed: int = 1
    late: float = 1.0

    def order(self, messages: Iterable[Message]) -> Iterator[tuple[datetime, Message]]:
        """(when it is sent, the message), in sending order. Deterministic for a seed."""
        if not self.disorder_s and not self.duplicates:
            yield from ((message.occurred_at, message) for message in messages)
            return
        rng = random.Random(f"delivery-{self.seed}")
        due: list[tuple[datetime, int, Message]] = []
        for number, message in enumerate(messages):
            delay_s = rng.uniform(0, self.disorder_s)
            # Drawn only for a share below 1: every event late draws what it always did (a seed's delivery stays).
            if self.late < 1 and rng.random() >= self.late:
                delay_s = 0.0  # one of the producers that keep up
            sent_at = message.occurred_at + timedelta(seconds=delay_s)
            heapq.heappush(due, (sent_at, 2 * number, message))
            if rng.random() < self.duplicates:  # the retry of a send whose answer was lost
                again = sent_at + timedelta(seconds=rng.uniform(0, max(self.disorder_s, 1.0)))
                heapq.heappush(due, (again, 2 * number + 1, message))
            while due and due[0][0] <= message.occurred_at:  # nothing generated later can be due earlier
                sent_at, _, ready = heapq.heappop(due)
                yield sent_at, ready
        while due:
            sent_at, _, ready = heapq.heappop(due)
            yield sent_at, ready


def record_line(message: Message) -> bytes:
    """One JSON line per sent message; the value base64-encoded, since garbage is not text."""
    entry = {"key": message.key.decode(), "value": base64.b64encode(message.value).decode()}
    return json.dumps(entry).encode() + b"\n"


def recorded_message(line: bytes) -> tuple[bytes, bytes]:
    """(key, value) of one line `record_line` wrote."""
    entry = json.loads(line)
    return entry["key"].encode(), base64.b64decode(entry["value"])


def read_recording(path: Path) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message a `send(..., record=path)` sent, in order."""
    with path.open("rb") as lines:
        return [recorded_message(line) for line in lines]


# -- sending ----------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What `generate` says on stderr while it sends. On a terminal one line redrawn in place (`\\r`)
    twice a second; elsewhere (a log file, a pipe) one line every `every_s` seconds, so lines never pile
    up; with `quiet` none. The last line, always, says the real rate against the target: a run from a
    past start counts apart what it backfilled at once."""

    total: int | None
    target_rate: float | None  # events per second; None: as fast as possible
    quiet: bool = False
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    every_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sent: int = 0
    backfilled: int | None = None  # sent before the first message that had to wait for its time
    started: float = field(init=False)
    live_since: float = field(init=False)
    _last_line: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.live_since = self._last_line = self.clock()
        self.terminal = self.stream.isatty()

    def update(self, sent: int) -> None:
        self.sent = sent
        now = self.clock()
        if self.quiet or now - self._last_line < (0.5 if self.terminal else self.every_s):
            return
        self._last_line = now
        of = f"/{self.total:,}" if self.total else ""
        shown = f"{bar(sent, self.total, 30)} " if self.total and self.terminal else ""
        line = f"{shown}{sent:,}{of} events sent, {self._rate(now):,.0f}/s{self._target()}"
        self.stream.write(f"\r{line} " if self.terminal else f"{line}\n")
        self.stream.flush()

    def caught_up(self, sent: int) -> None:
        """Everything due by now is sent (`sent` of it): from here on messages wait for their time."""
        if self.backfilled is None:
            self.backfilled, self.live_since = sent, self.clock()

    def done(self) -> None:
        now = self.clock()
        if self.terminal and not self.quiet and self.sent:
            self.stream.write("\r")
        live = self.sent - (self.backfilled or 0)
        took = f"{now - self.live_since:,.1f} s"
        if self.backfilled:
            line = f"{self.backfilled:,} events backfilled at once, then {live:,} in {took}"
        else:
            line = f"{self.sent:,} events sent in {took}"
        self.stream.write(f"{line}: {self._rate(now):,.1f}/s{self._target()}\n")
        self.stream.flush()

    def _rate(self, now: float) -> float:
        return (self.sent - (self.backfilled or 0)) / max(now - self.live_since, 1e-9)

    def _target(self) -> str:
        return f" (target {self.target_rate:g}/s)" if self.target_rate else " (as fast as possible)"


async def send(
    plan: Plan,
    *,
    kafka: KafkaSettings,
    count: int | None = None,
    duration_s: float | None = None,
    realtime: bool = True,
    record: Path | None = None,
    progress: Progress | None = None,
    delivery: Delivery = Delivery(),
    producer: Any = None,
) -> int:
    """Send messages of `plan` to the events topic until `count` messages or `duration_s` seconds.

    With `realtime`, a message is sent when the wall clock reaches its occurred_at (so rate is
    real events per second); a plan that starts in the past first sends everything up to now as
    fast as it can (a backfill), then goes on in real time. Without, as fast as the broker takes them.
    `record` gets every message Kafka acknowledged, in order; `producer` replaces aiokafka's (tests).
    """
    if producer is None:
        from aiokafka import AIOKafkaProducer

        await create_topics(kafka)  # with the partitions the workers expect, not the broker's default
        producer = AIOKafkaProducer(**kafka.client_options(), linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    # Sent but not yet acknowledged, in order: a message is recorded only once Kafka has it.
    unacknowledged: deque[tuple[asyncio.Future[Any], Message]] = deque()

    def record_acknowledged(wait: bool = False) -> None:
        while unacknowledged and (wait or unacknowledged[0][0].done()):
            acknowledged, message = unacknowledged.popleft()
            acknowledged.result()  # raises what Kafka answered instead of an acknowledgement
            if recording:
                recording.write(record_line(message))

    sent = 0
    deadline = time.monotonic() + duration_s if duration_s else None
    wall_start = time.monotonic()
    now_at_start = max(plan.start, datetime.now(UTC))  # occurred_at due at wall_start: the past is due at once
    backfill = now_at_start - plan.start > timedelta(seconds=1)  # not the moments a producer takes to start
    recording = record.open("wb") if record else None
    try:
        for sent_at, message in delivery.order(generate(plan)):
            if (count is not None and sent >= count) or (deadline is not None and time.monotonic() >= deadline):
                break
            if realtime:
                due_at = wall_start + (sent_at - now_at_start).total_seconds()
                if progress and backfill and due_at > time.monotonic():
                    progress.caught_up(sent)
                while (wait := due_at - time.monotonic()) > 0:
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(min(wait, 0.5))
                if deadline is not None and time.monotonic() >= deadline:
                    break
            unacknowledged.append((await producer.send(kafka.events_topic, message.value, key=message.key), message))
            record_acknowledged()
            sent += 1
            if progress:
                progress.update(sent)
        await producer.flush()
        await asyncio.gather(*(acknowledged for acknowledged, _ in unacknowledged), return_exceptions=True)
        record_acknowledged(wait=True)
    finally:
        await producer.stop()
        if recording:
            recording.close()
        if progress:
            progress.done()
    return sent


def run_simulator(
    plan: Plan,
    kafka: KafkaSettings,
    delivery: Delivery = Delivery(),
    *,
    count: int | None = None,
    duration_s: float | None = None,
    realtime: bool = True,
    record: Path | None = None,
    quiet: bool = False,
) -> int:
    """`labelpulse generate`: send `plan` as send() does, saying what goes where on stderr, progress
    (see Progress) and at the end the real rate against the target. KafkaUnavailable when no Kafka
    answers or it refuses us."""
    if not kafka_reachable(kafka, timeout_s=3):
        raise KafkaUnavailable(
            f"no Kafka answers at {kafka.bootstrap_servers}; start the embedded broker with `labelpulse broker` "
            "(or everything with `labelpulse up`), or set LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"
        )
    members, pace = crew(plan)
    team = f"{len(members):,} annotators" + (f" working {pace:,.0f}x as fast as people" if pace > 1 else "")
    late = "" if delivery.late == 1 else f"{delivery.late * 100:g}% of events "
    print(
        f"sending simulated events to {kafka.events_topic} at {kafka.bootstrap_servers} "
        f"({f'{plan.rate:g} events/s' if realtime else 'as fast as possible'} from {team}; seed {plan.seed}"
        + (f"; anomalies: {', '.join(plan.anomalies)}" if plan.anomalies else "")
        + (f"; {late}up to {delivery.disorder_s:g}s late" if delivery.disorder_s else "")
        + (f"; {delivery.duplicates:.0%} sent twice" if delivery.duplicates else "")
        + ")",
        file=sys.stderr,
        flush=True,
    )
    sent = asyncio.run(
        send(
            plan,
            kafka=kafka,
            count=count,
            duration_s=duration_s,
            realtime=realtime,
            record=record,
            progress=Progress(total=count, target_rate=plan.rate if realtime else None, quiet=quiet),
            delivery=delivery,
        )
    )
    if record:
        print(f"recorded {sent} messages in {record}", file=sys.stderr)
    return 0
