"""Dashboard query time on a large embedded ClickHouse: every query each view really makes.

    .venv/bin/python bench/dashboard.py                 # 10M raw events (the target of issue 4)
    .venv/bin/python bench/dashboard.py --events 1000000

Loads `--base` simulated events through the worker's own processor and sink (streams.offline),
then copies them back in time inside ClickHouse until the events table holds `--events` rows
(the copies go through the materialized views like any insert, so the rollups hold them too).
Then each view is rendered with Streamlit's AppTest, caching off, while every query it sends is
timed; printed per query (p50/p95 over the repetitions) and per page (sum of its queries).

Baseline, same run: the Overview's throughput chart answered from raw events instead of the
rollup, to show what the rollups buy.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labelpulse.net import free_port  # noqa: E402
from labelpulse.runtime import EmbeddedClickHouseProcess  # noqa: E402
from labelpulse.simulator import Plan, generate  # noqa: E402
from schema import migrations  # noqa: E402
from schema.client import ClickHouseSettings  # noqa: E402
from streams.offline import load  # noqa: E402

PAGES = ("views/overview.py", "views/project.py", "views/annotators.py", "views/pipeline.py")


def seed(client: Any, total: int, base: int, annotators: int | None = None) -> None:
    rate = 50.0  # simulated events per second: `base` events span base / rate seconds
    span_s = int(base / rate) + 600
    started = time.perf_counter()
    plan = Plan(
        seed=3,
        start=datetime.now(UTC) - timedelta(seconds=span_s),
        rate=rate,
        anomalies=("garbage",),
        annotators=annotators,
    )
    values = [m.value for m in islice(generate(plan), base)]
    load(values, lambda: client, on_batch=lambda n: print(f"\r  loaded {n:,}/{base:,} base events", end=""))
    print(f"\n  base loaded in {time.perf_counter() - started:.0f}s")
    stored = int(client.command("SELECT count() FROM events"))
    copies = max(0, math.ceil((total - stored) / max(stored, 1)))  # at least `total`: whole copies, rounded up
    copying = time.perf_counter()
    for copy in range(1, copies + 1):
        shift = f"toIntervalSecond({copy * span_s})"
        # `source.`: in WHERE, the REPLACE alias kafka_topic would shadow the column.
        client.command(
            f"""INSERT INTO events SELECT * REPLACE (
                concat(event_id, '~{copy}') AS event_id, concat(task_id, '~{copy}') AS task_id,
                occurred_at - {shift} AS occurred_at, received_at - {shift} AS received_at,
                'bench-copy' AS kafka_topic, kafka_offset + {copy} * 100000000 AS kafka_offset)
            FROM events AS source WHERE source.kafka_topic = 'offline'"""
        )
        for table, time_column in (("pair_agreement_changes", "labeled_at"), ("task_agreement_changes", "labeled_at"),
                                   ("handle_time_changes", "submitted_at"), ("gold_answer_changes", "answered_at"),
                                   ("review_round_changes", "reviewed_at"), ("active_time", "hour")):  # fmt: skip
            client.command(
                f"INSERT INTO {table} SELECT * REPLACE ({time_column} - {shift} AS {time_column}, "
                f"'bench-copy' AS kafka_topic) FROM {table} AS source WHERE source.kafka_topic LIKE 'offline%'"
            )
        print(f"\r  copies {copy}/{copies}: {client.command('SELECT count() FROM events'):,} events", end="")
    print(f"\n  copied in {time.perf_counter() - copying:.0f}s ({stored:,} events and their derived rows a copy)")
    client.command("OPTIMIZE TABLE rollup_project_minute FINAL")  # what background merges do over time


def label(sql: str) -> str:
    caller = next(
        (frame.function for frame in inspect.stack() if "/dashboard/views/" in frame.filename), "app (sidebar)"
    )
    table = re.search(r"FROM\s+([a-z_]+)", sql)
    return f"{caller}: {table.group(1) if table else '?'}"


def time_pages(
    settings: ClickHouseSettings, repeat: int, range_key: str
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
    """Per page: each query's durations, and the total query time of each render."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboard.data as data

    os.environ.update(settings.to_env())
    os.environ["LABELPULSE_DASHBOARD_CACHE_TTL_S"] = "0"
    timings: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    totals: dict[str, list[float]] = defaultdict(list)
    original: Callable[[Any, Any], Any] = data._run
    current: dict[str, str | None] = {"page": None}  # None: not recording

    def timed(key: Any, scope: Any) -> Any:  # as data._run: the query, and the viewer's projects
        started = time.perf_counter()
        try:
            return original(key, scope)
        finally:
            if current["page"]:
                elapsed = time.perf_counter() - started
                timings[current["page"]][label(key[0])].append(elapsed)
                totals[current["page"]][-1] += elapsed

    data._run = timed  # type: ignore[assignment]
    for page in PAGES:
        for _ in range(repeat):
            st.cache_resource.clear()
            at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=300)
            at.query_params["range"] = range_key
            current["page"] = None
            at.run()  # the default page first: AppTest cannot start elsewhere
            current["page"] = page
            totals[page].append(0.0)
            at.switch_page(page).run()
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
    return timings, totals


