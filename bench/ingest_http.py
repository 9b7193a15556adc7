"""HTTP ingest benchmark (issue 21): events/s through `labelpulse ingest` against a direct Kafka producer.

In one run, on the same embedded broker, with the same simulated events:
  (a) direct:  one aiokafka producer (acks=all, as ingest's) sends the N events and awaits every ack;
  (b) batches: the N events POSTed to /v1/events as NDJSON bodies of --batch events, --concurrency at a time;
  (c) singles: the first --singles of them POSTed one event per request, --concurrency at a time;
  (d) webhook: one Label Studio delivery (a real capture, with its shared-secret header) POSTed --webhooks
      times, one at a time: p50/p99 of the time to its answer (the answer comes once Kafka has the events).

    .venv/bin/python bench/ingest_http.py                   # 100k events, 5k singles, 1k webhooks
    .venv/bin/python bench/ingest_http.py --events 20000 --singles 2000 --webhooks 300 --concurrency 8

Issue 21's target: (b) at least 50 % of (a). `labelpulse ingest` runs as its own process, as `labelpulse up`
runs it; the HTTP client (aiohttp, keep-alive) runs in this one, so on a small machine it takes CPU from the
server and the broker: the ratios count the whole HTTP path, client included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before bench/, whose ingest.py would hide the ingest package

import aiohttp  # noqa: E402  (faust's own dependency)
from aiokafka import AIOKafkaProducer  # noqa: E402

from ingest.settings import SECRET_HEADER  # noqa: E402
from labelpulse.broker import BrokerSettings, EmbeddedBroker  # noqa: E402
from labelpulse.child_processes import spawn, terminate  # noqa: E402
from labelpulse.net import free_port  # noqa: E402
from labelpulse.runtime import cli_command  # noqa: E402
from labelpulse.simulator import Plan, generate  # noqa: E402

SECRET = "bench-label-studio-secret-0123456789"
WEBHOOK = REPO / "tests" / "ingest" / "fixtures" / "label_studio" / "004-ANNOTATION_CREATED.body"


async def direct(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    """Events/s of a plain producer: every send queued at once, done when Kafka acknowledged them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=key) for key, value in messages[:10]])  # warm-up
        started = time.perf_counter()
        sent = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*sent)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def drive(bodies: Sequence[bytes], concurrency: int, post: Callable[[bytes], Awaitable[None]]) -> float:
    """Seconds to POST every body, `concurrency` requests in flight."""
    pending = iter(bodies)

    async def client() -> None:
        for body in pending:  # one shared iterator: each body goes once
            await post(body)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


async def through_http(url: str, values: Sequence[bytes], args: argparse.Namespace) -> tuple[float, float, list[float]]:
    """(b) batches events/s, (c) singles events/s, (d) webhook latencies in seconds."""
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        def poster(content_type: str, expected: Callable[[bytes], int]) -> Callable[[bytes], Awaitable[None]]:
            async def post(body: bytes) -> None:
                async with session.post(f"{url}/v1/events", data=body, headers={"Content-Type": content_type}) as got:
                    answer = await got.json()
                    if got.status != 200 or answer["accepted"] != expected(body):
                        raise SystemExit(f"ingest answered {got.status}: {str(answer)[:500]}")

            return post

        ndjson = poster("application/x-ndjson", lambda body: body.count(b"\n"))
        await ndjson(b"\n".join(values[:10]) + b"\n")  # warm-up: ingest starts its producer on first use
        batches = [b"\n".join(values[i : i + args.batch]) + b"\n" for i in range(0, len(values), args.batch)]
        batch_rate = len(values) / await drive(batches, args.concurrency, ndjson)
        print(f"(b) NDJSON batches of {args.batch}: {batch_rate:,.0f} events/s", flush=True)

        singles = values[: args.singles]
        single_rate = len(singles) / await drive(singles, args.concurrency, poster("application/json", lambda _: 1))
        print(f"(c) single events: {single_rate:,.0f} events/s", flush=True)

        webhook = WEBHOOK.read_bytes()
        headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
        latencies: list[float] = []
        for _ in range(args.webhooks):
            started = time.perf_counter()
            async with session.post(f"{url}/v1/sources/label-studio", data=webhook, headers=headers) as got:
                answer = await got.json()
            latencies.append(time.perf_counter() - started)
            if got.status != 200 or not answer.get("accepted"):
                raise SystemExit(f"the webhook was answered {got.status}: {str(answer)[:500]}")
    return batch_rate, single_rate, latencies


