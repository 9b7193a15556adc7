"""Processor benchmark: the worker's Python per event, without Kafka or ClickHouse.

Simulated traffic (`labelpulse generate`'s plan, late by up to --disorder seconds, --duplicates of it twice) on
four partitions keyed like the producers', through `streams.processor.Processor` in batches of --batch, with task
state in memory and the worker's garbage collection settings. Against a baseline from the same run: decoding and
validating the same messages, which every event pays whatever the processor does with it. Best of --repeat each.

    .venv/bin/python bench/processor.py                          # 200,000 events, batches of 50,000
    .venv/bin/python bench/processor.py --batch 5000 --disorder 0 --duplicates 0
    LABELPULSE_COMPILED=0 .venv/bin/python bench/processor.py    # the interpreted modules (streams/compiled.py)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelpulse.arguments import non_negative_float, positive_int, share
from labelpulse.simulator import Delivery, Plan, generate
from schema.events import validate_event
from streams import compiled
from streams.app import GC_THRESHOLD
from streams.processor import DictStateStore, Message, Processor

PARTITIONS = 4


def messages(count: int, disorder_s: float, duplicates: float) -> list[Message]:
    """An hour of a crew's work as it reaches Kafka, keyed by task like the producers."""
    plan = Plan(seed=7, start=datetime.now(UTC) - timedelta(hours=2), rate=count / 3600)
    delivered = islice(Delivery(disorder_s, duplicates, seed=7).order(generate(plan)), count)
    partitions = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()  # Kafka's own (murmur2 of the key)
    offsets = [0] * PARTITIONS
    out = []
    for _, message in delivered:
        partition = partitioner(message.key, partitions, partitions)
        out.append(Message("events", partition, offsets[partition], message.key, message.value))
        offsets[partition] += 1
    return out


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """The fastest of `repeat` runs in seconds, and what the last one returned."""
    times, result = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=positive_int, default=200_000, help="messages (default 200,000)")
    parser.add_argument("--batch", type=positive_int, default=50_000, help="messages a batch (the worker's largest)")
    parser.add_argument(
        "--disorder", type=non_negative_float, default=180, help="events late by up to this many seconds"
    )
    parser.add_argument("--duplicates", type=share, default=0.02, help="share of events sent twice")
    parser.add_argument("--repeat", type=positive_int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    stream = messages(args.events, args.disorder, args.duplicates)
    now = datetime.now(UTC)
    gc.freeze()  # as the worker does after start-up: the stream itself is not the processor's garbage
    gc.set_threshold(GC_THRESHOLD, 20, 20)

    def validate() -> int:
        for message in stream:
            validate_event(message.value or b"", now=now)
        return len(stream)

    def process() -> int:
        processor, rows = Processor(tasks=DictStateStore()), 0
        for first in range(0, len(stream), args.batch):
            batch = processor.process(stream[first : first + args.batch], now=now)
            rows += sum(map(len, batch.tables.values()))
        return rows

    baseline, _ = best_of(args.repeat, validate)
    processed, rows = best_of(args.repeat, process)
    per_event = [seconds / len(stream) * 1e6 for seconds in (baseline, processed)]
    print(f"{len(stream):,} messages, batches of {args.batch:,}, disorder {args.disorder:g} s, ", end="")
    print(f"duplicates {args.duplicates:g}")
    print(f"(a) decode + validate: {per_event[0]:.2f} µs an event")
    print(f"(b) processor:         {per_event[1]:.2f} µs an event, {rows:,} rows; {compiled.status()}")
    print(f"summary: the processor takes {per_event[1] / per_event[0]:.2f}x what validating alone does")


if __name__ == "__main__":
    main()
