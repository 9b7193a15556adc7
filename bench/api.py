"""gRPC API benchmark (issue 19): latency per method of `labelpulse api`, and what WatchProject costs ClickHouse.

    .venv/bin/python bench/api.py                    # 10M raw events (the issue's size)
    .venv/bin/python bench/api.py --events 500000 --base 100000

Seeds an embedded ClickHouse as bench/dashboard.py does (`--base` simulated events through the worker's own
path, copied back in time until it holds `--events`), starts `labelpulse api` against it as its own process
(with a client token for every project), and calls it over loopback with grpcio:

  (a) every method, `--calls` calls per method at each `--clients` level, split among that many clients (each
      on its own channel, calling one after another; at least one call each, so all are in flight at once):
      p50/p95 per method and calls/s; the baseline is the same method with one client, in the same run (the
      ratio shows how latency grows under concurrency);
  (b) WatchProject: one watcher, then `--watchers` watchers of the same project (each on its own channel),
      for `--watch-seconds` after every watcher has its first summary, while an event of the project is stored
      every second (so every check finds a change): change checks and summaries computed, from the server's
      labelpulse_api_watch_poll_queries_total and labelpulse_api_watch_summaries_total (a poll per watcher would
      make both N times one), and how long after an event was stored each watcher had the summary with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before bench/, whose api.py would hide the api package

import grpc  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from api.proto.labelpulse.v1 import metrics_pb2 as pb  # noqa: E402
from api.proto.labelpulse.v1 import metrics_pb2_grpc  # noqa: E402
from api.settings import token_sha256  # noqa: E402
from bench.dashboard import seed  # noqa: E402
from labelpulse.child_processes import spawn, terminate  # noqa: E402
from labelpulse.net import free_port  # noqa: E402
from labelpulse.runtime import EmbeddedClickHouseProcess, cli_command  # noqa: E402
from schema import migrations  # noqa: E402
from schema.client import ClickHouseSettings  # noqa: E402

TOKEN = "bench-token-for-every-project"
METADATA = (("authorization", f"Bearer {TOKEN}"),)
Call = Callable[[metrics_pb2_grpc.MetricsStub], Awaitable[Any]]


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def methods(project: str, days: int) -> dict[str, Call]:
    """One realistic call of each method: ranges as the dashboard's default (the last `days` days)."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    week = pb.TimeRange(start=stamp(end - timedelta(days=days)), end=stamp(end))
    day = pb.TimeRange(start=stamp(end - timedelta(days=1)), end=stamp(end))

    async def scorecard(stub: metrics_pb2_grpc.MetricsStub) -> Any:
        return [row async for row in stub.StreamAnnotatorScorecard(pb.StreamAnnotatorScorecardRequest(range=week),
                                                                      metadata=METADATA)]  # fmt: skip

    return {
        "ListProjects": lambda stub: stub.ListProjects(pb.ListProjectsRequest(), metadata=METADATA),
        "GetProjectSummary": lambda stub: stub.GetProjectSummary(
            pb.GetProjectSummaryRequest(project_id=project, range=day), metadata=METADATA
        ),
        "GetThroughput": lambda stub: stub.GetThroughput(pb.GetThroughputRequest(range=week), metadata=METADATA),
        "StreamAnnotatorScorecard": scorecard,
        "GetAgreement": lambda stub: stub.GetAgreement(
            pb.GetAgreementRequest(project_id=project, range=week), metadata=METADATA
        ),
        "ListAlerts": lambda stub: stub.ListAlerts(pb.ListAlertsRequest(range=week), metadata=METADATA),
    }


