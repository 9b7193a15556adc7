"""`labelpulse ingest` over real HTTP against the real embedded broker: what it answers, what Kafka then holds,
and (through a real worker) what ClickHouse stores."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families

from config.env import ConfigError
from ingest.label_studio import map_delivery
from ingest.settings import IngestSettings
from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import create_topics
from labelpulse.broker import BrokerSettings
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from tests.support.ingest import SECRET, Answer, Served, get, post
from tests.support.services import WorkerHarness, run_cli, wait_for

CAPTURES = Path(__file__).parent / "fixtures" / "label_studio"
# The embedded broker (Tansu) has no idempotent producer: ingest runs against it without, as `up` runs it.


def topics_for_test(kafka: BrokerSettings) -> KafkaSettings:
    topic = f"ingest-{uuid.uuid4().hex[:8]}"
    return replace(
        KafkaSettings(),
        bootstrap_servers=kafka.bootstrap_servers,
        events_topic=topic,
        dead_letter_topic=f"{topic}.dead-letter",
        activity_topic=f"{topic}.by-annotator",
        backfill_topic=f"{topic}.backfill",
    )


@pytest.fixture
def served(kafka: BrokerSettings) -> Iterator[Served]:
    topics = topics_for_test(kafka)
    asyncio.run(create_topics(topics))
    ingest = Served(
        IngestSettings(
            kafka=topics, port=free_port(), label_studio_secret=SECRET, max_body_bytes=64 << 10, idempotence=False
        )
    )
    yield ingest
    ingest.stop()


def read_topic(kafka: KafkaSettings, topic: str, count: int) -> list[Any]:
    """The first `count` messages of `topic` (all partitions); fails when fewer arrive."""

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest")
        await consumer.start()
        got: list[Any] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < count:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        got.extend(records)
        finally:
            await consumer.stop()
        return got

    return asyncio.run(read())


def contract_event(event_id: str = "e-1", **changes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "annotation_submitted",
        "schema_version": 1,
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "project_id": "p",
        "task_id": "task-7",
        "annotator_id": "a",
        "label": "cat",
        "source_system": "api",
        **changes,
    }


def recent(body: bytes) -> bytes:
    """A capture as if made yesterday: its times stay within the contract's 366 days whenever the tests run."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return body.replace(b'"2026-11-30T', f'"{yesterday}T'.encode())


def capture(name: str) -> bytes:
    (path,) = CAPTURES.glob(f"{name}-*.body")
    return recent(path.read_bytes())


def captures() -> list[bytes]:
    return [recent(path.read_bytes()) for path in sorted(CAPTURES.glob("*.body"))]


# ---------------------------------------------------------------- the contract endpoint


@pytest.mark.broker
def test_an_accepted_event_is_in_kafka_keyed_by_its_task_when_the_answer_comes(served: Served) -> None:
    body = json.dumps(contract_event()).encode()
    answer = served.events(body)
    assert (answer.status, answer.body["accepted"], answer.body["results"][0]["outcome"]) == (200, 1, "accepted")
    (message,) = read_topic(served.settings.kafka, served.settings.kafka.events_topic, 1)
    assert (message.key, message.value) == (b"task-7", body)  # as sent: unknown fields and all


@pytest.mark.broker
def test_a_batch_is_answered_event_by_event_and_refusals_go_to_the_dead_letter_topic(served: Served) -> None:
    lines = [
        json.dumps(contract_event("e-1")),
        json.dumps(contract_event("e-2", duration_ms=-5)),
        "{not json",
        json.dumps(contract_event("e-3", event_type="annotation_updated", label="dog")),
    ]
    answer = served.events("\n".join(lines).encode() + b"\n", "application/x-ndjson")
    assert answer.status == 207
    assert [(r["outcome"], r.get("rule")) for r in answer.body["results"]] == [
        ("accepted", None),
        ("refused", "out_of_range"),
        ("refused", "malformed_json"),
        ("accepted", None),
    ]
    assert "duration_ms must be ≥ 0, got -5" in answer.body["results"][1]["reason"]
    kafka = served.settings.kafka
    assert sorted(json.loads(m.value)["event_id"] for m in read_topic(kafka, kafka.events_topic, 2)) == ["e-1", "e-3"]
    letters = read_topic(kafka, kafka.dead_letter_topic, 2)
    assert sorted(dict(m.headers)["labelpulse-rule"] for m in letters) == [b"malformed_json", b"out_of_range"]
    assert {dict(m.headers)["labelpulse-source"] for m in letters} == {b"ingest:api"}


@pytest.mark.broker
def test_each_ndjson_result_names_the_line_it_came_from_blank_lines_counted(served: Served) -> None:
    body = f"{json.dumps(contract_event('e-1'))}\n\n{{not json\n".encode()
    answer = served.events(body, "application/x-ndjson")
    assert [(r["index"], r["line"], r["outcome"]) for r in answer.body["results"]] == [
        (0, 1, "accepted"),
        (1, 3, "refused"),  # `labelpulse import ndjson` names the same line 3
    ]


