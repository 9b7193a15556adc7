"""Soak: at a steady rate for a long time, what every process keeps must level off.

Starts the embedded broker and ClickHouse and one worker, sends simulated events at a steady rate for
`--minutes`, and samples the resident memory (RSS) of every process. The worker keeps task state until
its partition's watermark is the lateness bound past the task's completion, and the last ids of every
partition for duplicate detection: with the default bound of an hour, its memory levels off an hour in.
`--lateness-bound` shortens that (the default 300 s here) so a half-hour run shows the plateau; the
bound moves the plateau's height, not whether there is one. The crew scales with the rate, as in
bench/ingest.py. The embedded broker keeps every message in memory (Tansu's memory engine): its
RSS grows with what was sent, by design.

    .venv/bin/python bench/soak.py --minutes 30 --rate 2000
    .venv/bin/python bench/soak.py --minutes 5 --rate 500 --every 10      # a quick look
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from labelpulse.broker import BrokerSettings, EmbeddedBroker
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema import migrations
from schema.client import ClickHouseSettings


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux /proc); 0 once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second, steady")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between memory samples")
    parser.add_argument("--lateness-bound", type=int, default=300, help="LABELPULSE_LATENESS_BOUND_S of the worker")
    parser.add_argument("--per-annotator", type=float, default=0.5, help="events/s each simulated annotator sends")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-soak-"))
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=workdir / "broker.log")
    clickhouse = ClickHouseSettings(port=free_port())
    ch_process = EmbeddedClickHouseProcess(clickhouse, workdir / "clickhouse", log_path=workdir / "clickhouse.log")
    broker.start()
    ch_process.start()
    children: list[subprocess.Popen[bytes]] = []
    try:
        migrations.migrate(migrations.open_database(clickhouse))
        topic = f"soak-{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            **clickhouse.to_env(),
            "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": broker.settings.bootstrap_servers,
            "LABELPULSE_EVENTS_TOPIC": topic,
            "LABELPULSE_CONSUMER_GROUP": f"soak-{topic}",
            "LABELPULSE_DATA_DIR": str(workdir / "state"),
            "LABELPULSE_WORKER_METRICS_PORT": "0",
            "LABELPULSE_LATENESS_BOUND_S": str(args.lateness_bound),
        }
        worker = spawn(
            [sys.executable, "-m", "labelpulse", "worker", "--loglevel", "info"], workdir / "worker.log", env
        )
        generate = [sys.executable, "-m", "labelpulse", "generate", "--quiet", "--rate", f"{args.rate:g}",
                    "--duration", f"{args.minutes * 60:g}", "--seed", "5",
                    "--annotators", str(max(12, math.ceil(args.rate / args.per_annotator)))]  # fmt: skip
        simulator = spawn(generate, workdir / "simulator.log", env)
        children = [worker, simulator]
        processes = {
            "broker": broker.process,
            "clickhouse": ch_process.process,
            "worker": worker,
            "simulator": simulator,
        }
        print(f"soaking {args.minutes:g} min at {args.rate:,.0f} events/s, lateness bound {args.lateness_bound} s "
              f"(logs in {workdir}); RSS in MB:", flush=True)  # fmt: skip
        print(f"{'minute':>7} " + " ".join(f"{name:>10}" for name in processes) + f" {'events':>12}", flush=True)
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        client = migrations.open_database(clickhouse)
        while simulator.poll() is None:
            time.sleep(args.every)
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited; see {workdir / 'worker.log'}")
            sample = {name: rss_mb(process.pid) for name, process in processes.items() if process}
            samples.append(sample)
            events = int(client.command("SELECT count() FROM events"))
            minute = (time.monotonic() - started) / 60
            print(f"{minute:7.1f} " + " ".join(f"{sample[name]:10,.0f}" for name in processes) + f" {events:12,}",
                  flush=True)  # fmt: skip
        half = len(samples) // 2
        print("\nsummary (second half of the run, where a leak would show as growth):")
        for name in processes:
            if name == "simulator":
                continue
            at_half, at_end = samples[half][name], samples[-2 if len(samples) > 1 else -1][name]
            peak = max(sample[name] for sample in samples[half:])
            print(f"  {name:<10} {at_half:8,.0f} MB at half time, {at_end:8,.0f} MB at the end "
                  f"({(at_end - at_half) / max(at_half, 1):+.1%}), {peak:,.0f} MB at most")  # fmt: skip
    finally:
        for child in reversed(children):
            terminate(child, timeout_s=30)
        broker.stop()
        ch_process.stop()


if __name__ == "__main__":
    main()
