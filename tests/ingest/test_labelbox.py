"""Labelbox webhooks as contract events, on fixtures built from Labelbox's documented payloads with signatures
computed for real (secret `labelbox-test-secret`; tests/ingest/fixtures/labelbox/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.labelbox import label, map_delivery, signed
from ingest.mapping import MalformedWebhook
from schema.events import EventError, validate_event

FIXTURES = Path(__file__).parent / "fixtures" / "labelbox"
SECRET = "labelbox-test-secret"
RECEIVED = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)


def fixture(name: str) -> tuple[bytes, dict[str, str]]:
    (path,) = FIXTURES.glob(f"{name}-*.body")
    return path.read_bytes(), json.loads(path.with_suffix(".json").read_text())["headers"]


def mapped(name: str) -> list[dict[str, Any]]:
    body, headers = fixture(name)
    return map_delivery(body, headers, received_at=RECEIVED).events


@pytest.mark.parametrize("name", ["01", "02", "03", "04", "05"])
def test_every_fixture_is_signed_with_the_secret_both_ways(name: str) -> None:
    body, headers = fixture(name)
    assert signed(SECRET, body, headers) is True
    assert signed(SECRET, body, {"X-Hub-Signature": headers["X-Hub-Signature"]}) is True  # sha1 only (older docs)
    assert signed("another-secret-entirely", body, headers) is False
    assert signed(SECRET, body + b" ", headers) is False  # over the exact bytes


def test_a_delivery_without_a_signature_is_told_apart_from_a_wrong_one() -> None:
    body, headers = fixture("91")
    assert signed(SECRET, body, headers) is False
    assert signed(SECRET, body, {"Content-Type": "application/json"}) is None


ROW, ALICE, BOB = "clp0datarow0000000000000001", "clp0user00000000000000alice", "clp0user0000000000000000bob"
EXPECTED = {  # (event_type, task_id, annotator_id, reviewer_id, verdict)
    "01": [("annotation_submitted", ROW, ALICE, None, None)],
    "02": [("annotation_updated", ROW, ALICE, None, None)],
    "03": [("annotation_deleted", ROW, ALICE, None, None)],
    "04": [("review_completed", ROW, ALICE, BOB, "accepted")],
    "05": [("review_completed", ROW, ALICE, BOB, "rejected")],
}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_each_topic_maps_to_the_contract_event_it_stands_for(name: str, expected: list[Any]) -> None:
    events = mapped(name)
    fields = ("event_type", "task_id", "annotator_id", "reviewer_id", "verdict")
    assert [tuple(event.get(field) for field in fields) for event in events] == expected
    for event in events:
        result = validate_event(json.dumps(event), now=RECEIVED)
        assert not isinstance(result, EventError), result
        assert (result.source_system, result.project_id) == ("labelbox", "clp0project000000000000000")


def test_a_created_label_carries_its_time_labels_and_the_delivery_id() -> None:
    (submitted,) = mapped("01")
    assert submitted["occurred_at"] == "2026-11-30T10:00:00+00:00"
    assert submitted["duration_ms"] == 41_200  # secondsToLabel
    assert submitted["label"] == {"objects": ["car"], "classifications": [{"question": "weather", "answer": "sunny"}]}
    assert submitted["labelbox_delivery_id"] == "clp0delivery000000000000001"
    (updated,) = mapped("02")
    assert updated["label"] == "sunny"  # one answer, no objects: its class name


def test_a_redelivery_is_the_same_event_and_every_fact_its_own() -> None:
    assert mapped("04") == mapped("04")
    ids = [event["event_id"] for name in EXPECTED for event in mapped(name)]
    assert len(ids) == len(set(ids))


def test_a_deletion_without_updated_at_is_the_same_event_whenever_it_is_delivered_again() -> None:
    body, headers = fixture("03")
    document = json.loads(body)
    document.pop("updatedAt", None)
    body = json.dumps(document).encode()
    first = map_delivery(body, headers, received_at=RECEIVED).events
    later = map_delivery(body, headers, received_at=RECEIVED.replace(hour=11)).events
    assert [event["event_id"] for event in first] == [event["event_id"] for event in later]


def test_a_review_without_a_verdict_and_workflow_actions_map_to_nothing() -> None:
    body, headers = fixture("04")
    neutral = json.loads(body) | {"score": 0}
    delivery = map_delivery(json.dumps(neutral).encode(), headers, received_at=RECEIVED)
    assert (delivery.events, delivery.ignored) == ([], "a review without a verdict (score 0)")
    workflow = map_delivery(b"{}", {"X-Labelbox-Event": "WORKFLOW_ACTION"}, received_at=RECEIVED)
    assert workflow.ignored == "WORKFLOW_ACTION has no event in the contract"
    unknown = map_delivery(b"{}", {"X-Labelbox-Event": "DATAROW_EXPLODED"}, received_at=RECEIVED)
    assert unknown.ignored == "unknown topic 'DATAROW_EXPLODED'"


def created(**changes: Any) -> bytes:
    body, _ = fixture("01")
    return json.dumps(json.loads(body) | changes).encode()


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"{}", {}, "no X-Labelbox-Event header"),
        (b"{oops", {"X-Labelbox-Event": "LABEL_CREATED"}, "body is not JSON"),
        (b"[]", {"X-Labelbox-Event": "LABEL_CREATED"}, "must be a JSON object"),
        (created(dataRow=None), {"X-Labelbox-Event": "LABEL_CREATED"}, "'dataRow' must be an object"),
        (created(createdBy={"email": "a@x"}), {"X-Labelbox-Event": "LABEL_CREATED"}, "'id' must be a non-empty string"),
        (created(createdAt="soon"), {"X-Labelbox-Event": "LABEL_CREATED"}, "'createdAt' must be an ISO 8601 time"),
        (created(label="{not json"), {"X-Labelbox-Event": "LABEL_CREATED"}, "label is not JSON"),
        (created(score=2, label={}), {"X-Labelbox-Event": "REVIEW_CREATED"}, "score must be 1, 0 or -1"),
    ],
)
def test_a_malformed_delivery_is_refused_saying_what_and_where(
    body: bytes, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        map_delivery(body, headers, received_at=RECEIVED)


def test_several_answers_and_objects_become_a_structured_label_without_geometry() -> None:
    value = {
        "objects": [{"title": "car", "bbox": {"top": 1}}, {"title": "bus", "polygon": [{"x": 1, "y": 2}]}],
        "classifications": [{"title": "tags", "answers": [{"title": "night"}, {"title": "rain"}]}],
    }
    assert label(value, "here") == {
        "objects": ["bus", "car"],
        "classifications": [{"question": "tags", "answer": ["night", "rain"]}],
    }