@pytest.mark.broker
def test_a_request_with_only_refused_events_is_answered_422(served: Served) -> None:
    answer = served.events(json.dumps(contract_event(event_type="annotation_exploded")).encode())
    assert (answer.status, answer.body["refused"], answer.body["results"][0]["rule"]) == (
        422,
        1,
        "unknown_event_type",
    )


@pytest.mark.broker
def test_an_oversized_body_is_refused_413_and_nothing_is_published(served: Served) -> None:
    lines = [json.dumps(contract_event(f"e-{n}")) for n in range(400)]  # ~100 KiB > the 64 KiB set
    answer = served.events("\n".join(lines).encode(), "application/x-ndjson")
    assert (answer.status, answer.body["error"]) == (413, "too_large")
    assert "LABELPULSE_INGEST_MAX_BODY_BYTES" in answer.body["message"]
    assert served.metrics()[("labelpulse_ingest_requests_total", (("outcome", "too_large"), ("source", "api")))] == 1


def test_while_kafka_is_away_the_answer_is_503_with_retry_after() -> None:
    nowhere = replace(KafkaSettings(), bootstrap_servers=f"127.0.0.1:{free_port()}")
    ingest = Served(IngestSettings(kafka=nowhere, port=free_port(), publish_timeout_s=1.0, retry_after_s=7))
    try:
        answer = ingest.events(json.dumps(contract_event()).encode())
        assert (answer.status, answer.headers["retry-after"], answer.body["error"]) == (503, "7", "kafka_unavailable")
        assert "send it again later" in answer.body["message"]
        key = ("labelpulse_ingest_requests_total", (("outcome", "unavailable"), ("source", "api")))
        assert ingest.metrics()[key] == 1
    finally:
        ingest.stop()


# ---------------------------------------------------------------- Label Studio


@pytest.mark.broker
def test_every_real_label_studio_delivery_is_accepted_and_its_events_reach_kafka(served: Served) -> None:
    expected = []
    for body in captures():
        answer = served.label_studio(body)
        assert answer.status == 200, answer.body
        delivery = map_delivery(body, received_at=datetime.now(UTC))
        assert answer.body["accepted"] == len(delivery.events)
        expected += [event["event_id"] for event in delivery.events]
    kafka = served.settings.kafka
    stored = read_topic(kafka, kafka.events_topic, len(expected))
    assert sorted(json.loads(m.value)["event_id"] for m in stored) == sorted(expected)
    ignored = served.metrics()
    assert (
        ignored[
            ("labelpulse_ingest_webhooks_ignored_total", (("action", "PROJECT_UPDATED"), ("source", "label-studio")))
        ]
        == 3
    )
    assert ignored[("labelpulse_ingest_requests_total", (("outcome", "accepted"), ("source", "label-studio")))] == 22


@pytest.mark.broker
@pytest.mark.parametrize("secret", [None, "wrong-secret-0123456789", SECRET[:-1]])
def test_a_webhook_without_the_right_secret_is_refused_401_and_counted(served: Served, secret: str | None) -> None:
    answer = served.label_studio(capture("004"), secret=secret)
    assert (answer.status, answer.body["error"]) == (401, "unauthorized")
    assert "X-LabelPulse-Secret" in answer.body["message"]
    key = ("labelpulse_ingest_requests_total", (("outcome", "unauthorized"), ("source", "label-studio")))
    assert served.metrics()[key] == 1


@pytest.mark.broker
def test_a_malformed_webhook_is_refused_400_with_the_reason_and_kept_in_the_dead_letter_topic(served: Served) -> None:
    document = json.loads(capture("004"))
    document["annotation"]["completed_by"] = "alice"
    body = json.dumps(document).encode()
    answer = served.label_studio(body)
    assert (answer.status, answer.body["error"]) == (400, "malformed_webhook")
    assert "completed_by must be a user id, got 'alice'" in answer.body["message"]
    kafka = served.settings.kafka
    (letter,) = read_topic(kafka, kafka.dead_letter_topic, 1)
    assert dict(letter.headers)["labelpulse-rule"] == b"malformed_webhook"
    kept = json.loads(letter.value)
    assert kept["annotation"] == document["annotation"]
    assert kept["project"]["token"] == "(redacted)"


@pytest.mark.broker
def test_an_unknown_action_is_accepted_counted_and_ignored(served: Served) -> None:
    answer = served.label_studio(b'{"action": "SOMETHING_NEW", "project": {"id": 1}}')
    assert (answer.status, answer.body["accepted"], answer.body["ignored"]) == (
        200,
        0,
        "unknown action 'SOMETHING_NEW'",
    )
    key = ("labelpulse_ingest_webhooks_ignored_total", (("action", "unknown"), ("source", "label-studio")))
    assert served.metrics()[key] == 1


