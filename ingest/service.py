"""Ingest as a service: `labelpulse ingest` runs it (and `labelpulse up`, through that command)."""

from __future__ import annotations

import asyncio
import logging

from config.env import ConfigError
from ingest.app import create_app
from ingest.publisher import KafkaPublisher
from ingest.settings import IngestSettings
from kafka_admin.topics import KafkaUnavailable, create_topics

log = logging.getLogger("labelpulse.ingest")


def run_ingest(settings: IngestSettings, loglevel: str = "info") -> int:
    """Serve until stopped (SIGINT/SIGTERM). Starts while Kafka is away, answering 503 until it is back.

    Fails before serving: ConfigError when the port is taken."""
    import uvicorn

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # the topics, with the partitions the workers expect, rather than the broker's auto-created ones
        asyncio.run(create_topics(settings.kafka, timeout_s=10))
    except KafkaUnavailable as exc:
        log.warning("%s; serving anyway, answering 503 until Kafka is back", exc)
    app = create_app(
        settings, KafkaPublisher(settings.kafka, settings.publish_timeout_s, idempotence=settings.idempotence)
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level=loglevel, access_log=False)
    )
    print(f"ingest on http://{settings.host}:{settings.port} (API docs: /openapi.json)", flush=True)
    server.run()
    if not server.started:
        raise ConfigError(
            f"cannot serve ingest on {settings.host}:{settings.port} (see above); set LABELPULSE_INGEST_PORT to a "
            "free port"
        )
    return 0
