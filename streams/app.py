"""The Faust app of `labelpulse worker`: its configuration, topics and tables, wired to the pipeline.

Run it with `labelpulse worker` or `faust -A streams.app worker -l info`. Settings come from
LABELPULSE_* variables (see streams.settings); workers sharing LABELPULSE_CONSUMER_GROUP
split the topic's partitions between them. What happens to each batch is streams.pipeline;
how whole fetches reach it, instead of one message at a time, is streams.faust_internals.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import faust

from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import create_topics
from streams import compiled
from streams.changelog import TableStateStore
from streams.faust_internals import SCHEME, register_batch_handler, set_fetch_max_wait
from streams.pipeline import Pipeline
from streams.settings import WorkerSettings, faust_credentials

log = logging.getLogger("labelpulse.worker")
# Net allocations between young-generation collections (Python's default: 700). The worker keeps
# ~17 tracked objects an event (records, events, rows, state) until its batch is durable: at
# 100,000 a young collection ran every ~6,000 events and rescanned the batches in flight, ~18 ms
# a pass, ~10 % of the worker's time (bench/RESULTS.md).
GC_THRESHOLD = 1_000_000


def create_app(settings: WorkerSettings) -> faust.App:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    set_fetch_max_wait(settings.fetch_max_wait_ms)
    app = WorkerApp(
        settings.kafka,
        settings.consumer_group,
        broker=[f"{SCHEME}://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings.kafka.security),
        store="memory://",  # table state is rebuilt from its changelog topic on start
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        datadir=str(settings.state_dir),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        # One fetch is one batch: at most this many events, gathered for at most ~fetch wait.
        broker_max_poll_records=settings.batch_max_events,
        # Per partition and fetch (Faust's default is 1 MB): the next fetch is then under way while
        # a batch is processed, and the event loop does not wait on the broker between batches.
        consumer_max_fetch_size=8 << 20,
        # Record batches of this size at most (Faust's default is 16 KB). A batch's changelog and activity go
        # out in record batches, and one waits for the one before on its partition to be sent: a round trip
        # each (bench/RESULTS.md, 2026-12-01 (morning)). Within a Kafka broker's 1 MB message limit.
        producer_max_batch_size=512 << 10,
        # A message Kafka does not take fails after this, instead of Faust's default 20 minutes.
        producer_request_timeout=settings.publish_timeout_s,
        Worker=Worker,
    )
    partitions = settings.kafka.partitions  # topics and tables alike: a key's state lives with its events

    def topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, partitions=partitions, internal=True)

    def table(name: str) -> TableStateStore:
        # Values are plain JSON objects (no value_type): Faust decodes them back to dicts on recovery.
        return TableStateStore(app.Table(name, default=None, partitions=partitions, key_type=str))

    events_topic = topic(settings.kafka.events_topic)
    backfill_topic = topic(settings.kafka.backfill_topic)  # keyed and partitioned like the events topic
    activity_topic = topic(settings.kafka.activity_topic)
    pipeline = Pipeline(
        app,
        settings,
        tasks=table("tasks"),  # per task: its events that derived metrics read, keyed by task_id like the events
        annotators=table("annotators"),  # per annotator: recent annotation events, keyed like the activity topic
        dead_letter_topic=topic(settings.kafka.dead_letter_topic),
    )
    register_batch_handler(
        settings.kafka.events_topic,
        pipeline.process_events,
        rewind_check=pipeline.check_incarnation,
        first_unstored=pipeline.first_unstored_event,
    )
    register_batch_handler(
        settings.kafka.backfill_topic,
        pipeline.process_backfill,
        rewind_check=pipeline.check_incarnation,
        first_unstored=pipeline.first_unstored_event,
    )
    register_batch_handler(
        settings.kafka.activity_topic,
        pipeline.process_activity,
        rewind_check=pipeline.check_incarnation,
        first_unstored=pipeline.first_unstored_activity,
    )

    # The agents declare the subscriptions; messages arrive in whole fetches at the handlers above.
    @app.agent(events_topic)
    async def ingest(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.agent(backfill_topic)
    async def backfill(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.agent(activity_topic)
    async def activity(stream: Any) -> None:
        async for _ in stream:
            pass

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _forget_partitions(sender: Any, **_: Any) -> None:
        pipeline.forget_partitions()

    @app.timer(interval=5.0)
    async def _watch_incarnations() -> None:
        await pipeline.check_incarnations()

    @app.timer(interval=10.0)
    async def _report() -> None:
        pipeline.report()

    return app


class Worker(faust.Worker):
    """Faust's worker, without its progress spinner when its output is not a terminal: the spinner
    writes cursor and backspace codes all the same, which filled the worker's log under `up`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.stdout.isatty():
            self.spinner = None


class WorkerApp(faust.App):
    """The Faust app, creating LabelPulse's topics before anything is consumed or produced."""

    def __init__(self, kafka: KafkaSettings, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kafka = kafka
        self.events_partitions = kafka.partitions  # as the events topic has them, once created or found

    async def on_first_start(self) -> None:
        await super().on_first_start()
        # A batch allocates ~30 objects per event, nearly all freed by reference counting; with
        # Python's default thresholds the cycle collector still runs hundreds of times per batch
        # and keeps rescanning the long-lived state (task tables, dedup windows): 10-30% of the
        # processing time in bench/RESULTS.md. Collect less often, and never what start-up made.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        # A warning when interpreted by no one's choice: ~10 % more CPU an event (shown under `labelpulse up` too).
        expected = compiled.running_compiled() or compiled.switched_off()
        log.log(logging.INFO if expected else logging.WARNING, "per-event code: %s", compiled.status())
        counts = await create_topics(self.kafka)
        self.events_partitions = counts[self.kafka.events_topic]
        log.info("topics: %s", ", ".join(f"{topic} ({n} partitions)" for topic, n in counts.items()))
        if counts[self.kafka.events_topic] != self.kafka.partitions:
            log.warning(
                "%s has %d partitions, LABELPULSE_EVENTS_PARTITIONS says %d: at most %d workers share the load",
                self.kafka.events_topic,
                counts[self.kafka.events_topic],
                self.kafka.partitions,
                counts[self.kafka.events_topic],
            )


def __getattr__(name: str) -> faust.App:
    """`faust -A streams.app worker` finds the app here, built from LABELPULSE_* when first asked for:
    importing this module builds nothing, so `labelpulse worker` builds its one app from its own settings."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = globals()["app"] = create_app(WorkerSettings.from_env())
    return app
