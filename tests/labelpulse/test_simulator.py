"""The simulator: the same seed gives the same bytes and different seeds share no id; anomalies happen
when asked, and only then; what it records is what Kafka has."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from pathlib import Path

import pandas as pd
import pytest
from aiokafka.errors import KafkaTimeoutError

from kafka_admin.settings import KafkaSettings
from labelpulse.broker import BrokerSettings
from labelpulse.simulator import PROJECTS, Delivery, Message, Plan, Progress, generate, read_recording, send
from tests.support.services import run_cli

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AFTER, LASTING = 600.0, 600.0  # anomalies from 10 to 20 minutes in


def messages(anomalies: tuple[str, ...]) -> list[Message]:
    plan = Plan(seed=3, start=START, rate=20, anomalies=anomalies, anomaly_after_s=AFTER, anomaly_for_s=LASTING)
    end = START + timedelta(minutes=30)
    return list(takewhile(lambda message: message.occurred_at < end, generate(plan)))


def phase(moment: datetime) -> str:
    seconds = (moment - START).total_seconds()
    return "during" if AFTER <= seconds < AFTER + LASTING else "outside"


def decoded(message: Message) -> dict | None:
    try:
        event = json.loads(message.value)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "project_id" in event and event.get("schema_version") == 1 else None


def ids(seed: int) -> set[str]:
    """Every event, task and session id of the first 3000 messages of `seed`."""
    found = set()
    for message in islice(generate(Plan(seed=seed, start=START, rate=20)), 3000):
        event = json.loads(message.value)
        found |= {event["event_id"], event["task_id"]} | ({event["session_id"]} if "session_id" in event else set())
    return found


def test_the_same_seed_gives_the_same_bytes() -> None:
    plan = Plan(seed=7, start=START, rate=20, anomalies=("garbage",))
    assert list(islice(generate(plan), 3000)) == list(islice(generate(plan), 3000))


@pytest.mark.parametrize("seeds", [(1, 2), (1, 11), (12, 112)])
def test_runs_with_different_seeds_share_no_id(seeds: tuple[int, int]) -> None:
    first, second = map(ids, seeds)
    assert first & second == set()


@pytest.mark.broker
def test_a_run_without_a_seed_gets_its_own_says_it_and_it_repeats_the_run(
    kafka: BrokerSettings, tmp_path: Path
) -> None:
    env = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "LABELPULSE_EVENTS_TOPIC": "sim-seeds"}
    args = ["generate", "--count", "200", "--fast", "--start", START.isoformat(), "--quiet"]
    runs = [run_cli(*args, "--record", str(tmp_path / f"{n}.jsonl"), env=env) for n in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    seeds = [run.stderr.split("seed ", 1)[1].split(":", 1)[0] for run in runs]
    assert seeds[0] != seeds[1] and f"seed {seeds[0]}: repeat with --seed {seeds[0]}" in runs[0].stderr
    first, second = (read_recording(tmp_path / f"{n}.jsonl") for n in range(2))
    assert {json.loads(value)["event_id"] for _, value in first}.isdisjoint(
        json.loads(value)["event_id"] for _, value in second
    ), "two runs without --seed share no event"
    again = run_cli(*args, "--seed", seeds[0], "--record", str(tmp_path / "again.jsonl"), env=env)
    assert again.returncode == 0, again.stderr
    assert read_recording(tmp_path / "again.jsonl") == first, "--seed repeats the run byte for byte"


def test_garbage_only_while_the_anomaly_lasts() -> None:
    broken = {phase(m.occurred_at) for m in messages(("garbage",)) if decoded(m) is None}
    assert broken == {"during"}


def test_click_through_answers_in_one_second_only_while_it_lasts() -> None:
    clicks = [
        phase(m.occurred_at)
        for m in messages(("click-through",))
        if (event := decoded(m)) and event["event_type"] == "annotation_submitted" and event["duration_ms"] == 1000
    ]
    assert clicks and set(clicks) == {"during"}


@pytest.mark.parametrize("seed", [21, 22])
def test_the_clicking_annotator_races_through_work_even_when_the_queue_is_short(seed: int) -> None:
    """Two minutes of clicking, 35 minutes in (as tests/test_alerts_e2e.py has it), when the crew keeps
    the queue near empty: the clicking annotator is first in line for new work."""
    after = 35 * 60 + 30
    plan = Plan(seed=seed, start=START, rate=20, anomalies=("click-through",), anomaly_after_s=after, anomaly_for_s=120)
    end = START + timedelta(seconds=after + 120)
    clicks = sum(
        (event := json.loads(m.value))["event_type"] == "annotation_submitted" and event["duration_ms"] == 1000
        for m in takewhile(lambda message: message.occurred_at < end, generate(plan))
    )
    assert clicks >= 8, "enough for a two-minute window's median handle time"


def test_throughput_collapse_then_recovery() -> None:
    collapsed = next(iter(PROJECTS))
    created = [
        phase(m.occurred_at)
        for m in messages(("throughput-collapse",))
        if (event := decoded(m)) and event["event_type"] == "task_created" and event["project_id"] == collapsed
    ]
    # 10 minutes during, 20 outside: outside runs at the normal rate, during at about 5 % of it.
    outside, during = created.count("outside") / 20, created.count("during") / 10
    assert outside > 30 and during < 0.15 * outside


class SlowKafka:
    """A producer whose acknowledgements come later, and which refuses the third message."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def flush(self) -> None:
        for number, future in enumerate(self.futures):
            if number == 2:
                future.set_exception(KafkaTimeoutError("Kafka did not take it"))
            elif not future.done():
                future.set_result(None)


