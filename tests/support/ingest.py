"""A running labelpulse ingest for the tests, and its shared secret."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from ingest.app import create_app
from ingest.publisher import KafkaPublisher
from ingest.settings import IngestSettings
from tests.support.services import wait_for

SECRET = "ingest-test-secret-0123456789"


class Served:
    """The ingest app on a free loopback port, served by uvicorn in a thread of the test."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        publisher = KafkaPublisher(settings.kafka, settings.publish_timeout_s, idempotence=settings.idempotence)
        app = create_app(settings, publisher)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "ingest serving")
        self.url = f"http://127.0.0.1:{settings.port}"

    def events(self, body: bytes, content_type: str = "application/json") -> Answer:
        return post(f"{self.url}/v1/events", body, {"Content-Type": content_type})

    def label_studio(self, body: bytes, secret: str | None = SECRET) -> Answer:
        headers = {"Content-Type": "application/json"} | ({"X-LabelPulse-Secret": secret} if secret else {})
        return post(f"{self.url}/v1/sources/label-studio", body, headers)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(get(f"{self.url}/metrics"))
            for sample in family.samples
        }

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, _lower(response.headers), json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers), json.loads(error.read() or b"null"))


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