async def timed_calls(address: str, call: Call, clients: int, calls: int) -> tuple[list[float], float]:
    """Each call's seconds, and the wall time of all, with `clients` channels calling at once."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(clients)]
    durations: list[float] = []
    remaining = [calls]

    async def client(channel: grpc.aio.Channel) -> None:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            await call(stub)
            durations.append(time.perf_counter() - started)

    try:
        for channel in channels:
            await channel.channel_ready()
        started = time.perf_counter()
        await asyncio.gather(*(client(channel) for channel in channels))
        return durations, time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()


def watch_counters(metrics_url: str) -> tuple[float, float]:
    """The server's change checks and summaries made for WatchProject so far."""
    names = ("labelpulse_api_watch_poll_queries_total", "labelpulse_api_watch_summaries_total")
    values = dict.fromkeys(names, 0.0)
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in values:
                values[name] = float(value)
    return values[names[0]], values[names[1]]


# A new event of the project, now: a copy of one of its events under a new id (the rollups follow).
NEW_EVENT = (
    "INSERT INTO events SELECT * REPLACE (toString(generateUUIDv4()) AS event_id, now64(3) AS occurred_at, "
    "now64(3) AS received_at) FROM events WHERE project_id = {project:String} LIMIT 1"
)


@dataclass
class WatchLoad:
    checks_per_s: float
    summaries_per_s: float
    latencies: list[float]  # per summary a watcher received: seconds since the event it shows was stored