def test_a_recording_holds_only_what_kafka_acknowledged(tmp_path: Path) -> None:
    record = tmp_path / "sent.jsonl"
    plan = Plan(seed=3, start=datetime.now(UTC) - timedelta(hours=1), rate=5)
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(send(plan, kafka=KafkaSettings(), count=5, realtime=False, record=record, producer=SlowKafka()))
    recorded = [value for _, value in read_recording(record)]
    assert recorded == [message.value for message in islice(generate(plan), 2)]


def test_delivery_with_disorder_and_duplicates_reorders_and_repeats_only_within_its_bounds() -> None:
    plan = Plan(seed=3, start=START, rate=20)
    generated = list(islice(generate(plan), 2000))
    delivery = Delivery(disorder_s=30, duplicates=0.05, seed=3)
    delivered = list(delivery.order(iter(generated)))
    values = [message.value for _, message in delivered]
    assert Counter(values) - Counter(message.value for message in generated) == Counter(
        {value: 1 for value, n in Counter(values).items() if n == 2}
    ), "every message arrives, some twice, none more often"
    assert 60 <= len(values) - len(generated) <= 140, "about 5 % twice"
    overtaken = sum(
        later.occurred_at < earlier.occurred_at for (_, earlier), (_, later) in itertools.pairwise(delivered)
    )
    assert overtaken > 100, "events overtake each other"
    assert all(sent_at - message.occurred_at <= timedelta(seconds=60) for sent_at, message in delivered)
    assert [sent_at for sent_at, _ in delivered] == sorted(sent_at for sent_at, _ in delivered)
    assert list(delivery.order(iter(generated))) == delivered, "the same seed gives the same delivery"


def test_delivery_with_a_late_share_sends_the_rest_as_they_occur() -> None:
    generated = list(islice(generate(Plan(seed=3, start=START, rate=20)), 2000))
    delivered = list(Delivery(disorder_s=180, late=0.1, seed=3).order(iter(generated)))
    assert sorted(message.value for _, message in delivered) == sorted(message.value for message in generated)
    late = sum(sent_at > message.occurred_at for sent_at, message in delivered)
    assert 140 <= late <= 260, "about a tenth late"
    assert all(sent_at - message.occurred_at <= timedelta(seconds=180) for sent_at, message in delivered)
    overtaken = sum(
        later.occurred_at < earlier.occurred_at for (_, earlier), (_, later) in itertools.pairwise(delivered)
    )
    assert overtaken > 100, "the late ones are overtaken"


def test_delivery_late_by_default_sends_every_event_late() -> None:
    generated = list(islice(generate(Plan(seed=3, start=START, rate=20)), 500))
    delivered = Delivery(disorder_s=180, seed=3).order(iter(generated))
    assert all(sent_at > message.occurred_at for sent_at, message in delivered)


