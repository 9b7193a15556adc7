"""WatchProject's shared poll, without servers: one change check per project and interval however many
watch, one summary per change and window, and a failed check ends every watch of it."""

from __future__ import annotations

import asyncio
from datetime import datetime

import grpc
import pytest

from api.data import Reader
from api.server import Reads, Refused
from api.watch import WatchHub
from schema import queries
from schema.client import ClickHouseSettings, ClickHouseUnavailable


class Project:
    """A project whose data changes when the test says so, counting the reads made of it."""

    def __init__(self) -> None:
        self.version = 0
        self.checks = 0
        self.summaries: list[tuple[str, int, datetime]] = []

    def signal(self, project: str) -> int:
        self.checks += 1
        return self.version

    def summary(self, project: str, window_s: int, end: datetime) -> tuple[int, int]:
        self.summaries.append((project, window_s, end))
        return self.version, window_s


async def take(stream, count: int) -> list:  # type: ignore[no-untyped-def]
    return [await anext(stream) for _ in range(count)]


def test_many_watchers_share_one_poll_and_one_summary_per_change() -> None:
    async def scenario() -> tuple[Project, list[list], int]:
        data = Project()
        hub: WatchHub[tuple[int, int]] = WatchHub(data.summary, data.signal)
        streams = [hub.watch("p", 1, 3600) for _ in range(20)]
        first = await asyncio.gather(*(take(stream, 1) for stream in streams))
        data.version = 1  # new events landed
        second = await asyncio.gather(*(take(stream, 1) for stream in streams))
        polls = len(hub.polls)
        for stream in streams:
            await stream.aclose()
        assert not hub.polls, "the poll stops with its last watcher"
        return data, [a + b for a, b in zip(first, second, strict=True)], polls

    data, seen, polls = asyncio.run(scenario())
    assert polls == 1
    assert all(answers == [(0, 3600), (1, 3600)] for answers in seen)
    assert len(data.summaries) == 2, "one summary per change, shared by the 20 watchers"


def test_watchers_of_other_windows_share_the_poll_but_get_their_own_summary() -> None:
    async def scenario() -> tuple[list, list, int]:
        data = Project()
        hub: WatchHub[tuple[int, int]] = WatchHub(data.summary, data.signal)
        hour, day = hub.watch("p", 1, 3600), hub.watch("p", 1, 86_400)
        answers = [await anext(hour), await anext(day)]
        polls = len(hub.polls)
        await hour.aclose()
        await day.aclose()
        return answers, data.summaries, polls

    answers, summaries, polls = asyncio.run(scenario())
    assert answers == [(0, 3600), (0, 86_400)] and polls == 1
    assert [window for _, window, _ in summaries] == [3600, 86_400]


def test_a_failed_check_ends_every_watch_with_its_error() -> None:
    def broken(project: str) -> int:
        raise ConnectionError("ClickHouse is gone")

    async def scenario() -> None:
        hub: WatchHub[int] = WatchHub(lambda project, window, end: 0, broken)
        await anext(hub.watch("p", 1, 60))

    with pytest.raises(ConnectionError, match="gone"):
        asyncio.run(scenario())


def test_no_read_starts_after_the_callers_deadline() -> None:
    reads = Reads(Reader(ClickHouseSettings(port=1)), None, deadline=0.0)  # long past; nothing listens on port 1
    with pytest.raises(Refused) as refused:
        reads(queries.project_names())
    assert refused.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_no_read_starts_after_the_call_was_cancelled() -> None:
    reads = Reads(Reader(ClickHouseSettings(port=1)), None, deadline=None)
    reads.cancelled.set()
    with pytest.raises(Refused) as refused:
        reads.many({"a": queries.project_names(), "b": queries.data_as_of()})
    assert refused.value.code == grpc.StatusCode.CANCELLED


def test_reads_side_by_side_raise_the_first_error() -> None:
    reads = Reads(Reader(ClickHouseSettings(port=1)), None, deadline=None)  # nothing listens on port 1
    with pytest.raises(ClickHouseUnavailable, match="cannot reach ClickHouse"):
        reads.many({name: queries.project_names() for name in range(20)})
