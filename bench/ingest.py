"""Ingest benchmark: how close the full worker path comes to the raw Kafka ceiling, and freshness.

In one run, on the same embedded broker and ClickHouse, with the same simulated events:
  (a) ceiling: a plain aiokafka consume-and-decode loop over N messages, before and after (b);
  (b) worker:  `labelpulse worker` consuming the same N messages into ClickHouse (durable);
  (c) freshness: the simulator at a steady rate below saturation, sampling how far the newest
      occurred_at visible in the rollup lags behind the wall clock (p50/p95), and behind the newest
      occurred_at Kafka has acknowledged from the producers: with --disorder every event is sent late by
      up to that long, so the newest occurred_at delivered already lags the clock by ~sqrt(6 D/R) at p95
      (D the disorder, R the rate: 0.7 s for 180 s at 2,000/s), which no pipeline can make up; with
      --late 0.1 only a tenth is, as when most producers keep up, and the rest arrive as they occur.

    .venv/bin/python bench/ingest.py                 # 200k events, 60 s of freshness at 2k/s
    .venv/bin/python bench/ingest.py --events 50000 --freshness-seconds 20 --rate 1000
    .venv/bin/python bench/ingest.py --disorder 180 --duplicates 0.02   # every event up to 3 min late
    .venv/bin/python bench/ingest.py --disorder 180 --late 0.1 --duplicates 0.02   # a tenth of them
    .venv/bin/python bench/ingest.py --per-annotator 1000               # 12 annotators, absurdly busy

The crew scales with the rate so that each annotator sends --per-annotator events/s (a real one sends
well under one): per-annotator state is sized as in production, not by the benchmark's compression.

It also reports the workers' memory (resident set) after (b) and along (c).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from kafka_admin.settings import KafkaSettings
from labelpulse.arguments import share
from labelpulse.broker import BrokerSettings, EmbeddedBroker
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from labelpulse.simulator import Delivery, Plan, read_recording, recorded_message, send
from schema import migrations
from schema.client import ClickHouseSettings


async def raw_ceiling(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return expected / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_report(before: dict[str, float], after: dict[str, float], events: int, seconds: float) -> str:
    """Where the CPU went while the workers moved `events`: µs per event and cores, per process."""
    lines = [f"    CPU while storing ({os.cpu_count()} cores; µs per event, cores busy):"]
    for name in before:
        used = after[name] - before[name]
        lines.append(f"      {name:<12} {used / events * 1e6:6.1f} µs  {used / seconds:4.2f} cores")
    total = sum(after[name] - before[name] for name in before)
    lines.append(f"      {'total':<12} {total / events * 1e6:6.1f} µs  {total / seconds:4.2f} cores")
    return "\n".join(lines)


def settle(processes: dict[str, Any], timeout_s: float = 60.0) -> float:
    """Wait until the processes together use under a tenth of a core over a second (ClickHouse merges the parts
    a load made for a while after it); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = sum(cpu_seconds(process.pid) for process in processes.values() if process)
        time.sleep(1.0)
        if sum(cpu_seconds(process.pid) for process in processes.values() if process) - before < 0.1:
            break
    return time.monotonic() - started


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "labelpulse", "worker", "--loglevel", "info"], log, {**os.environ, **env})


def stored(client) -> int:  # type: ignore[no-untyped-def]
    return int(client.command("SELECT (SELECT count() FROM events) + (SELECT count() FROM dead_letters)"))


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


