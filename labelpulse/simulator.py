"""Realistic labeling activity, reproducible from a seed: the demo load and the tests' input.

`generate(plan)` is pure: the same plan (seed, start, rate, anomalies) yields the same
messages, byte for byte. Every id a run makes holds its seed (task and session ids as text, event
ids as the name of a name-based UUID), so runs with different seeds never share one, however they
interleave; `random_seed()` gives a run without `--seed` its own. `send(...)` paces the messages
into Kafka and optionally records exactly what was sent, so tests can compute expected answers
independently.

The world: a few projects, each with its label set; annotators with their own speed and
accuracy; some tasks labeled by three annotators (for agreement), some honeypots with a
known answer, model pre-labels on some, reviews that accept, fix or reject, and skips.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import json
import random
import secrets
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import KafkaUnavailable, create_topics
from labelpulse.broker import kafka_reachable

PROJECTS: dict[str, tuple[str, ...]] = {
    "retail-products": ("shoe", "bag", "shirt", "hat", "watch"),
    "street-scenes": ("car", "pedestrian", "cyclist", "truck"),
    "support-tickets": ("billing", "bug", "feature", "account", "other"),
}
ANOMALIES = ("throughput-collapse", "click-through", "garbage")
# Event ids are name-based UUIDs (RFC 4122 version 5) of "seed/number" in this namespace.
EVENT_IDS = uuid.UUID("6f1c2a4e-0b7d-4c1e-9a53-3d2f8e5b7a10")


def random_seed() -> int:
    """A seed for a run that was given none: one of 2^31, so two such runs practically never share it."""
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class Annotator:
    annotator_id: str
    median_handle_ms: int
    accuracy: float
    skip_rate: float
    uses_model: float  # share of work done with a model pre-label


@dataclass(frozen=True)
class Plan:
    """What to simulate. Anomalies start `anomaly_after_s` seconds of simulated time in and last
    `anomaly_for_s` seconds (None: until the end)."""

    seed: int = 1
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    rate: float = 20.0  # events per second of simulated time
    anomalies: tuple[str, ...] = ()
    anomaly_after_s: float = 0.0
    anomaly_for_s: float | None = None
    overlap_share: float = 0.25  # tasks labeled by three annotators
    gold_share: float = 0.1
    review_share: float = 0.6
    annotators: int = 12  # a real crew does roughly 0.1-0.5 events/s each: scale it with a high rate


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    occurred_at: datetime


def annotators(rng: random.Random, count: int = 12) -> list[Annotator]:
    return [
        Annotator(
            annotator_id=f"ann-{number:02d}",
            median_handle_ms=rng.randint(4_000, 40_000),
            accuracy=rng.uniform(0.72, 0.97),
            skip_rate=rng.uniform(0.0, 0.08),
            uses_model=rng.uniform(0.0, 0.7),
        )
        for number in range(1, count + 1)
    ]


def generate(plan: Plan) -> Iterator[Message]:
    """Endless, time-ordered messages for `plan` (stop when you have enough)."""
    rng = random.Random(plan.seed)
    crew = annotators(rng, plan.annotators)
    reviewers = [f"rev-{n}" for n in range(1, max(3, plan.annotators // 4) + 1)]
    click_through = crew[0].annotator_id
    collapsed_project = next(iter(PROJECTS))
    events_per_task = 9.0  # about, with overlap and reviews: sets the task arrival rate
    task_interval_s = events_per_task / plan.rate if plan.rate > 0 else 0.05
    anomaly_at = plan.start + timedelta(seconds=plan.anomaly_after_s)
    anomaly_end = anomaly_at + timedelta(seconds=plan.anomaly_for_s) if plan.anomaly_for_s is not None else None

    def during_anomaly(moment: datetime) -> bool:
        return moment >= anomaly_at and (anomaly_end is None or moment < anomaly_end)

    queue: list[tuple[datetime, int, dict[str, Any] | bytes, str]] = []
    sequence = 0
    events_made = 0
    next_task_at = plan.start
    task_number = 0

    def push(at: datetime, payload: dict[str, Any] | bytes, key: str) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(queue, (at, sequence, payload, key))

    def event(event_type: str, at: datetime, project: str, task: str, **fields: Any) -> dict[str, Any]:
        nonlocal events_made
        events_made += 1
        return {
            "event_id": str(uuid.uuid5(EVENT_IDS, f"{plan.seed}/{events_made}")),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "project_id": project,
            "task_id": task,
            **fields,
        }

    while True:
        while not queue or next_task_at <= queue[0][0]:
            task_number += 1
            at = next_task_at
            next_task_at += timedelta(seconds=rng.expovariate(1 / task_interval_s))
            project = rng.choice(list(PROJECTS))
            # The seed in the id: two runs (two seeds) never share a task, however they interleave.
            for item in _task(rng, plan, at, project, f"{project}-{plan.seed}-{task_number}", crew, reviewers, event,
                              during_anomaly, click_through):  # fmt: skip
                push(*item)
            if "garbage" in plan.anomalies and during_anomaly(at) and rng.random() < 0.5:
                push(
                    at,
                    _garbage(rng, event(rng.choice(["annotation_submitted", "task_created"]), at, project, "x")),
                    "x",
                )
        at, _, payload, key = heapq.heappop(queue)
        collapsing = "throughput-collapse" in plan.anomalies and during_anomaly(at)
        if collapsing and key.startswith(f"{collapsed_project}-") and rng.random() < 0.95:
            continue  # the project's labeling all but stops: its tool sends (almost) nothing
        value = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        yield Message(key.encode(), value, at)


def _task(
    rng: random.Random,
    plan: Plan,
    at: datetime,
    project: str,
    task: str,
    crew: list[Annotator],
    reviewers: list[str],
    event: Any,
    during_anomaly: Callable[[datetime], bool],
    click_through: str,
) -> Iterator[tuple[datetime, dict[str, Any], str]]:
    labels = PROJECTS[project]
    truth = rng.choice(labels)
    gold = rng.random() < plan.gold_share
    prelabel = rng.choice(labels) if rng.random() < 0.7 else None
    created: dict[str, Any] = {}
    if gold:
        created = {"is_gold": True, "gold_label": truth}
    yield at, event("task_created", at, project, task, **created), task
    workers = rng.sample(crew, 3 if rng.random() < plan.overlap_share else 1)
    reviewed = False
    last_activity = at
    for annotator in workers:
        start = at + timedelta(seconds=rng.uniform(1, 30))
        yield start, event("task_assigned", start, project, task, annotator_id=annotator.annotator_id), task
        begin = start + timedelta(seconds=rng.uniform(0.5, 5))
        session = f"s-{plan.seed}-{annotator.annotator_id}-{begin:%Y%m%d%H}"
        yield begin, event("annotation_started", begin, project, task, annotator_id=annotator.annotator_id,
                           session_id=session), task  # fmt: skip
        clicking = "click-through" in plan.anomalies and annotator.annotator_id == click_through
        clicking = clicking and during_anomaly(begin)
        handle_ms = 1_000 if clicking else max(800, int(rng.lognormvariate(0, 0.5) * annotator.median_handle_ms))
        done = begin + timedelta(milliseconds=handle_ms)
        common = {"annotator_id": annotator.annotator_id, "session_id": session, "duration_ms": handle_ms}
        last_activity = max(last_activity, done)
        if not clicking and rng.random() < annotator.skip_rate:
            yield done, event("annotation_skipped", done, project, task, reason="unclear item", **common), task
            continue
        assisted = prelabel is not None and rng.random() < annotator.uses_model
        if clicking:
            label = rng.choice(labels)
        elif prelabel is not None and assisted and rng.random() < 0.85:
            label = prelabel
        else:
            label = truth if rng.random() < annotator.accuracy else rng.choice(labels)
        fields: dict[str, Any] = {"label": label, **common}
        if assisted:
            fields |= {"source": "model_assisted", "model_label": prelabel, "model_confidence": round(rng.random(), 3)}
        yield done, event("annotation_submitted", done, project, task, **fields), task
        if not reviewed and rng.random() < plan.review_share:
            reviewed = True
            review_at = done + timedelta(seconds=rng.uniform(10, 300))
            correct = label == truth
            verdict = ("accepted" if rng.random() < 0.9 else "fixed") if correct else rng.choice(["fixed", "rejected"])
            review: dict[str, Any] = {"reviewer_id": rng.choice(reviewers), "annotator_id": annotator.annotator_id,
                                      "verdict": verdict, "duration_ms": rng.randint(2_000, 25_000)}  # fmt: skip
            if verdict == "rejected":
                review["reason"] = rng.choice(["wrong class", "incomplete", "guideline violation"])
            if verdict == "fixed":
                review["label"] = truth
            yield review_at, event("review_completed", review_at, project, task, **review), task
            if verdict == "rejected":  # the annotator reworks it and it is reviewed again: round 2
                review_at += timedelta(seconds=rng.uniform(60, 600))
                again = {**review, "verdict": "accepted" if rng.random() < 0.8 else "fixed"}
                again.pop("reason", None)
                if again["verdict"] == "fixed":
                    again["label"] = truth
                yield review_at, event("review_completed", review_at, project, task, **again), task
            last_activity = max(last_activity, review_at)
    # The task completes after all of its work, however the annotators' timelines interleave.
    finish = last_activity + timedelta(seconds=1)
    yield finish, event("task_completed", finish, project, task), task


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
    """How the messages reach Kafka, as from a fleet of real producers: each late by up to `disorder_s`
    seconds of simulated time (so some overtake others), and a share `duplicates` sent twice (a retry)."""

    disorder_s: float = 0.0
    duplicates: float = 0.0
    seed: int = 1

    def order(self, messages: Iterable[Message]) -> Iterator[tuple[datetime, Message]]:
        """(when it is sent, the message), in sending order. Deterministic for a seed."""
        if not self.disorder_s and not self.duplicates:
            yield from ((message.occurred_at, message) for message in messages)
            return
        rng = random.Random(f"delivery-{self.seed}")
        due: list[tuple[datetime, int, Message]] = []
        for number, message in enumerate(messages):
            sent_at = message.occurred_at + timedelta(seconds=rng.uniform(0, self.disorder_s))
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


def read_recording(path: Path) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message a `send(..., record=path)` sent, in order."""
    with path.open("rb") as lines:
        return [(entry["key"].encode(), base64.b64decode(entry["value"])) for entry in map(json.loads, lines)]


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
        bar = ""
        if self.total and self.terminal:
            filled = int(30 * sent / self.total)
            bar = "[" + "#" * filled + "." * (30 - filled) + "] "
        line = f"{bar}{sent:,}{of} events sent, {self._rate(now):,.0f}/s{self._target()}"
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
    recording = record.open("wb") if record else None
    try:
        for sent_at, message in delivery.order(generate(plan)):
            if (count is not None and sent >= count) or (deadline is not None and time.monotonic() >= deadline):
                break
            if realtime:
                due_at = wall_start + (sent_at - now_at_start).total_seconds()
                if progress and due_at > time.monotonic():
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
    print(
        f"sending simulated events to {kafka.events_topic} at {kafka.bootstrap_servers} "
        f"({f'{plan.rate:g}/s' if realtime else 'as fast as possible'}; seed {plan.seed}"
        + (f"; anomalies: {', '.join(plan.anomalies)}" if plan.anomalies else "")
        + (f"; up to {delivery.disorder_s:g}s out of order" if delivery.disorder_s else "")
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
