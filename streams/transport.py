"""A Faust transport whose consumer hands whole fetches of chosen topics to a batch handler.

Faust delivers every message on its own: consumer -> conductor (a lock per message) -> channel
queue -> stream -> agent, each delivery wrapped in an `asyncio.wait` over two new tasks. That
costs ~100-150 µs of event-loop time per message and caps any agent at ~7-10k messages/s,
whatever the broker or the sink can do (bench/RESULTS.md). The worker's job is batch-shaped
anyway, so for its events topic this consumer skips the per-message path: each `getmany` result
is handed to the topic's batch handler in one call, and the messages are acknowledged — and so
become committable — only after the handler returns, i.e. once they are durable.

Every other topic (table changelogs, Faust's own) still takes Faust's normal path, so group
membership, rebalancing, table recovery and offset commits are Faust's, unchanged.

Use the URL scheme `labelpulse-kafka://` for the broker and register handlers with
`register_batch_handler(app, topic, handler)` before the worker starts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from typing import Any, ClassVar

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]
SCHEME = "labelpulse-kafka"


class BatchingConsumer(faust_aiokafka.Consumer):
    # topic -> handler, per app (one worker process runs one app).
    handlers: ClassVar[dict[str, BatchHandler]] = {}

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by the worker tests
        # Mirrors faust.transport.consumer.Consumer._drain_messages, batching the chosen topics.
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        monitor = self.app.monitor
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batches: defaultdict[str, list[Any]] = defaultdict(list)
                singles: list[Any] = []
                await asyncio.sleep(0)
                if self.should_stop:
                    break
                async for tp, message in self.getmany(timeout=1.0):
                    offset = message.offset
                    previous = read_offset[tp]
                    if previous is not None and offset < previous:
                        continue  # already delivered before a seek
                    if previous and offset - previous > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, previous + 1, offset)
                    if message.topic in self.handlers:
                        # Pending until the handler returns: a rebalance waits for these to be
                        # acknowledged (Faust's wait_empty) before giving the partition away, so
                        # the next owner never starts while this batch is still being written.
                        self.track_message(message)
                        batches[message.topic].append(message)
                    else:
                        singles.append(message)
                    read_offset[tp] = offset
                for message in singles:
                    await self.callback(message)
                for topic, messages in batches.items():
                    await self.handlers[topic](messages)
                    for message in messages:
                        self.ack(message)
                    if monitor is not None:  # Faust's stall diagnostics look here for progress
                        now = monotonic()
                        for message in messages:
                            monitor.stream_inbound_time[message.tp] = now
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class Transport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def register_batch_handler(topic: str, handler: BatchHandler) -> None:
    BatchingConsumer.handlers[topic] = handler
