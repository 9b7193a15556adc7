"""The ingest HTTP API (Starlette): contract events and labeling tools' webhooks in, Kafka out.

Nothing is acknowledged before Kafka has it: a 2xx answer means every accepted event is durable in the
events topic (acks=all); while Kafka is away the answer is 503 with Retry-After. Whatever is refused is
answered with its rule and reason, counted, and (except unauthenticated requests) kept in the dead-letter
topic with the reason in its headers, like the workers' refusals.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from ingest import cvat, label_studio, labelbox
from ingest.mapping import Delivery, MalformedWebhook
from ingest.publisher import DEAD_LETTER_BYTES, Outgoing, Publisher
from ingest.settings import SECRET_HEADER, IngestSettings
from kafka_admin.dead_letters import dead_letter_copy
from kafka_admin.topics import KafkaUnavailable
from schema.events import CONTRACT_VERSION, EventError, validate_event

log = logging.getLogger("labelpulse.ingest")
API = "api"
LABEL_STUDIO = "label-studio"
LABELBOX = "labelbox"
CVAT = "cvat"
NDJSON = ("application/x-ndjson", "application/jsonl", "application/ndjson")


class Metrics:
    """The service's own Prometheus metrics, in a registry of its own (one app, one set of counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "labelpulse_ingest_requests",
            "Requests by source (api, label-studio, labelbox, cvat) and outcome (accepted, partly_refused, refused, "
            "malformed, ignored, unauthorized, too_large, unavailable)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "labelpulse_ingest_events",
            "Events by source and outcome (accepted: in Kafka; refused: broke a contract rule)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "labelpulse_ingest_webhooks_ignored",
            "Webhook deliveries with nothing for the contract, by action (unknown: an action we do not know)",
            ["source", "action"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "labelpulse_ingest_publish_duration_seconds",
            "Time for Kafka to acknowledge one request's messages",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class Refusal(Exception):
    """A request answered without publishing anything (too large, unauthorized)."""

    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status, self.outcome, self.message = status, outcome, message


def create_app(
    settings: IngestSettings, publisher: Publisher, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Starlette:
    metrics = Metrics()
    kafka = settings.kafka
    cvat_issues = cvat.IssueMemory()  # CVAT's rejection reasons come in deliveries of their own (ingest/cvat.py)

    async def publish(source: str, messages: list[Outgoing]) -> Response | None:
        """None once Kafka has every message; else the 503 to answer."""
        started = time.perf_counter()
        try:
            await publisher.publish(messages)
        except KafkaUnavailable as exc:
            log.warning("answering 503: %s", exc)
            metrics.requests.labels(source, "unavailable").inc()
            return JSONResponse(
                {"error": "kafka_unavailable", "message": f"{exc}; nothing was accepted, send it again later"},
                status_code=503,
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        metrics.publish_seconds.observe(time.perf_counter() - started)
        return None

    def dead_letter(raw: bytes, key: bytes | None, rule: str, reason: str, source: str) -> Outgoing:
        value, headers = dead_letter_copy(
            raw, rule=rule, reason=reason, source=f"ingest:{source}", room=DEAD_LETTER_BYTES
        )
        return Outgoing(kafka.dead_letter_topic, key, value, tuple(headers))

    async def judged(source: str, documents: list[bytes], lines: list[int] | None = None) -> Response:
        """Validate each event; accepted ones to the events topic, refused ones to the dead-letter topic, and
        the answer only once Kafka has them all. `lines`: each document's line in the body (1-based, blank
        lines counted), so a client finds a refused event where `labelpulse import ndjson` would name it."""
        now = clock()
        results: list[dict[str, Any]] = []
        messages: list[Outgoing] = []
        for index, raw in enumerate(documents):
            where = {"index": index} | ({"line": lines[index]} if lines else {})
            result = validate_event(raw, now=now, limits=settings.limits)
            if isinstance(result, EventError):
                results.append(
                    where
                    | {"event_id": result.event_id, "outcome": "refused", "rule": result.rule}
                    | {"field": result.field, "reason": result.message}
                )
                messages.append(dead_letter(raw, None, result.rule, result.message, source))
            else:
                results.append(where | {"event_id": result.event_id, "outcome": "accepted"})
                messages.append(Outgoing(kafka.events_topic, result.task_id.encode(), raw))
        if unavailable := await publish(source, messages):
            return unavailable
        accepted = sum(result["outcome"] == "accepted" for result in results)
        refused = len(results) - accepted
        metrics.events.labels(source, "accepted").inc(accepted)
        metrics.events.labels(source, "refused").inc(refused)
        outcome, status = (
            ("accepted", 200) if not refused else ("refused", 422) if not accepted else ("partly_refused", 207)
        )
        metrics.requests.labels(source, outcome).inc()
        return JSONResponse({"accepted": accepted, "refused": refused, "results": results}, status_code=status)

    async def post_events(request: Request) -> Response:
        """
        summary: Send contract events
        description: >
          One event as a JSON object (Content-Type application/json), or a batch as NDJSON
          (application/x-ndjson: one event per line). Each event is judged by the contract
          (GET /v1/contract); accepted events are in Kafka when the answer comes. Each of results[] gives
          `index` (the event's place among the events sent) and `line` (its line in the body, 1-based,
          blank lines counted: where `labelpulse import ndjson` would name it).
        requestBody:
          content:
            application/json: {schema: {$ref: "/v1/contract"}}
            application/x-ndjson: {schema: {type: string}}
        responses:
          200: {description: "Every event accepted and acknowledged by Kafka."}
          207: {description: "Some accepted (in Kafka), some refused: see results[].rule and reason."}
          413: {description: "Body larger than LABELPULSE_INGEST_MAX_BODY_BYTES; nothing accepted."}
          422: {description: "Every event refused: see results[].rule and reason."}
          503: {description: "Kafka is unavailable; nothing accepted. Send again after Retry-After seconds."}
        """
        try:
            body = await _body(request, settings.max_body_bytes, "LABELPULSE_INGEST_MAX_BODY_BYTES")
        except Refusal as refusal:
            return _refused(metrics, API, refusal)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        ndjson = content_type in NDJSON
        numbered = [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()] if ndjson else [(1, body)]
        if not numbered:
            return _refused(metrics, API, Refusal(400, "malformed", "empty body: send one event or NDJSON lines"))
        return await judged(API, [document for _, document in numbered], [n for n, _ in numbered])

    async def post_label_studio(request: Request) -> Response:
        """
        summary: Receive Label Studio webhooks
        description: >
          Point a Label Studio project webhook here (send payload on, all actions), with the header
          X-LabelPulse-Secret set to LABELPULSE_LABEL_STUDIO_SECRET. Deliveries are mapped to contract
          events (README, "Connect your labeling tool"); a delivery sent again maps to the same event ids.
        responses:
          200: {description: "Mapped events accepted and in Kafka, or an action with nothing to map (ignored)."}
          400: {description: "Not a Label Studio webhook we can read; kept in the dead-letter topic."}
          401: {description: "Missing or wrong X-LabelPulse-Secret."}
          413: {description: "Body larger than LABELPULSE_INGEST_MAX_WEBHOOK_BYTES."}
          422: {description: "Mapped events the contract refuses (e.g. timestamps out of range); dead-lettered."}
          503: {description: "Kafka is unavailable; nothing accepted."}
        """
        try:
            _authenticate(request, settings.label_studio_secret)
            body = await _body(request, settings.max_webhook_bytes, "LABELPULSE_INGEST_MAX_WEBHOOK_BYTES")
        except Refusal as refusal:
            return _refused(metrics, LABEL_STUDIO, refusal)
        return await webhook(
            LABEL_STUDIO,
            body,
            lambda: label_studio.map_delivery(body, received_at=clock()),
            label_studio.redacted,
            known=label_studio.IGNORED | label_studio.MAPPED,
        )

    async def post_labelbox(request: Request) -> Response:
        """
        summary: Receive Labelbox webhooks
        description: >
          Create a Labelbox webhook (topics LABEL_CREATED, LABEL_UPDATED, LABEL_DELETED, and the legacy
          REVIEW_CREATED, REVIEW_UPDATED) with this URL and LABELPULSE_LABELBOX_SECRET as its secret: every
          delivery must carry X-Hub-Signature-256 (or X-Hub-Signature) of the body. Mapped as the README says.
        responses:
          200: {description: "Mapped events accepted and in Kafka, or a topic with nothing to map (ignored)."}
          400: {description: "Not a Labelbox webhook we can read; kept in the dead-letter topic."}
          401: {description: "Missing or wrong signature, or no LABELPULSE_LABELBOX_SECRET configured."}
          413: {description: "Body larger than LABELPULSE_INGEST_MAX_WEBHOOK_BYTES."}
          422: {description: "Mapped events the contract refuses; dead-lettered."}
          503: {description: "Kafka is unavailable; nothing accepted."}
        """
        try:
            _switched_on(settings.labelbox_secret, "Labelbox", "LABELPULSE_LABELBOX_SECRET")
            body = await _body(request, settings.max_webhook_bytes, "LABELPULSE_INGEST_MAX_WEBHOOK_BYTES")
            _verify_signature(request, body, settings.labelbox_secret)
        except Refusal as refusal:
            return _refused(metrics, LABELBOX, refusal)
        return await webhook(
            LABELBOX,
            body,
            lambda: labelbox.map_delivery(body, request.headers, received_at=clock()),
            lambda raw: raw,
            known=labelbox.MAPPED | {"WORKFLOW_ACTION"},
        )

    async def post_cvat(request: Request) -> Response:
        """
        summary: Receive CVAT webhooks
        description: >
          Create a CVAT webhook (project or organization; events create:job and update:job at least, the
          issue and comment events for rejection reasons, or everything) with this URL and LABELPULSE_CVAT_SECRET
          as its secret: every delivery must carry X-Signature-256 (sha256= HMAC of the body). Mapped as the
          README says; issues and comments are kept for the reasons of their job's next rejection; other events
          are ignored.
        responses:
          200: {description: "Mapped events accepted and in Kafka, or an event with nothing to map (ignored)."}
          400: {description: "Not a CVAT webhook we can read; kept in the dead-letter topic."}
          401: {description: "Missing or wrong X-Signature-256, or no LABELPULSE_CVAT_SECRET configured."}
          413: {description: "Body larger than LABELPULSE_INGEST_MAX_WEBHOOK_BYTES."}
          422: {description: "Mapped events the contract refuses; dead-lettered."}
          503: {description: "Kafka is unavailable; nothing accepted (CVAT sends it again later)."}
        """
        try:
            _switched_on(settings.cvat_secret, "CVAT", "LABELPULSE_CVAT_SECRET")
            body = await _body(request, settings.max_webhook_bytes, "LABELPULSE_INGEST_MAX_WEBHOOK_BYTES")
            _verify_cvat_signature(request, body, settings.cvat_secret)
        except Refusal as refusal:
            return _refused(metrics, CVAT, refusal)
        return await webhook(
            CVAT, body, lambda: cvat.map_delivery(body, cvat_issues), lambda raw: raw, known=cvat.KNOWN
        )

    async def webhook(
        source: str,
        body: bytes,
        mapped: Callable[[], Delivery],
        kept: Callable[[bytes], bytes],
        *,
        known: frozenset[str],
    ) -> Response:
        """An authenticated delivery: its events judged and published, or why it maps to nothing, or (malformed)
        its body kept in the dead-letter topic."""
        try:
            delivery = mapped()
        except MalformedWebhook as exc:
            if unavailable := await publish(
                source, [dead_letter(kept(body), None, "malformed_webhook", str(exc), source)]
            ):
                return unavailable
            log.warning("malformed %s webhook, kept in %s: %s", source, kafka.dead_letter_topic, exc)
            return _refused(metrics, source, Refusal(400, "malformed", str(exc)), rule="malformed_webhook")
        if delivery.ignored:
            log.info("%s %.80s ignored: %s", source, delivery.action, delivery.ignored)
            metrics.ignored.labels(source, delivery.action if delivery.action in known else "unknown").inc()
            metrics.requests.labels(source, "ignored").inc()
            return JSONResponse({"action": delivery.action, "ignored": delivery.ignored, "accepted": 0})
        return await judged(source, [json.dumps(event, ensure_ascii=False).encode() for event in delivery.events])

    async def get_contract(request: Request) -> Response:
        """
        summary: The event contract as JSON Schema
        """
        from schema.events import json_schema

        return JSONResponse(json_schema())

    async def get_health(request: Request) -> Response:
        """
        summary: Liveness (does not ask Kafka)
        """
        return JSONResponse({"status": "ok", "contract": CONTRACT_VERSION})

    async def get_metrics(request: Request) -> Response:
        """
        summary: Prometheus metrics
        """
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "LabelPulse ingest", "version": CONTRACT_VERSION}})

    async def get_openapi(request: Request) -> Response:
        """
        summary: This API, as OpenAPI
        """
        return JSONResponse(schemas.get_schema(routes=app.routes))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await publisher.close()

    app = Starlette(
        routes=[
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/sources/label-studio", post_label_studio, methods=["POST"]),
            Route("/v1/sources/labelbox", post_labelbox, methods=["POST"]),
            Route("/v1/sources/cvat", post_cvat, methods=["POST"]),
            Route("/v1/contract", get_contract, methods=["GET"]),
            Route("/healthz", get_health, methods=["GET"]),
            Route("/metrics", get_metrics, methods=["GET"], include_in_schema=False),
            Route("/openapi.json", get_openapi, methods=["GET"], include_in_schema=False),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app


def _authenticate(request: Request, secret: str) -> None:
    if not secret:
        raise Refusal(
            401,
            "unauthorized",
            "Label Studio webhooks are off: set LABELPULSE_LABEL_STUDIO_SECRET (or _FILE) on ingest, and the same "
            f"value as the webhook's {SECRET_HEADER} header in Label Studio",
        )
    sent = request.headers.get(SECRET_HEADER)
    if sent is None:
        raise Refusal(401, "unauthorized", f"missing {SECRET_HEADER} header: add it to the webhook in Label Studio")
    if not hmac.compare_digest(sent.encode(), secret.encode()):
        raise Refusal(401, "unauthorized", f"wrong {SECRET_HEADER}: it must equal LABELPULSE_LABEL_STUDIO_SECRET")


def _switched_on(secret: str, tool: str, variable: str) -> None:
    """A tool's webhooks are off until its secret is set: refused before the body is read."""
    if not secret:
        raise Refusal(
            401, "unauthorized", f"{tool} webhooks are off: set {variable} (or _FILE) on ingest to the webhook's secret"
        )


def _verify_signature(request: Request, body: bytes, secret: str) -> None:
    verdict = labelbox.signed(secret, body, request.headers)
    if verdict is None:
        raise Refusal(401, "unauthorized", "missing X-Hub-Signature-256 / X-Hub-Signature: give the webhook a secret")
    if not verdict:
        raise Refusal(
            401, "unauthorized", "wrong signature: the webhook's secret must equal LABELPULSE_LABELBOX_SECRET"
        )


def _verify_cvat_signature(request: Request, body: bytes, secret: str) -> None:
    verdict = cvat.signed(secret, body, request.headers.get(cvat.SIGNATURE_HEADER))
    if verdict is None:
        raise Refusal(401, "unauthorized", "missing X-Signature-256: give the CVAT webhook a secret")
    if not verdict:
        raise Refusal(401, "unauthorized", "wrong signature: the webhook's secret must equal LABELPULSE_CVAT_SECRET")


async def _body(request: Request, limit: int, variable: str) -> bytes:
    """The request body, refused as soon as it is known to be larger than `limit`."""
    too_large = Refusal(413, "too_large", f"body larger than {limit:,} bytes ({variable}); send smaller batches")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(metrics: Metrics, source: str, refusal: Refusal, rule: str | None = None) -> Response:
    metrics.requests.labels(source, refusal.outcome).inc()
    return JSONResponse({"error": rule or refusal.outcome, "message": refusal.message}, status_code=refusal.status)