def test_label_studio_webhooks_are_refused_until_a_secret_is_configured() -> None:
    ingest = Served(IngestSettings(port=free_port()))
    try:
        answer = ingest.label_studio(capture("004"), secret="anything-at-all-here")
        assert answer.status == 401
        assert "set LABELPULSE_LABEL_STUDIO_SECRET" in answer.body["message"]
        openapi = json.loads(get(f"{ingest.url}/openapi.json"))
        assert {"/v1/events", "/v1/sources/label-studio", "/v1/contract"} <= set(openapi["paths"])
    finally:
        ingest.stop()


# ---------------------------------------------------------------- Labelbox

LABELBOX_FIXTURES = Path(__file__).parent / "fixtures" / "labelbox"


def labelbox_delivery(name: str) -> tuple[bytes, dict[str, str]]:
    (path,) = LABELBOX_FIXTURES.glob(f"{name}-*.body")
    headers = json.loads(path.with_suffix(".json").read_text())["headers"]
    return recent(path.read_bytes()), headers


@pytest.fixture
def labelbox_served(kafka: BrokerSettings) -> Iterator[Served]:
    topics = topics_for_test(kafka)
    asyncio.run(create_topics(topics))
    ingest = Served(
        IngestSettings(kafka=topics, port=free_port(), labelbox_secret="labelbox-test-secret", idempotence=False)
    )
    yield ingest
    ingest.stop()