def test_delivery_without_disorder_is_the_simulated_order() -> None:
    generated = list(islice(generate(Plan(seed=3, start=START, rate=20)), 200))
    assert [message for _, message in Delivery().order(iter(generated))] == generated


class Output(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress_over(seconds: int, terminal: bool, quiet: bool = False, backfill: int = 0) -> str:
    """What Progress writes while 200 events a second go out for `seconds` (after `backfill` at once)."""
    clock, output = Clock(), Output(terminal)
    progress = Progress(total=None, target_rate=200, quiet=quiet, stream=output, every_s=10, clock=clock)
    progress.update(backfill)
    progress.caught_up(backfill)
    for tick in range(1, seconds * 10 + 1):
        clock.now = tick / 10
        progress.update(backfill + 20 * tick)
    progress.done()
    return output.getvalue()


def test_progress_in_a_log_is_a_line_every_ten_seconds_with_no_carriage_returns() -> None:
    lines = progress_over(35, terminal=False).splitlines()
    assert "\r" not in "".join(lines)
    assert lines == [
        "2,000 events sent, 200/s (target 200/s)",
        "4,000 events sent, 200/s (target 200/s)",
        "6,000 events sent, 200/s (target 200/s)",
        "7,000 events sent in 35.0 s: 200.0/s (target 200/s)",
    ]


def test_progress_on_a_terminal_redraws_one_line() -> None:
    written = progress_over(35, terminal=True)
    assert written.count("\n") == 1 and written.count("\r") > 60
    assert written.endswith("\r7,000 events sent in 35.0 s: 200.0/s (target 200/s)\n")


def test_quiet_progress_says_only_the_real_rate_against_the_target_at_the_end() -> None:
    assert progress_over(35, terminal=False, quiet=True) == "7,000 events sent in 35.0 s: 200.0/s (target 200/s)\n"


def test_what_was_backfilled_at_once_is_counted_apart_from_the_rate() -> None:
    last = progress_over(20, terminal=False, quiet=True, backfill=12_000)
    assert last == "12,000 events backfilled at once, then 4,000 in 20.0 s: 200.0/s (target 200/s)\n"


# -- a crew that behaves like one -----------------------------------------------------------------

IDLE_THRESHOLD_S = 100  # the worker's default: a longer gap between an annotator's events is idle
DEMO_HOURS = 2


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    """Two hours of the demo's activity (as `up` runs it, at a lower rate: the crew scales with it),
    valid events only, as pandas reads them."""
    end = START + timedelta(hours=DEMO_HOURS)
    plan = Plan(seed=8, start=START, rate=5)
    events = [json.loads(m.value) for m in takewhile(lambda m: m.occurred_at < end, generate(plan))]
    frame = pd.DataFrame(events)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], format="ISO8601")
    return frame


def per_annotator(events: pd.DataFrame) -> pd.DataFrame:
    """Active time and sessions as the product defines them (gaps between an annotator's started,
    submitted and skipped events under the idle threshold are active; a longer gap starts a session),
    answers and median handle time, per annotator."""
    work = events[events["event_type"].isin(["annotation_started", "annotation_submitted", "annotation_skipped"])]
    work = work.sort_values(["annotator_id", "occurred_at", "event_id"])
    gap_s = work.groupby("annotator_id")["occurred_at"].diff().dt.total_seconds()
    work = work.assign(
        active_s=gap_s.where(gap_s < IDLE_THRESHOLD_S, 0), session=gap_s.isna() | (gap_s >= IDLE_THRESHOLD_S)
    )
    answers = work[work["event_type"] != "annotation_started"].groupby("annotator_id")
    by_annotator = work.groupby("annotator_id")
    return pd.DataFrame(
        {
            "active_h": by_annotator["active_s"].sum() / 3600,
            "sessions": by_annotator["session"].sum(),
            "answers": answers.size(),
            "median_handle_s": answers["duration_ms"].median() / 1000,
            "first": by_annotator["occurred_at"].min(),
            "last": by_annotator["occurred_at"].max(),
        }
    )


def test_the_rate_is_events_per_second_from_the_first_minute_on(demo: pd.DataFrame) -> None:
    per_second = len(demo) / (DEMO_HOURS * 3600)
    first_minute = (demo["occurred_at"] < START + timedelta(minutes=1)).sum() / 60
    assert 4.75 <= per_second <= 5.5 and 4 <= first_minute <= 6, (per_second, first_minute)