async def watch_load(
    address: str, metrics_url: str, client: Any, project: str, watchers: int, seconds: float
) -> WatchLoad:
    """WatchProject's load while `watchers` watch `project` (interval 1 s) and an event of it is stored every
    second, once all are watching."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(watchers)]
    request = pb.WatchProjectRequest(project_id=project, interval_seconds=1)
    streams = [metrics_pb2_grpc.MetricsStub(channel).WatchProject(request, metadata=METADATA) for channel in channels]
    stored: list[float] = []  # when each new event was stored (monotonic)
    latencies: list[float] = []

    async def watcher(stream: Any) -> None:
        while await stream.read() is not grpc.aio.EOF:  # read(), as for the first (grpc.aio allows no mix)
            received = time.monotonic()
            if stored:
                latencies.append(received - max(moment for moment in stored if moment <= received))

    try:
        await asyncio.gather(*(stream.read() for stream in streams))  # every watcher has its first summary
        readers = [asyncio.create_task(watcher(stream)) for stream in streams]
        (checks, summaries), started = watch_counters(metrics_url), time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.to_thread(client.command, NEW_EVENT, parameters={"project": project})
            stored.append(time.monotonic())
            await asyncio.sleep(1)
        elapsed = time.monotonic() - started
        checks_after, summaries_after = watch_counters(metrics_url)
        for reader in readers:
            if reader.done():
                reader.result()  # a watcher's error, if any
            reader.cancel()
        return WatchLoad((checks_after - checks) / elapsed, (summaries_after - summaries) / elapsed, latencies)
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            await channel.close()


def start_api(clickhouse: ClickHouseSettings, workdir: Path) -> tuple[Any, str, str]:
    port, metrics_port = free_port(), free_port()
    tokens = {"clients": [{"name": "bench", "token_sha256": token_sha256(TOKEN), "projects": "all"}]}
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("LABELPULSE_")},
        **clickhouse.to_env(),
        "LABELPULSE_API_PORT": str(port),
        "LABELPULSE_API_METRICS_PORT": str(metrics_port),
        "LABELPULSE_API_TOKENS": json.dumps(tokens),
    }
    log = workdir / "api.log"
    process = spawn(cli_command("api"), log, env)
    address = f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            terminate(process, timeout_s=10)
            raise SystemExit(f"the API did not start; see {log}") from None
    return process, address, f"http://127.0.0.1:{metrics_port}/metrics"


def times(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a (none with one)"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(
    address: str,
    metrics_url: str,
    client: Any,
    project: str,
    events: int,
    levels: list[int],
    args: argparse.Namespace,
) -> None:
    calls = methods(project, args.days)
    await timed_calls(address, calls["ListProjects"], 1, 3)  # warm-up: connections, the server's first query
    print(f"\n(a) {events:,} raw events; ranges of {args.days} days (summary: 1 day); {args.calls} calls a level")
    header = "".join(f"{f'{n} client(s) p50/p95 ms':>26}" for n in levels)
    print(f"{'method':<26}{header}{'p50 ratio':>12}")
    rates: dict[int, list[float]] = {level: [] for level in levels}
    for name, call in calls.items():
        cells, medians = [], []
        for level in levels:
            durations, wall = await timed_calls(address, call, level, max(args.calls, level))
            medians.append(statistics.median(durations))
            rates[level].append(len(durations) / wall)
            cells.append(f"{medians[-1] * 1000:>15.1f} /{percentile(durations, 0.95) * 1000:>8.1f}")
        ratio = f"{medians[-1] / medians[0]:>11.1f}x" if len(levels) > 1 else ""
        print(f"{name:<26}{''.join(f'{cell:>26}' for cell in cells)}{ratio}", flush=True)
    print("calls/s per method, mean: " + ", ".join(f"{level} client(s) {statistics.fmean(rates[level]):,.1f}"
                                                   for level in levels))  # fmt: skip

    print(
        f"\n(b) WatchProject, interval 1 s, {args.watch_seconds:.0f} s counted after every first summary, "
        "an event of the project stored every second"
    )
    loads = {
        n: await watch_load(address, metrics_url, client, project, n, args.watch_seconds) for n in (1, args.watchers)
    }
    for n, load in loads.items():
        p50, p95 = (percentile(load.latencies, share) if load.latencies else float("nan") for share in (0.5, 0.95))
        print(
            f"    {n:>4} watcher(s): {load.checks_per_s:.2f} change checks/s, {load.summaries_per_s:.2f} summaries/s; "
            f"{len(load.latencies):,} summaries received, p50 {p50:.2f} s / p95 {p95:.2f} s after the event was stored"
        )
    one, many = loads[1], loads[args.watchers]
    print(
        f"\nsummary: {events:,} events; p50 ratio {levels[-1]}/{levels[0]} clients per method above; "
        f"{args.watchers} watchers / 1: change checks {times(many.checks_per_s, one.checks_per_s)}, summaries "
        f"{times(many.summaries_per_s, one.summaries_per_s)} (polling per watcher: {args.watchers}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events to hold (default 10M)")
    parser.add_argument("--base", type=int, default=200_000, help="simulated events loaded before copying")
    parser.add_argument("--clients", default="1,50", help="concurrency levels, comma-separated (default 1,50)")
    parser.add_argument(
        "--calls", type=int, default=100, help="calls per method and level, at least one per client (default 100)"
    )
    parser.add_argument("--days", type=int, default=7, help="the range of the ranged calls (default 7 days)")
    parser.add_argument("--watchers", type=int, default=100, help="concurrent WatchProject watchers (default 100)")
    parser.add_argument("--watch-seconds", type=float, default=20.0, help="counting window (default 20 s)")
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-bench-api-"))
    settings = ClickHouseSettings(port=free_port(), database="bench")
    clickhouse = EmbeddedClickHouseProcess(settings, workdir / "clickhouse", log_path=workdir / "clickhouse.log")
    clickhouse.start()
    api = None
    try:
        client = migrations.open_database(settings)
        migrations.migrate(client)
        print(f"seeding {args.events:,} events …", flush=True)
        seed(client, args.events, min(args.base, args.events))
        events = int(client.command("SELECT count() FROM events"))
        project = str(client.command("SELECT project_id FROM events GROUP BY 1 ORDER BY count() DESC LIMIT 1"))
        api, address, metrics_url = start_api(settings, workdir)
        asyncio.run(
            measure(address, metrics_url, client, project, events, levels, args)
        )  # one loop: grpc.aio keeps state
    finally:
        terminate(api, timeout_s=30)
        clickhouse.stop()


if __name__ == "__main__":
    main()