def sign(body: bytes, headers: dict[str, str], secret: str = "labelbox-test-secret") -> dict[str, str]:
    """The fixture's headers, signed again: `recent` changed the body's dates."""
    import hashlib
    import hmac

    return headers | {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


@pytest.mark.broker
def test_signed_labelbox_deliveries_are_accepted_and_their_events_reach_kafka(labelbox_served: Served) -> None:
    sent = []
    for name in ("01", "02", "03", "04", "05"):
        body, headers = labelbox_delivery(name)
        answer = post(f"{labelbox_served.url}/v1/sources/labelbox", body, sign(body, headers))
        assert (answer.status, answer.body["accepted"]) == (200, 1), answer.body
        sent.append(answer.body["results"][0]["event_id"])
    kafka = labelbox_served.settings.kafka
    stored = read_topic(kafka, kafka.events_topic, len(sent))
    assert sorted(json.loads(m.value)["event_id"] for m in stored) == sorted(sent)
    assert {m.key for m in stored} == {b"clp0datarow0000000000000001"}


@pytest.mark.broker
@pytest.mark.parametrize("signature", ["missing", "wrong secret", "other body"])
def test_a_labelbox_delivery_without_a_good_signature_is_refused_401(labelbox_served: Served, signature: str) -> None:
    body, headers = labelbox_delivery("01")
    headers = {name: value for name, value in headers.items() if not name.startswith("X-Hub")}
    if signature == "wrong secret":
        headers = sign(body, headers, "not-the-labelbox-secret")
    elif signature == "other body":
        headers = sign(body + b"\n", headers)
    answer = post(f"{labelbox_served.url}/v1/sources/labelbox", body, headers)
    assert (answer.status, answer.body["error"]) == (401, "unauthorized")
    key = ("labelpulse_ingest_requests_total", (("outcome", "unauthorized"), ("source", "labelbox")))
    assert labelbox_served.metrics()[key] == 1


@pytest.mark.broker
def test_a_malformed_labelbox_delivery_is_refused_400_and_kept(labelbox_served: Served) -> None:
    body = b'{"id": "clp0label1", "label": "{}"}'
    answer = post(f"{labelbox_served.url}/v1/sources/labelbox", body, sign(body, {"X-Labelbox-Event": "LABEL_CREATED"}))
    assert (answer.status, answer.body["error"]) == (400, "malformed_webhook")
    assert "label clp0label1: 'createdAt' must be an ISO 8601 time" in answer.body["message"]
    kafka = labelbox_served.settings.kafka
    (letter,) = read_topic(kafka, kafka.dead_letter_topic, 1)
    assert (letter.value, dict(letter.headers)["labelpulse-source"]) == (body, b"ingest:labelbox")


@pytest.mark.broker
def test_a_labelbox_topic_with_no_contract_event_is_accepted_counted_and_ignored(labelbox_served: Served) -> None:
    body = b'{"workflow": {}}'
    answer = post(
        f"{labelbox_served.url}/v1/sources/labelbox", body, sign(body, {"X-Labelbox-Event": "WORKFLOW_ACTION"})
    )
    assert (answer.status, answer.body["accepted"]) == (200, 0)
    key = ("labelpulse_ingest_webhooks_ignored_total", (("action", "WORKFLOW_ACTION"), ("source", "labelbox")))
    assert labelbox_served.metrics()[key] == 1


# ---------------------------------------------------------------- CVAT

CVAT_FIXTURES = Path(__file__).parent / "fixtures" / "cvat"
CVAT_SECRET = "cvat-test-secret-0123456789"


def cvat_signed(body: bytes, secret: str = CVAT_SECRET) -> dict[str, str]:
    import hashlib
    import hmac

    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Signature-256": signature}


def cvat_deliveries() -> list[bytes]:
    """Every CVAT delivery of the fixtures, dated yesterday (signed again where they are sent: `recent` changed
    the bytes)."""
    return [recent(path.read_bytes()) for path in sorted(CVAT_FIXTURES.glob("[0-8]*.body"))]


def cvat_served_with(kafka: KafkaSettings) -> Served:
    return Served(IngestSettings(kafka=kafka, port=free_port(), cvat_secret=CVAT_SECRET, idempotence=False))


@pytest.fixture
def cvat_served(kafka: BrokerSettings) -> Iterator[Served]:
    topics = topics_for_test(kafka)
    asyncio.run(create_topics(topics))
    ingest = cvat_served_with(topics)
    yield ingest
    ingest.stop()


def to_cvat(served: Served, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    return post(f"{served.url}/v1/sources/cvat", body, cvat_signed(body) if headers is None else headers)


@pytest.mark.broker
def test_signed_cvat_deliveries_are_accepted_and_their_events_reach_kafka(cvat_served: Served) -> None:
    from ingest.cvat import map_delivery as map_cvat

    sent = []
    for body in cvat_deliveries():
        answer = to_cvat(cvat_served, body)
        mapped = map_cvat(body).events
        assert (answer.status, answer.body["accepted"]) == (200, len(mapped)), answer.body
        sent += [result["event_id"] for result in answer.body.get("results", [])]
    assert len(sent) == 10
    kafka = cvat_served.settings.kafka
    stored = read_topic(kafka, kafka.events_topic, len(sent))
    assert sorted(json.loads(m.value)["event_id"] for m in stored) == sorted(sent)
    assert {m.key for m in stored} == {b"19", b"31"}
    # the issue and its comment, sent before the rejection, are its reason
    reasons = {
        json.loads(m.value)["verdict"]: json.loads(m.value).get("reason") for m in stored if b"verdict" in m.value
    }
    assert reasons == {"rejected": "Box misses the mirror", "accepted": None}
    metrics = cvat_served.metrics()
    assert metrics[("labelpulse_ingest_requests_total", (("outcome", "accepted"), ("source", "cvat")))] == 8
    assert metrics[("labelpulse_ingest_requests_total", (("outcome", "ignored"), ("source", "cvat")))] == 10
    ignored = ("labelpulse_ingest_webhooks_ignored_total", (("action", "update:job"), ("source", "cvat")))
    assert metrics[ignored] == 2  # stage validation without a verdict; a verdict of the job's own assignee


@pytest.mark.broker
@pytest.mark.parametrize("signature", ["missing", "wrong secret", "other body", "without sha256="])
def test_a_cvat_delivery_without_a_good_signature_is_refused_401_and_counted(
    cvat_served: Served, signature: str
) -> None:
    body = recent((CVAT_FIXTURES / "05-update-job-completed.body").read_bytes())
    headers = {
        "missing": {"Content-Type": "application/json"},
        "wrong secret": cvat_signed(body, "not-the-cvat-webhook-secret"),
        "other body": cvat_signed(body + b"\n"),
        "without sha256=": {"X-Signature-256": cvat_signed(body)["X-Signature-256"].removeprefix("sha256=")},
    }[signature]
    answer = to_cvat(cvat_served, body, headers)
    assert (answer.status, answer.body["error"]) == (401, "unauthorized")
    assert "X-Signature-256" in answer.body["message"] or "LABELPULSE_CVAT_SECRET" in answer.body["message"]
    key = ("labelpulse_ingest_requests_total", (("outcome", "unauthorized"), ("source", "cvat")))
    assert cvat_served.metrics()[key] == 1


@pytest.mark.broker
def test_the_fixture_signed_with_another_secret_is_refused_401(cvat_served: Served) -> None:
    path = CVAT_FIXTURES / "91-bad-signature.body"
    headers = json.loads(path.with_suffix(".json").read_text())["headers"]
    answer = to_cvat(cvat_served, path.read_bytes(), headers)
    assert (answer.status, answer.body["message"]) == (
        401,
        "wrong signature: the webhook's secret must equal LABELPULSE_CVAT_SECRET",
    )


@pytest.mark.broker
def test_a_malformed_cvat_delivery_is_refused_400_with_the_reason_and_kept(cvat_served: Served) -> None:
    document = json.loads(cvat_deliveries()[4])
    document["job"]["state"] = "finished"
    body = json.dumps(document).encode()
    answer = to_cvat(cvat_served, body)
    assert (answer.status, answer.body["error"]) == (400, "malformed_webhook")
    assert "job 19: 'state' must be new, in progress, rejected or completed, got 'finished'" in answer.body["message"]
    kafka = cvat_served.settings.kafka
    (letter,) = read_topic(kafka, kafka.dead_letter_topic, 1)
    assert (letter.value, dict(letter.headers)["labelpulse-source"]) == (body, b"ingest:cvat")
    assert dict(letter.headers)["labelpulse-rule"] == b"malformed_webhook"
    key = ("labelpulse_ingest_requests_total", (("outcome", "malformed"), ("source", "cvat")))
    assert cvat_served.metrics()[key] == 1


@pytest.mark.broker
def test_an_unknown_cvat_event_is_accepted_counted_and_ignored(cvat_served: Served) -> None:
    answer = to_cvat(cvat_served, b'{"event": "archive:job", "job": {"id": 19}, "webhook_id": 3}')
    assert (answer.status, answer.body["accepted"], answer.body["ignored"]) == (200, 0, "unknown event 'archive:job'")
    key = ("labelpulse_ingest_webhooks_ignored_total", (("action", "unknown"), ("source", "cvat")))
    assert cvat_served.metrics()[key] == 1


@pytest.mark.broker
def test_a_cvat_event_the_contract_refuses_is_answered_422_and_dead_lettered(cvat_served: Served) -> None:
    body = (CVAT_FIXTURES / "02-create-job.body").read_bytes().replace(b'"2026-11-30T', b'"2024-11-30T')
    answer = to_cvat(cvat_served, body)
    assert (answer.status, answer.body["results"][0]["rule"]) == (422, "ancient_timestamp")
    kafka = cvat_served.settings.kafka
    (letter,) = read_topic(kafka, kafka.dead_letter_topic, 1)
    assert json.loads(letter.value)["event_type"] == "task_created"


def test_an_oversized_cvat_delivery_is_refused_413_before_its_signature_is_checked() -> None:
    ingest = Served(IngestSettings(port=free_port(), cvat_secret=CVAT_SECRET, max_webhook_bytes=1024))
    try:
        body = cvat_deliveries()[4]  # ~1.4 KiB
        answer = to_cvat(ingest, body)
        assert (answer.status, answer.body["error"]) == (413, "too_large")
        assert "LABELPULSE_INGEST_MAX_WEBHOOK_BYTES" in answer.body["message"]
        key = ("labelpulse_ingest_requests_total", (("outcome", "too_large"), ("source", "cvat")))
        assert ingest.metrics()[key] == 1
    finally:
        ingest.stop()


@pytest.mark.parametrize("tool", ["cvat", "labelbox"])
def test_a_tool_without_a_secret_is_refused_401_before_its_body_is_read(tool: str) -> None:
    ingest = Served(IngestSettings(port=free_port(), max_webhook_bytes=1024))
    try:
        answer = post(f"{ingest.url}/v1/sources/{tool}", b"x" * 4096, {"Content-Type": "application/json"})
        assert (answer.status, answer.body["error"]) == (401, "unauthorized")  # not 413: nothing was read
        assert f"set LABELPULSE_{tool.upper()}_SECRET" in answer.body["message"]
    finally:
        ingest.stop()


def test_cvat_webhooks_are_refused_until_a_secret_is_configured() -> None:
    ingest = Served(IngestSettings(port=free_port()))
    try:
        body = cvat_deliveries()[1]
        answer = to_cvat(ingest, body)
        assert answer.status == 401
        assert "set LABELPULSE_CVAT_SECRET" in answer.body["message"]
        assert "/v1/sources/cvat" in json.loads(get(f"{ingest.url}/openapi.json"))["paths"]
    finally:
        ingest.stop()


# ---------------------------------------------------------------- through the worker into ClickHouse


@pytest.mark.broker
@pytest.mark.clickhouse
def test_label_studio_deliveries_sent_twice_and_the_export_imported_twice_are_stored_once(
    harness: WorkerHarness, migrated: Client, kafka: BrokerSettings, tmp_path: Path
) -> None:
    harness.start()
    ingest = Served(
        IngestSettings(kafka=harness.kafka, port=free_port(), label_studio_secret=SECRET, idempotence=False)
    )
    try:
        for _ in range(2):  # a redelivery, or the same history sent again
            for body in captures():
                assert ingest.label_studio(body).status == 200
        unique = {
            e["event_id"] for body in captures() for e in map_delivery(body, received_at=datetime.now(UTC)).events
        }
        # The export, taken at the end, holds the same facts as the webhooks: a backfill over live history.
        export = tmp_path / "export.json"
        export.write_bytes(recent((CAPTURES / "exports" / "project1-cli-export-completed_by-object.json").read_bytes()))
        env = {**harness.env, "LABELPULSE_INGEST_IDEMPOTENCE": "false"}
        for _ in range(2):
            imported = run_cli("import", "label-studio", str(export), env=env)
            assert imported.returncode == 0, imported.stderr
            assert "4 tasks: 16 events sent to " in imported.stdout and ", 0 refused" in imported.stdout
        history = tmp_path / "history.ndjson"  # contract events of another producer, imported twice too
        history.write_text("".join(json.dumps(contract_event(f"h-{n}")) + "\n" for n in range(3)))
        for _ in range(2):
            imported = run_cli("import", "ndjson", str(history), env=env)
            assert imported.stdout.endswith(f"3 lines: 3 events sent to {harness.topic}.backfill, 0 refused\n")
        unique.update(f"h-{n}" for n in range(3))
        # The deletions take their time from their arrival, but their ids from what they delete: one each.
        duplicates = len(unique) - 3 + 2 * 16 + 3
        wait_for(lambda: worker_duplicates(harness) == duplicates, 120, "repeats dropped as duplicates")
        wait_for(lambda: int(migrated.command("SELECT count() FROM events")) >= len(unique), 60, "every event stored")
        assert migrated.command("SELECT count(), uniqExact(event_id) FROM events") == [str(len(unique))] * 2
        by_type = dict(migrated.query("SELECT event_type, count() FROM events GROUP BY event_type").result_rows)
        assert by_type == {
            "task_created": 10,  # 8 tasks, and the gold labels of 2 (ground-truth annotations)
            "annotation_submitted": 12 + 3,
            "annotation_skipped": 1,
            "annotation_updated": 4,
            "annotation_deleted": 3,
        }
        sources = migrated.query("SELECT DISTINCT source_system FROM events ORDER BY 1").result_rows
        assert sources == [("api",), ("label-studio",)]
        assert migrated.command("SELECT count() FROM dead_letters") == 0
        edits = migrated.command("SELECT sum(annotations_updated) FROM project_throughput_minute")
        assert int(edits) == 4
    finally:
        ingest.stop()


@pytest.mark.broker
@pytest.mark.clickhouse
def test_cvat_deliveries_sent_twice_are_stored_once_with_their_handle_time_and_review_rounds(
    harness: WorkerHarness, migrated: Client
) -> None:
    harness.start()
    ingest = cvat_served_with(harness.kafka)
    try:
        for _ in range(2):  # CVAT sends a delivery again after a 5xx or a timeout, or on "redeliver"
            for body in cvat_deliveries():
                assert to_cvat(ingest, body).status == 200
        # 20 events sent: 8 facts, each restated assignment and every second copy a duplicate
        wait_for(lambda: worker_duplicates(harness) == 12, 120, "restated facts dropped as duplicates")
        wait_for(lambda: int(migrated.command("SELECT count() FROM events")) >= 8, 60, "every fact stored")
        by_type = dict(migrated.query("SELECT event_type, count() FROM events GROUP BY event_type").result_rows)
        assert by_type == {
            "task_created": 2,
            "task_assigned": 1,
            "annotation_started": 1,
            "annotation_submitted": 1,
            "review_completed": 2,
            "task_completed": 1,
        }
        assert migrated.query("SELECT DISTINCT source_system FROM events").result_rows == [("cvat",)]
        # Handle time: from the job going in progress (10:02) to completed (10:40), the contract's rule
        # without a duration: elapsed time, which CVAT's webhooks cannot narrow to working time.
        wait_for(lambda: int(migrated.command("SELECT count() FROM handle_times")) == 1, 60, "the handle time")
        assert migrated.query("SELECT annotator_id, handle_time_ms FROM handle_times").result_rows == [
            ("6", 38 * 60_000)
        ]
        wait_for(lambda: int(migrated.command("SELECT count() FROM review_rounds")) == 2, 60, "both reviews")
        rounds = migrated.query(
            "SELECT annotator_id, reviewer_id, round, verdict, first_pass_accepted, rework "
            "FROM review_rounds ORDER BY reviewed_at"
        ).result_rows
        assert rounds == [("6", "7", 1, "rejected", False, False), ("6", "7", 2, "accepted", False, True)]
        assert migrated.command("SELECT count() FROM dead_letters") == 0
    finally:
        ingest.stop()


def worker_duplicates(harness: WorkerHarness) -> float:
    text = get(f"http://127.0.0.1:{harness.metrics_ports[0]}/metrics")
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return sum(s.value for s in samples if s.name == "labelpulse_worker_duplicates_dropped_total")


# ---------------------------------------------------------------- the command


def test_labelpulse_ingest_serves_on_loopback_and_refuses_other_addresses(tmp_path: Path) -> None:
    import os
    import sys

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")},
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nobody there: 503s, still serving
        "LABELPULSE_INGEST_PUBLISH_TIMEOUT_MS": "500",
    }
    log = tmp_path / "ingest.log"
    process = spawn([sys.executable, "-m", "labelpulse", "ingest", "--port", str(port)], log, env)
    try:

        def healthy() -> bool:
            try:
                return json.loads(get(f"http://127.0.0.1:{port}/healthz"))["status"] == "ok"
            except OSError:
                assert process.poll() is None, log.read_text()
                return False

        wait_for(healthy, 60, "labelpulse ingest serving")
        answer = post(f"http://127.0.0.1:{port}/v1/events", json.dumps(contract_event()).encode())
        assert answer.status == 503
    finally:
        terminate(process, timeout_s=20)
    refused = spawn([sys.executable, "-m", "labelpulse", "ingest", "--host", "0.0.0.0"], tmp_path / "r.log", env)
    assert refused.wait(timeout=60) == 2
    assert "LABELPULSE_INGEST_ALLOW_REMOTE=true" in (tmp_path / "r.log").read_text()


def test_labelpulse_import_ndjson_judges_every_line_and_names_the_refused_ones(tmp_path: Path) -> None:
    history = tmp_path / "history.ndjson"
    lines = [contract_event("a"), contract_event("b"), contract_event("c", duration_ms=-5), None, contract_event("d")]
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    lines.append(contract_event("old", occurred_at=long_ago))  # history has no age limit
    history.write_text("".join((json.dumps(line) if line else "") + "\n" for line in lines))
    nowhere = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    checked = run_cli("import", "ndjson", str(history), "--dry-run", env=nowhere)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "refused (line 3): out_of_range: duration_ms must be ≥ 0, got -5",
        "6 lines: 4 events to send (dry run) to labelpulse.events.backfill, 1 refused",
    ]