@pytest.mark.parametrize(
    ("rate", "annotators"), [(200, None), (200, 12)], ids=["a crew sized for it", "a small crew, compressed"]
)
def test_twenty_seconds_at_a_rate_are_twenty_seconds_of_events_at_it(rate: float, annotators: int | None) -> None:
    end = START + timedelta(seconds=20)
    plan = Plan(seed=2, start=START, rate=rate, annotators=annotators)
    sent = sum(1 for _ in takewhile(lambda message: message.occurred_at < end, generate(plan)))
    assert 0.9 * 20 * rate <= sent <= 1.1 * 20 * rate


def test_handle_times_have_a_median_of_half_a_minute_to_two_and_a_long_tail(demo: pd.DataFrame) -> None:
    handle_s = demo.loc[demo["event_type"] == "annotation_submitted", "duration_ms"] / 1000
    assert 30 <= handle_s.median() <= 120
    assert handle_s.quantile(0.9) >= 1.6 * handle_s.median() and handle_s.max() >= 3 * handle_s.median()


def test_an_annotator_answers_about_once_per_handle_time_while_active(demo: pd.DataFrame) -> None:
    """Active seconds per answer are the handle time plus opening the item and moving on (1-2.5x the
    median); tasks longer than the idle threshold count as idle, so a slow annotator can come under 1x."""
    crew = per_annotator(demo)
    crew = crew[crew["active_h"] >= 0.5]
    seconds_per_answer = crew["active_h"] * 3600 / crew["answers"]
    ratio = seconds_per_answer / crew["median_handle_s"]
    assert len(crew) >= 50
    assert 1.1 <= ratio.median() <= 1.8 and ratio.between(0.5, 2.5).all(), ratio.describe()
    assert (crew["answers"] / crew["active_h"]).between(30, 120).all(), "answers per active hour"


def test_annotators_take_breaks_and_shifts_begin_and_end(demo: pd.DataFrame) -> None:
    crew = per_annotator(demo)
    end = START + timedelta(hours=DEMO_HOURS)
    worked_long = crew[crew["last"] - crew["first"] > timedelta(minutes=100)]
    assert len(worked_long) >= 20 and (worked_long["sessions"] >= 2).all(), "work stretches last 30-90 min"
    assert crew["sessions"].sum() >= 3 * len(crew)
    joined = crew["first"] > START + timedelta(minutes=15)
    left = crew["last"] < end - timedelta(minutes=15)
    assert joined.mean() >= 0.1 and left.mean() >= 0.1, "annotators join and leave"


def test_the_backlog_is_worked_down_and_its_eta_fits_the_pace(demo: pd.DataFrame) -> None:
    tasks = demo[demo["event_type"].isin(["task_created", "task_completed"])]
    change = tasks["event_type"].map({"task_created": 1, "task_completed": -1})
    tens = tasks["occurred_at"].dt.floor("10min")
    backlog = change.groupby([tasks["project_id"], tens]).sum().groupby(level=0).cumsum().unstack(0)
    assert (backlog >= 0).all().all()
    assert (backlog.diff() < -0.3 * backlog.shift()).any().all(), "every project works a backlog down"
    assert (backlog.iloc[-1] <= 3 * backlog.median()).all(), "it does not only grow"
    last_hour = tasks[tasks["occurred_at"] >= START + timedelta(hours=DEMO_HOURS - 1)]
    completed = (last_hour["event_type"] == "task_completed").groupby(last_hour["project_id"]).sum()
    eta_h = backlog.iloc[-1] / completed
    assert (eta_h < 0.5).all(), eta_h


class InstantKafka:
    """A producer that acknowledges every message at once."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def flush(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_a_live_run_reports_no_backfill_for_the_moment_its_producer_took_to_start() -> None:
    output = Output(terminal=False)
    progress = Progress(total=400, target_rate=400, quiet=True, stream=output)
    plan = Plan(seed=3, start=datetime.now(UTC) - timedelta(milliseconds=200), rate=400)
    asyncio.run(send(plan, kafka=KafkaSettings(), count=400, progress=progress, producer=InstantKafka()))
    assert output.getvalue().startswith("400 events sent in "), output.getvalue()
