"""streams.faust_internals: the Faust code it relies on is the code it was written against, and
pipelined batches become durable in order; the whole path runs against the real broker in
tests/streams/test_worker.py."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import tomllib
import uuid
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from labelpulse.broker import BrokerSettings
from streams.app import create_app
from streams.faust_internals import in_order, send_keyed
from streams.settings import WorkerSettings

# The Faust (and mode) code streams.faust_internals mirrors or reaches into, as of the pinned
# versions: a sha256 prefix of each one's source.
RELIED_ON = {
    "faust.transport.drivers.aiokafka:Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.drivers.aiokafka:Consumer.getmany": "4b168d84882a70d6",
    "faust.transport.drivers.aiokafka:Consumer.ack": "5fcf41cf45153475",
    "faust.transport.drivers.aiokafka:Consumer._add_gap": "4df2573ded7c1c2c",
    "faust.transport.drivers.aiokafka:Consumer._to_message": "7c24f6511b2fcef7",
    "faust.transport.drivers.aiokafka:Consumer._wait_next_records": "6218e1969a636b3f",
    "faust.transport.drivers.aiokafka:Consumer.perform_seek": "0e8c130ff4b0afd8",
    "faust.transport.drivers.aiokafka:Consumer.wait_empty": "e4662fe24f094819",
    "faust.transport.consumer:Consumer.__init__": "302410d59e6972d1",
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f6cad",
    "aiokafka.consumer.consumer:AIOKafkaConsumer.start": "2f1ba70443327538",
    "aiokafka.producer.producer:AIOKafkaProducer._partition": "e45fa9c539d431d1",
    "aiokafka.client:AIOKafkaClient._wait_on_metadata": "52b0a5ee78ef3aa0",
    "faust.transport.drivers.aiokafka:Producer._ensure_producer": "5592a4bbdf251325",
    "faust.stores.memory:Store.__post_init__": "e59c82f3785458b2",
    "faust.stores.memory:Store.apply_changelog_batch": "71863e3cd727aac2",
    "mode.utils.futures:notify": "ef6a073439d5ece3",
}


def test_the_pinned_faust_is_the_one_installed() -> None:
    dependencies = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    pins = dict(pin.split("==") for pin in dependencies if "==" in pin)
    for package in ("faust-streaming", "mode-streaming", "aiokafka"):
        assert package in pins, f"{package} must be pinned exactly: streams.faust_internals relies on its internals"
        assert version(package) == pins[package], f"{package} {version(package)} installed, {pins[package]} pinned"


def test_the_faust_code_the_worker_relies_on_has_not_changed() -> None:
    """After an upgrade of Faust, mode or aiokafka this fails, naming what changed: read the new
    code against streams.faust_internals (what it mirrors, the private names it uses), adapt
    it, run tests/streams/test_worker.py, then update the fingerprints here."""
    changed = []
    for name, fingerprint in RELIED_ON.items():
        module, _, qualname = name.partition(":")
        code = importlib.import_module(module)
        for part in qualname.split("."):
            code = getattr(code, part, None)
            if code is None:
                changed.append(f"{name} is gone")
                break
        else:
            if hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16] != fingerprint:
                changed.append(f"{name} changed")
    assert not changed, "streams.faust_internals must be checked against the new Faust: " + "; ".join(changed)


def test_batches_become_durable_in_order_even_when_a_later_one_is_quicker() -> None:
    done: list[str] = []

    async def write(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        done.append(name)

    async def main() -> None:
        first = asyncio.create_task(in_order(None, write("first", 0.05)))
        second = asyncio.create_task(in_order(first, write("second", 0.0)))
        await second

    asyncio.run(main())
    assert done == ["first", "second"]


def test_nothing_is_written_after_a_batch_that_failed() -> None:
    started: list[str] = []

    async def fail() -> None:
        raise RuntimeError("ClickHouse refused the insert")

    async def write() -> None:
        started.append("second")

    async def main() -> None:
        first = asyncio.create_task(in_order(None, fail()))
        second = asyncio.create_task(in_order(first, write()))
        with pytest.raises(RuntimeError, match="refused"):
            await second

    asyncio.run(main())
    assert started == []


def test_a_batch_in_flight_is_not_cancelled_with_the_one_waiting_for_it() -> None:
    # Faust cancels the fetch loop at a rebalance; the batch being written must still finish.
    # Ordered by events, not sleeps: the first write is under way, and the waiting batch blocked on it, before
    # the cancel; the first write finishes only after it.
    done: list[str] = []

    async def main() -> None:
        writing, release = asyncio.Event(), asyncio.Event()

        async def write() -> None:
            writing.set()
            await release.wait()
            done.append("first")

        first = asyncio.create_task(in_order(None, write()))
        waiting = asyncio.create_task(in_order(first, asyncio.sleep(0)))
        await writing.wait()  # woken after both tasks ran to their first await: the waiting one is on `first`
        assert not waiting.done()
        waiting.cancel()
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    assert done == ["first"]


def test_the_worker_asks_the_broker_to_hold_a_fetch_as_long_as_configured(tmp_path: Path) -> None:
    """Faust fixes aiokafka's fetch wait at 1.5 s; the embedded broker holds each fetch half the wait left."""

    async def consumer_wait() -> int:
        settings = replace(WorkerSettings.from_env({"LABELPULSE_FETCH_MAX_WAIT_MS": "123"}), state_dir=tmp_path)
        app = create_app(settings)
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(consumer_wait()) == 123


@pytest.mark.broker
def test_keyed_messages_sent_in_batches_go_where_a_plain_send_puts_their_keys(kafka: BrokerSettings) -> None:
    """The activity topic is written by send_keyed (earlier by Faust's topic.send, i.e. aiokafka's send): an
    annotator's messages must stay on one partition, the same before and after an upgrade."""
    suffix = uuid.uuid4().hex[:8]
    plain, batched = f"plain-{suffix}", f"batched-{suffix}"
    keys = [f"annotator-{number}".encode() for number in range(40)]

    async def partitions_by_key() -> tuple[dict[bytes, int], dict[bytes, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await producer.start()
        try:
            for key in keys:
                await producer.send_and_wait(plain, b"plain", key=key)
            await asyncio.gather(*await send_keyed(producer, batched, [(key, b"batched") for key in keys]))
        finally:
            await producer.stop()
        found: tuple[dict[bytes, int], dict[bytes, int]] = ({}, {})
        for topic, partitions in zip((plain, batched), found, strict=True):
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest", group_id=None
            )
            await consumer.start()
            try:
                while len(partitions) < len(keys):
                    for tp, records in (await consumer.getmany(timeout_ms=10_000)).items():
                        partitions.update((record.key, tp.partition) for record in records)
            finally:
                await consumer.stop()
        return found

    plain_partitions, batched_partitions = asyncio.run(partitions_by_key())
    assert len(set(plain_partitions.values())) > 1, "the keys should spread over several partitions"
    assert batched_partitions == plain_partitions