class DeliveredClock:
    """The newest occurred_at among the messages the simulator's `--record` file says Kafka acknowledged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None
        self._pending = b""  # a line written only in part so far
        self._newest_ms = 0

    def newest_ms(self) -> int:
        if self._file is None:
            if not self.path.exists():
                return self._newest_ms
            self._file = self.path.open("rb")
        lines = (self._pending + self._file.read()).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            _, value = recorded_message(line)
            try:
                occurred_at = json.loads(value)["occurred_at"]
            except (ValueError, KeyError, TypeError):
                continue  # not an event (the garbage anomaly): nothing delivered in time
            self._newest_ms = max(self._newest_ms, int(datetime.fromisoformat(occurred_at).timestamp() * 1000))
        return self._newest_ms

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def crew(rate: float, per_annotator: float) -> int:
    return max(12, math.ceil(rate / per_annotator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="steady rate for the freshness part")
    parser.add_argument("--freshness-seconds", type=float, default=60.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="workers in one consumer group for (b) and (c)")
    parser.add_argument("--disorder", type=float, default=0.0, help="events late by up to SECONDS (simulated)")
    parser.add_argument("--late", type=share, default=1.0, help="with --disorder, the share of events sent late")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of events sent twice")
    parser.add_argument("--per-annotator", type=float, default=0.5, help="events/s each simulated annotator sends")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-bench-"))
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=workdir / "broker.log")
    clickhouse = ClickHouseSettings(port=free_port())
    ch_process = EmbeddedClickHouseProcess(clickhouse, workdir / "clickhouse", log_path=workdir / "clickhouse.log")
    broker.start()
    ch_process.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        client = migrations.open_database(clickhouse)
        migrations.migrate(client)
        bootstrap = broker.settings.bootstrap_servers
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        env = {
            **clickhouse.to_env(),
            "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LABELPULSE_EVENTS_TOPIC": topic,
            "LABELPULSE_EVENTS_PARTITIONS": str(args.partitions),
            "LABELPULSE_CONSUMER_GROUP": f"bench-{topic}",
            "LABELPULSE_DATA_DIR": str(workdir / "state"),
            "LABELPULSE_SESSION_TIMEOUT_MS": "6000",
            "LABELPULSE_WORKER_METRICS_PORT": "0",
        }
        kafka = KafkaSettings.from_env(env)
        start = datetime.now(UTC) - timedelta(hours=2)
        rate = max(1.0, args.events / 3600)
        plan = Plan(seed=7, start=start, rate=rate, annotators=crew(rate, args.per_annotator))
        print(
            f"producing {args.events:,} simulated events (one hour of {plan.annotators} annotators) to {topic} "
            f"({args.partitions} partitions) …",
            flush=True,
        )
        delivery = Delivery(args.disorder, args.duplicates, seed=7, late=args.late)
        record = workdir / "sent.jsonl"
        asyncio.run(send(plan, kafka=kafka, count=args.events, realtime=False, record=record, delivery=delivery))
        unique = len({value for _, value in read_recording(record)})  # duplicates are dropped, not stored

        ceiling = asyncio.run(raw_ceiling(bootstrap, topic, args.events))
        print(f"(a) raw aiokafka consume + json decode: {ceiling:,.0f} events/s", flush=True)

        begin = time.perf_counter()
        workers = [start_worker(env, workdir / f"worker-{n}.log") for n in range(args.workers)]
        processes = {"broker": broker.process, "clickhouse": ch_process.process}
        processes.update({f"worker-{n}": worker for n, worker in enumerate(workers)})
        cpu_at_begin = {name: cpu_seconds(process.pid) for name, process in processes.items() if process}
        first_seen: tuple[float, int] | None = None  # (time, rows) when the first rows became visible
        cpu_at_first: dict[str, float] = {}
        while (count := stored(client)) < unique:
            if any(worker.poll() is not None for worker in workers):
                raise SystemExit(f"a worker exited; see {workdir}/worker-*.log")
            if first_seen is None and count > 0:
                first_seen = (time.perf_counter(), count)
                cpu_at_first = {name: cpu_seconds(process.pid) for name, process in processes.items() if process}
            time.sleep(0.1)
        done = time.perf_counter()
        cpu_at_done = {name: cpu_seconds(process.pid) for name, process in processes.items() if process}
        with_startup = args.events / (done - begin)
        if first_seen is None:  # all stored in one batch (a tiny run): no steady stretch, so measure it all
            first_seen, cpu_at_first = (begin, 0), cpu_at_begin
        full = (unique - first_seen[1]) / (done - first_seen[0])
        print(
            f"(b) {args.workers} worker(s), Kafka -> ClickHouse, durable: {full:,.0f} events/s steady "
            f"= {full / ceiling:.1%} of the ceiling ({with_startup:,.0f}/s counting start-up and group join, "
            f"{done - begin:.1f}s)",
            flush=True,
        )
        print(cpu_report(cpu_at_first, cpu_at_done, unique - first_seen[1], done - first_seen[0]), flush=True)
        # The pace of a shared machine drifts (the same ceiling measured 74k to 142k/s within an hour): measured
        # again, the ratio is against the two's mean, and a run whose two differ much says so.
        settled = settle(processes)
        again = asyncio.run(raw_ceiling(bootstrap, topic, args.events))
        apart = abs(again - ceiling) / max(again, ceiling)
        ceiling = (ceiling + again) / 2
        print(
            f"(a) again after (b), once ClickHouse's merges settled ({settled:.0f}s): {again:,.0f} events/s; "
            f"the worker at {full / ceiling:.1%} of the two's mean"
            + (f" ({apart:.0%} apart: the machine's pace changed, repeat the run)" if apart > 0.1 else ""),
            flush=True,
        )
        print("    worker memory: " + ", ".join(f"{rss_mb(w.pid):,.0f} MB" for w in workers), flush=True)

        # Each event is held back up to --disorder seconds: the sending rate reaches the target only once that
        # long has passed (over the first 30 s of 180 s of disorder, ~8 % of it). Sample after it.
        warmup_s = args.disorder + min(10.0, args.freshness_seconds / 4)
        print(
            f"(c) freshness at {args.rate:,.0f} events/s for {args.freshness_seconds:.0f}s after {warmup_s:.0f}s of "
            "warm-up …",
            flush=True,
        )
        delivered = DeliveredClock(workdir / "freshness-sent.jsonl")
        sender = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "labelpulse",
                "generate",
                "--quiet",
                "--record",
                str(delivered.path),
                "--rate",
                str(args.rate),
                "--duration",
                str(warmup_s + args.freshness_seconds),
                "--seed",
                "8",
                "--annotators",
                str(crew(args.rate, args.per_annotator)),
                "--disorder",
                str(args.disorder),
                *(["--late", str(args.late)] if args.disorder else []),
                "--duplicates",
                str(args.duplicates),
            ],
            env={**os.environ, **env},
        )
        samples: list[float] = []
        behind_delivered: list[float] = []
        memory: list[float] = []
        warmup_until = time.monotonic() + warmup_s
        while sender.poll() is None:
            newest_delivered = delivered.newest_ms()
            newest = client.command("SELECT toUnixTimestamp64Milli(max(last_occurred_at)) FROM rollup_project_minute")
            if time.monotonic() > warmup_until and newest:
                samples.append(time.time() - int(newest) / 1000)
                # Read before the rollup, so an event visible but not yet recorded cannot make it negative.
                behind_delivered.append(max(0, newest_delivered - int(newest)) / 1000)
                memory.append(sum(rss_mb(worker.pid) for worker in workers))
            time.sleep(0.1)
        delivered.close()
        p50, p95 = percentiles(samples)
        print(f"    freshness (now - newest occurred_at visible in the rollup): p50 {p50:.2f}s, p95 {p95:.2f}s")
        behind_p50, behind_p95 = percentiles(behind_delivered)
        print(
            "    behind what Kafka had acknowledged (its newest occurred_at - the rollup's): "
            f"p50 {behind_p50:.2f}s, p95 {behind_p95:.2f}s"
        )
        print(
            f"    worker memory along (c): {memory[0]:,.0f} MB first, {memory[-1]:,.0f} MB last, {max(memory):,.0f} max"
        )
        print(f"\nsummary: ceiling {ceiling:,.0f}/s (mean of two), worker {full:,.0f}/s, ratio {full / ceiling:.1%}, "
              f"freshness p50 {p50:.2f}s p95 {p95:.2f}s (behind delivered: p95 {behind_p95:.2f}s)")  # fmt: skip
    finally:
        for worker in workers:
            terminate(worker, timeout_s=30)
        broker.stop()
        ch_process.stop()


if __name__ == "__main__":
    main()
