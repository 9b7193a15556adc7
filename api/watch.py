"""WatchProject's polling, shared: one poll per (project, interval) however many clients watch it, and one
summary per change and window, whoever asks for it first computing it for all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge

POLLS = Gauge("labelpulse_api_watch_polls", "Shared WatchProject polls running (one per project and interval)")
POLL_QUERIES = Counter("labelpulse_api_watch_poll_queries_total", "Change checks made by WatchProject's shared polls")
SUMMARIES = Counter(
    "labelpulse_api_watch_summaries_total", "Project summaries WatchProject computed (one per change and window)"
)
WATCHERS = Gauge("labelpulse_api_watchers", "WatchProject streams open")

Summary = TypeVar("Summary")


@dataclass
class _Poll(Generic[Summary]):
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    version: int = 0  # bumped when the project's data changed (and on the first check)
    signal: Any = None
    end: datetime = field(default_factory=lambda: datetime.now(UTC))  # every summary of this version ends here
    summaries: dict[int, asyncio.Task[Summary]] = field(default_factory=dict)  # by window, this version's
    error: Exception | None = None
    watchers: int = 0
    task: asyncio.Task[None] | None = None


class WatchHub(Generic[Summary]):
    """`signal(project)` is cheap and changes when new data of the project is stored; `summary(project,
    window_s, end)` is the expensive answer. Both are blocking reads, run in threads."""

    def __init__(
        self,
        summary: Callable[[str, int, datetime], Summary],
        signal: Callable[[str], Any],
        on_poll: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self.summary, self.signal, self.on_poll = summary, signal, on_poll
        self.polls: dict[tuple[str, int], _Poll[Summary]] = {}

    async def watch(self, project: str, interval_s: int, window_s: int) -> AsyncGenerator[Summary, None]:
        """The summary now, then each time the project's data changes; raises the poll's error when a
        check fails (the stream ends: the client watches again)."""
        key = (project, interval_s)
        poll = self.polls.get(key)
        if poll is None:
            poll = self.polls[key] = _Poll()
            poll.task = asyncio.create_task(self._poll(project, interval_s, poll))
            POLLS.inc()
        poll.watchers += 1
        WATCHERS.inc()
        try:
            seen = 0
            while True:
                async with poll.changed:
                    while poll.version == seen and poll.error is None:
                        await poll.changed.wait()
                if poll.error is not None:
                    raise poll.error
                seen = poll.version
                if window_s not in poll.summaries:
                    SUMMARIES.inc()
                    poll.summaries[window_s] = asyncio.create_task(
                        asyncio.to_thread(self.summary, project, window_s, poll.end)
                    )
                yield await asyncio.shield(poll.summaries[window_s])  # one watcher leaving must not cancel it
        finally:
            WATCHERS.dec()
            poll.watchers -= 1
            if poll.watchers == 0 and self.polls.get(key) is poll:
                del self.polls[key]
                POLLS.dec()
                if poll.task is not None:
                    poll.task.cancel()

    async def _poll(self, project: str, interval_s: int, poll: _Poll[Summary]) -> None:
        while True:
            try:
                signal = await asyncio.to_thread(self.signal, project)
            except Exception as error:
                self.on_poll(False)
                async with poll.changed:
                    poll.error = error
                    poll.changed.notify_all()
                return
            POLL_QUERIES.inc()
            self.on_poll(True)
            if poll.version == 0 or signal != poll.signal:
                async with poll.changed:
                    poll.signal, poll.end, poll.summaries = signal, datetime.now(UTC), {}
                    poll.version += 1
                    poll.changed.notify_all()
            await asyncio.sleep(interval_s)