def baseline(client: Any, hours: int) -> tuple[float, float]:
    """The Overview throughput chart from raw events vs from the rollup (seconds, best of 3)."""
    raw = (
        "SELECT toStartOfInterval(occurred_at, INTERVAL 15 MINUTE) AS b, project_id, "
        "countIf(event_type = 'annotation_submitted') FROM events "
        f"WHERE occurred_at >= now() - INTERVAL {hours} HOUR GROUP BY b, project_id FORMAT Null"
    )
    rollup = (
        "SELECT toStartOfInterval(minute, INTERVAL 15 MINUTE) AS b, project_id, sum(annotations_submitted) "
        f"FROM rollup_project_minute WHERE minute >= now() - INTERVAL {hours} HOUR GROUP BY b, project_id FORMAT Null"
    )

    def best(sql: str) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            client.command(sql)
            runs.append(time.perf_counter() - started)
        return min(runs)

    return best(raw), best(rollup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events to hold (default 10M)")
    parser.add_argument("--base", type=int, default=200_000, help="simulated events loaded before copying")
    parser.add_argument("--repeat", type=int, default=5, help="renders per page (default 5)")
    parser.add_argument("--range", dest="range_key", default="7d", help="the dashboard time range (default 7d)")
    parser.add_argument(
        "--annotators",
        type=int,
        help="a crew of this size instead of one sized for the rate (13 matches the simulator before 2026-11-30)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-bench-dashboard-"))
    settings = ClickHouseSettings(port=free_port(), database="bench")
    process = EmbeddedClickHouseProcess(settings, workdir / "clickhouse", log_path=workdir / "clickhouse.log")
    process.start()
    try:
        client = migrations.open_database(settings)
        migrations.migrate(client)
        print(f"seeding {args.events:,} events …")
        seed(client, args.events, min(args.base, args.events), args.annotators)
        events = int(client.command("SELECT count() FROM events"))
        raw_s, rollup_s = baseline(client, 24 * 7)
        print(f"\nbaseline, 7 days of throughput by project: raw events {raw_s * 1000:.0f} ms, "
              f"rollup {rollup_s * 1000:.0f} ms (raw/rollup {raw_s / rollup_s:.0f}x)")  # fmt: skip
        timings, totals = time_pages(settings, args.repeat, args.range_key)
        print(f"\n{events:,} raw events; range {args.range_key}; {args.repeat} renders per page, cache off\n")
        print(f"{'page / query':<58} {'p50 ms':>8} {'p95 ms':>8}")
        for page, per_query in timings.items():
            page_ms = [seconds * 1000 for seconds in totals[page]]
            print(f"{page:<58} {statistics.median(page_ms):>8.0f} {_p95(page_ms):>8.0f}  (all its queries)")
            for name, runs in sorted(per_query.items(), key=lambda item: -statistics.median(item[1])):
                print(f"  {name:<56} {statistics.median(runs) * 1000:>8.1f} {_p95(runs) * 1000:>8.1f}")
    finally:
        process.stop()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