def simulated(count: int) -> list[tuple[bytes, bytes]]:
    """`count` simulated events (key, value), all in the past: the contract refuses events from the future."""
    start = datetime.now(UTC) - timedelta(seconds=count / 20)
    messages = list(islice(generate(Plan(seed=21, start=start, rate=20, annotators=50)), count))
    overshoot = max(m.occurred_at for m in messages) - datetime.now(UTC) + timedelta(minutes=1)
    if overshoot > timedelta(0):  # a task's later events (reviews, edits) come after the plan's rate
        messages = list(islice(generate(Plan(seed=21, start=start - overshoot, rate=20, annotators=50)), count))
    return [(m.key, m.value) for m in messages]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events for (a) and (b) (default 100k)")
    parser.add_argument("--batch", type=int, default=500, help="events per NDJSON request (default 500)")
    parser.add_argument("--singles", type=int, default=5_000, help="events sent one per request (default 5k)")
    parser.add_argument("--webhooks", type=int, default=1_000, help="webhook deliveries timed (default 1k)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight for (b), (c) (default 4)")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-bench-ingest-http-"))
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=workdir / "broker.log")
    broker.start()
    server = None
    try:
        bootstrap = broker.settings.bootstrap_servers
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        port = free_port()
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("LABELPULSE_")},
            "LABELPULSE_BROKER_PORT": str(broker.settings.port),  # the embedded broker, as `up` runs ingest
            "LABELPULSE_EVENTS_TOPIC": topic,
            "LABELPULSE_EVENTS_PARTITIONS": str(args.partitions),
            "LABELPULSE_DEAD_LETTER_TOPIC": f"{topic}.dead-letters",
            "LABELPULSE_INGEST_PORT": str(port),
            "LABELPULSE_LABEL_STUDIO_SECRET": SECRET,
        }
        log = workdir / "ingest.log"
        server = spawn(cli_command("ingest", "--loglevel", "warning"), log, env)  # it creates the topics
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ingest did not start; see {log}")
            time.sleep(0.2)

        messages = simulated(args.events)
        values = [value for _, value in messages]
        print(f"{len(messages):,} simulated events, topic {topic} ({args.partitions} partitions)", flush=True)

        direct_rate = asyncio.run(direct(bootstrap, topic, messages))
        print(f"(a) direct aiokafka producer, acks=all: {direct_rate:,.0f} events/s", flush=True)
        batch_rate, single_rate, latencies = asyncio.run(through_http(url, values, args))
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        print(
            f"(d) one Label Studio webhook ({WEBHOOK.name}), {len(latencies)} in a row: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (mean {statistics.fmean(latencies) * 1000:.1f} ms)",
            flush=True,
        )
        verdict = "met" if batch_rate >= 0.5 * direct_rate else "NOT met"
        print(
            f"\nsummary: direct {direct_rate:,.0f}/s; batches {batch_rate:,.0f}/s = {batch_rate / direct_rate:.1%} "
            f"of direct (target >= 50 %: {verdict}); singles {single_rate:,.0f}/s = {single_rate / direct_rate:.1%} "
            f"of direct; webhook p50 {p50:.1f} ms p99 {p99:.1f} ms"
        )
    finally:
        terminate(server, timeout_s=30)
        broker.stop()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


if __name__ == "__main__":
    main()
