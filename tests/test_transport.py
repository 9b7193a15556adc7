"""The order in which pipelined batches become durable (streams.transport); the whole path runs
against the real broker in tests/test_worker.py."""

from __future__ import annotations

import asyncio

import pytest

from streams.transport import in_order


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
    done: list[str] = []

    async def write() -> None:
        await asyncio.sleep(0.05)
        done.append("first")

    async def main() -> None:
        first = asyncio.create_task(in_order(None, write()))
        waiting = asyncio.create_task(in_order(first, asyncio.sleep(0)))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await first

    asyncio.run(main())
    assert done == ["first"]
