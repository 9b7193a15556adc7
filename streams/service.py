"""The worker as a service: `labelpulse worker` runs it (and `labelpulse up`, through that command)."""

from __future__ import annotations

import asyncio
import sys
from typing import NoReturn

from config.hosts import metrics_port_taken
from kafka_admin.topics import create_topics
from streams.app import create_app
from streams.settings import WorkerSettings


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> NoReturn:
    """Serve the worker's metrics, make sure its topics exist, then consume until stopped.

    Fails before consuming anything: ConfigError when the metrics port is taken, KafkaUnavailable
    when Kafka cannot be reached or refuses us. The app is built here, once, from `settings`."""
    from prometheus_client import start_http_server

    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host)
        except OSError as exc:
            where = settings.metrics_host, settings.metrics_port
            raise metrics_port_taken("worker metrics", *where, "LABELPULSE_WORKER_METRICS_PORT", exc) from exc
        print(f"worker metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics", flush=True)
    asyncio.run(create_topics(settings.kafka))  # a clear error now if Kafka cannot be reached or refuses us

    app = create_app(settings)
    # Faust's own command line does the rest: signals, logging, rebalances, clean shutdown.
    sys.argv = ["labelpulse worker", "worker", "--loglevel", loglevel, "--without-web"]
    app.main()