def test_labelpulse_import_off_a_terminal_shows_its_progress_as_plain_lines_with_totals_and_percentages(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.ndjson"
    at = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    lines = [json.dumps(contract_event(f"e{n:05d}", occurred_at=at)) for n in range(2500)]
    lines[1500] = lines[1500].replace('"label": "cat"', '"label":    ""')  # refused; as long as the others
    history.write_text("".join(line + "\n" for line in lines))
    size = f"{history.stat().st_size / 1024:.1f} KB"
    nowhere = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    checked = run_cli("import", "ndjson", str(history), "--dry-run", env=nowhere)
    assert checked.returncode == 1
    # the file is read and judged first (every 1,000 events, bytes read of its size), then sent in chunks of 1,000
    assert checked.stderr.splitlines() == [
        f"  reading  40% of {size}: 1,000 lines, 1,000 events accepted, 0 refused",
        f"  reading  80% of {size}: 2,000 lines, 1,999 events accepted, 1 refused",
        f"  reading 100% of {size}: 2,500 lines, 2,499 events accepted, 1 refused",
        "  sending  40% 1,000 of 2,499 events counted (dry run)",
        "  sending  80% 2,000 of 2,499 events counted (dry run)",
        "  sending 100% 2,499 of 2,499 events counted (dry run)",
    ]


def test_progress_off_a_terminal_is_a_line_per_tenth_reached_and_on_one_a_line_rewritten_per_phase() -> None:
    import io

    from labelpulse.terminal import Progress

    plain, live = io.StringIO(), io.StringIO()
    for shown in (Progress(plain, live=False), Progress(live, live=True, width=10)):
        for done in (0, 5, 10, 55, 58, 100):
            shown.update("reading", done, 100, f"{done} read")
        shown.update("sending", 0, 0, "nothing to send")
        shown.close()
    assert plain.getvalue().splitlines() == [
        "  reading   0% 0 read",
        "  reading  10% 10 read",
        "  reading  55% 55 read",
        "  reading 100% 100 read",
        "  sending 100% nothing to send",
    ]
    reading, sending = live.getvalue().split("\n")[:2]
    assert reading.split("\r")[-1] == "  reading [##########] 100% 100 read\x1b[K"
    assert sending == "\r  sending [##########] 100% nothing to send\x1b[K"


@pytest.mark.broker
def test_labelpulse_import_creates_the_backfill_topic_with_the_events_topics_partitions(
    kafka: BrokerSettings, tmp_path: Path
) -> None:
    history = tmp_path / "history.ndjson"
    history.write_text(json.dumps(contract_event("first")) + "\n")
    topic = f"import-{uuid.uuid4().hex[:8]}"
    env = {
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LABELPULSE_EVENTS_TOPIC": topic,
        "LABELPULSE_EVENTS_PARTITIONS": "3",
        "LABELPULSE_INGEST_IDEMPOTENCE": "false",
    }
    imported = run_cli("import", "ndjson", str(history), env=env)  # before any worker made the topics
    assert imported.returncode == 0, imported.stderr
    assert f"{topic}.backfill\t3 partitions" in run_cli("topics", env=env).stdout.splitlines()


def test_labelpulse_import_checks_an_export_without_sending_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_bytes(recent((CAPTURES / "exports" / "project1-api-export-JSON-completed_by-int.json").read_bytes()))
    nowhere = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    checked = run_cli("import", "label-studio", str(export), "--dry-run", env=nowhere)
    assert (checked.returncode, checked.stdout.strip()) == (
        0,
        "5 tasks: 16 events to send (dry run) to labelpulse.events.backfill, 0 refused",
    )
    minimal = tmp_path / "min.json"
    minimal.write_text('{"annotator": 2, "sentiment": "Positive"}')
    refused = run_cli("import", "label-studio", str(minimal), env=nowhere)
    assert refused.returncode == 2
    assert "a Label Studio export is a JSON array of tasks (export type JSON" in refused.stderr


# ---------------------------------------------------------------- settings


def test_settings_take_the_secret_from_a_file_and_the_contract_limits_the_workers_use(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    settings = IngestSettings.from_env(
        {"LABELPULSE_LABEL_STUDIO_SECRET_FILE": str(secret_file), "LABELPULSE_MAX_AGE_DAYS": "3000"}
    )
    assert (settings.label_studio_secret, settings.limits.max_age) == (SECRET, timedelta(days=3000))
    assert SECRET not in repr(settings)
    cvat = IngestSettings.from_env({"LABELPULSE_CVAT_SECRET_FILE": str(secret_file)})
    assert cvat.cvat_secret == SECRET and SECRET not in repr(cvat)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABELPULSE_INGEST_HOST": "0.0.0.0"}, "LABELPULSE_INGEST_ALLOW_REMOTE=true"),
        ({"LABELPULSE_LABEL_STUDIO_SECRET": "short"}, "at least 16 characters"),
        ({"LABELPULSE_CVAT_SECRET": "short"}, "LABELPULSE_CVAT_SECRET must be at least 16 characters"),
        ({"LABELPULSE_LABEL_STUDIO_SECRET_FILE": "/nonexistent/secret"}, "cannot read /nonexistent/secret"),
        (
            {"LABELPULSE_LABEL_STUDIO_SECRET": SECRET, "LABELPULSE_LABEL_STUDIO_SECRET_FILE": "/x"},
            "not both",
        ),
        ({"LABELPULSE_INGEST_PUBLISH_TIMEOUT_MS": "10"}, "LABELPULSE_INGEST_PUBLISH_TIMEOUT_MS must be ≥ 100"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        IngestSettings.from_env(env)


def test_remote_addresses_are_served_when_allowed() -> None:
    settings = IngestSettings.from_env({"LABELPULSE_INGEST_HOST": "0.0.0.0", "LABELPULSE_INGEST_ALLOW_REMOTE": "true"})
    assert settings.host == "0.0.0.0"


@pytest.mark.faults
def test_ingest_answers_503_while_kafka_is_down_and_accepts_again_once_it_is_back(tmp_path: Path) -> None:
    from labelpulse.broker import EmbeddedBroker

    broker_settings = BrokerSettings(port=free_port())
    kafka = replace(KafkaSettings(), bootstrap_servers=broker_settings.bootstrap_servers)
    broker = EmbeddedBroker(broker_settings, log_path=tmp_path / "broker.log")
    broker.start()
    asyncio.run(create_topics(kafka))
    ingest = Served(IngestSettings(kafka=kafka, port=free_port(), publish_timeout_s=2.0, idempotence=False))
    try:
        assert ingest.events(json.dumps(contract_event("before")).encode()).status == 200
        broker.stop()
        down = ingest.events(json.dumps(contract_event("during")).encode())
        assert (down.status, down.headers["retry-after"]) == (503, "5")
        broker.start()  # the embedded broker comes back empty: its topics are made again, as `up` does
        asyncio.run(create_topics(kafka))

        def accepted_again() -> bool:
            return ingest.events(json.dumps(contract_event("after")).encode()).status == 200

        wait_for(accepted_again, 60, "ingest accepting again")
        assert "after" in {json.loads(m.value)["event_id"] for m in read_topic(kafka, kafka.events_topic, 1)}
    finally:
        ingest.stop()
        broker.stop()


@pytest.mark.broker
def test_an_export_is_sent_in_time_order(kafka: BrokerSettings, tmp_path: Path) -> None:
    """The workers judge lateness against the newest event of each partition: history sent out of time order
    would leave events out of derived metrics."""
    from ingest.backfill import Importer

    topics = topics_for_test(kafka)
    asyncio.run(create_topics(replace(topics, partitions=1)))
    export = tmp_path / "export.json"
    export.write_bytes(recent((CAPTURES / "exports" / "project1-cli-export-completed_by-object.json").read_bytes()))
    report = Importer(topics, idempotence=False).label_studio(export)
    times = [json.loads(m.value)["occurred_at"] for m in read_topic(topics, topics.backfill_topic, report.sent)]
    assert len(times) == 16 and times == sorted(times, key=datetime.fromisoformat)
