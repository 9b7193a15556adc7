"""Running simulated events through real workers, and checking what they stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from labelpulse.broker import BrokerSettings
from labelpulse.simulator import Plan, read_recording, send
from tests.support.references import expected_active_time
from tests.support.services import WorkerHarness, wait_for


def simulate(harness: WorkerHarness, kafka: BrokerSettings, tmp_path: Path, count: int, **plan: object) -> list[bytes]:
    """Send `count` simulated messages (fast) and return exactly what was sent."""
    record = tmp_path / f"sent-{uuid.uuid4().hex[:6]}.jsonl"
    start = datetime.now(UTC) - timedelta(hours=1)
    asyncio.run(
        send(
            # A sparse simulated clock (5 events/s) so tasks run their whole course within the sample.
            Plan(seed=11, start=start, rate=5, **plan),  # type: ignore[arg-type]
            kafka=harness.kafka,
            count=count,
            realtime=False,
            record=record,
        )
    )
    return [value for _, value in read_recording(record)]


def resend(kafka: BrokerSettings, topic: str, values: list[bytes]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
        await producer.start()
        try:  # in order per partition (one producer); acknowledged before returning
            acknowledged = [
                await producer.send(topic, value, key=json.loads(value)["task_id"].encode()) for value in values
            ]
            await asyncio.gather(*acknowledged)
        finally:
            await producer.stop()

    asyncio.run(go())


def stored(client: Client, *, settled: bool = True) -> int:
    """Events plus dead letters. `settled`: -1 while an insert into this database runs, since an insert's rows
    are visible in `events` before its materialized views have written the rollups, which would be read short."""
    count = "(SELECT count() FROM events) + (SELECT count() FROM dead_letters)"
    if not settled:
        return int(client.command(f"SELECT {count}"))
    inserting = (
        "(SELECT count() FROM system.processes WHERE query_kind = 'Insert' AND current_database = currentDatabase())"
    )
    return int(client.command(f"SELECT if({inserting} > 0, -1, {count})"))


def assert_active_time_matches(client: Client, expected: pd.DataFrame) -> None:
    """annotator_active_hour equals the sorted-events definition (pandas), once the activity topic
    (a second hop through Kafka) has caught up."""
    want = expected_active_time(expected, idle_threshold_ms=100_000)
    want = want[(want["active_ms"] != 0) | (want["sessions"] != 0)].reset_index(drop=True)
    want["active_hours"] = want.pop("active_ms") / 3_600_000

    def got() -> pd.DataFrame:
        frame = client.query_df(
            "SELECT annotator_id, project_id, hour, sessions, active_hours FROM annotator_active_hour "
            "WHERE active_hours != 0 OR sessions != 0 ORDER BY annotator_id, project_id, hour"
        )
        frame["hour"] = frame["hour"].dt.tz_localize(None)
        return frame[["annotator_id", "project_id", "hour", "sessions", "active_hours"]]

    def matches() -> bool:  # sessions and active time both: either may still be on its way
        frame = got()
        return (
            len(frame) == len(want)
            and frame["sessions"].tolist() == want["sessions"].tolist()
            and np.allclose(frame["active_hours"], want["active_hours"], rtol=1e-9)
        )

    try:
        wait_for(matches, 60, "active time caught up")
    finally:
        pd.testing.assert_frame_equal(got(), want, check_dtype=False, rtol=1e-9)
