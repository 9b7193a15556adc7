"""CVAT webhooks as contract events, on deliveries built from CVAT's source with signatures computed for real
(secret `cvat-test-secret-0123456789`; tests/ingest/fixtures/cvat/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.cvat import PLACEHOLDER_LABEL, map_delivery, signed
from ingest.mapping import MalformedWebhook
from schema.events import EventError, validate_event

FIXTURES = Path(__file__).parent / "fixtures" / "cvat"
SECRET = "cvat-test-secret-0123456789"
NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def fixture(name: str) -> tuple[bytes, dict[str, str]]:
    (path,) = FIXTURES.glob(f"{name}-*.body")
    return path.read_bytes(), json.loads(path.with_suffix(".json").read_text())["headers"]


def mapped(name: str) -> list[dict[str, Any]]:
    return map_delivery(fixture(name)[0]).events


def document(name: str) -> dict[str, Any]:
    return dict(json.loads(fixture(name)[0]))


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


NAMES = sorted(path.name[:2] for path in FIXTURES.glob("[0-8]*.body"))


@pytest.mark.parametrize("name", NAMES)
def test_every_delivery_is_signed_with_the_webhook_secret_over_its_exact_bytes(name: str) -> None:
    raw, headers = fixture(name)
    assert signed(SECRET, raw, headers["X-Signature-256"]) is True
    assert signed("another-secret-entirely-0000", raw, headers["X-Signature-256"]) is False
    assert signed(SECRET, raw + b" ", headers["X-Signature-256"]) is False


def test_a_signature_made_with_another_secret_is_told_apart_from_none() -> None:
    raw, headers = fixture("91")
    assert signed(SECRET, raw, headers["X-Signature-256"]) is False
    assert signed(SECRET, raw, None) is None


WORKER, REVIEWER = "6", "7"
EXPECTED = {  # (event_type, annotator_id, reviewer_id, verdict) of each delivery, in order
    "02": [("task_created", None, None, None)],
    "03": [("task_assigned", WORKER, None, None)],
    "04": [("task_assigned", WORKER, None, None), ("annotation_started", WORKER, None, None)],
    "05": [("task_assigned", WORKER, None, None), ("annotation_submitted", WORKER, None, None)],
    "09": [("review_completed", WORKER, REVIEWER, "rejected")],
    "11": [("review_completed", WORKER, REVIEWER, "accepted")],
    "12": [("task_completed", None, None, None)],
    "17": [("task_created", None, None, None)],
}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_each_job_fact_maps_to_the_contract_event_it_stands_for(name: str, expected: list[Any]) -> None:
    events = mapped(name)
    fields = ("event_type", "annotator_id", "reviewer_id", "verdict")
    assert [tuple(event.get(field) for field in fields) for event in events] == expected
    for event in events:
        result = validate_event(json.dumps(event), now=NOW)
        assert not isinstance(result, EventError), result
        assert (result.source_system, result.task_id) == ("cvat", "19" if name != "17" else "31")


def test_a_job_is_a_task_of_its_project_or_of_its_cvat_task_outside_any_project() -> None:
    assert {event["project_id"] for name in EXPECTED if name != "17" for event in mapped(name)} == {"7"}
    (created,) = mapped("17")
    assert created["project_id"] == "task-16"


def test_each_fact_takes_its_time_from_the_job() -> None:
    (created,) = mapped("02")
    assert created["occurred_at"] == "2026-11-30T10:00:00+00:00"  # created_date
    assigned, started = mapped("04")
    assert assigned["occurred_at"] == "2026-11-30T10:01:00+00:00"  # assignee_updated_date
    assert started["occurred_at"] == "2026-11-30T10:02:00+00:00"  # updated_date
    (review,) = mapped("09")
    assert review["occurred_at"] == "2026-11-30T11:06:00+00:00"


def test_a_submission_has_the_placeholder_label_and_no_time_cvat_does_not_send() -> None:
    _, submitted = mapped("05")
    assert submitted["label"] == PLACEHOLDER_LABEL
    assert submitted["annotation_id"] == "19"
    assert "duration_ms" not in submitted


def test_a_rejection_keeps_the_jobs_issue_count_as_its_reason_is_not_in_the_payload() -> None:
    (rejected,) = mapped("09")
    assert rejected["cvat_issues"] == 1
    assert "reason" not in rejected
    uncounted = document("09")
    del uncounted["job"]["issues"]
    assert "cvat_issues" not in map_delivery(body(uncounted)).events[0]


def test_a_redelivery_and_a_later_delivery_stating_the_same_fact_are_the_same_event() -> None:
    assert mapped("05") == mapped("05")
    assignments = {events[0]["event_id"] for events in (mapped("03"), mapped("04"), mapped("05"))}
    assert len(assignments) == 1  # the assignment, restated by every delivery while it holds
    facts = {event["event_id"] for name in EXPECTED for event in mapped(name)}
    assert len(facts) == 8  # 10 events: the two restated assignments are the third's duplicates


def test_an_update_without_before_update_maps_like_one_with_it() -> None:
    older = document("05")
    newer = {key: value for key, value in older.items() if key != "before_update"}
    assert map_delivery(body(newer)).events == map_delivery(body(older)).events


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("01", "create:task has no event in the contract"),
        ("06", "stage validation, state new: no contract event"),
        ("07", "create:issue has no event in the contract"),
        ("08", "create:comment has no event in the contract"),
        ("10", "update:issue has no event in the contract"),
        ("13", "a verdict on a job assigned to its reviewer (or to nobody), or set by nobody"),
        ("14", "delete:issue has no event in the contract"),
        ("15", "delete:job has no event in the contract"),
        ("16", "delete:task has no event in the contract"),
        ("18", "ping has no event in the contract"),
    ],
)
def test_deliveries_with_nothing_for_the_contract_say_why(name: str, reason: str) -> None:
    delivery = map_delivery(fixture(name)[0])
    assert delivery.events == []
    assert delivery.ignored.startswith(reason)


def test_an_unknown_event_is_ignored_as_unknown() -> None:
    delivery = map_delivery(b'{"event": "explode:job", "job": {}}')
    assert (delivery.action, delivery.ignored) == ("explode:job", "unknown event 'explode:job'")


def test_a_verdict_set_by_nobody_or_on_an_unassigned_job_is_left_out() -> None:
    rejected = document("09")
    assert map_delivery(body(rejected | {"sender": None})).events == []
    assert map_delivery(body(rejected | {"sender": {"username": "system"}})).events == []  # not refused
    rejected["job"]["assignee"] = None
    assert map_delivery(body(rejected)).events == []


def test_work_on_an_unassigned_job_is_attributed_to_nobody() -> None:
    completed = document("05")
    completed["job"]["assignee"] = None
    assert map_delivery(body(completed)).ignored.startswith("work on a job without an assignee")


def job_with(**changes: Any) -> bytes:
    delivery = document("05")
    delivery["job"] |= changes
    return body(delivery)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{oops", "body is not JSON"),
        (b"[]", "body must be a JSON object, got list"),
        (b'{"job": {}}', "'event' must be a CVAT event name"),
        (b'{"event": "update:job", "job": 19}', "update:job: 'job' must be an object"),
        (job_with(id="19"), "job: 'id' must be an integer id, got '19'"),
        (job_with(stage="review"), "job 19: 'stage' must be annotation, validation or acceptance"),
        (job_with(state="done"), "job 19: 'state' must be new, in progress, rejected or completed"),
        (job_with(updated_date="yesterday"), "job 19: 'updated_date' must be an ISO 8601 time"),
        (job_with(assignee="worker1"), "job 19, assignee must be a user object or null"),
        (job_with(project_id=None, task_id=None), "job 19: 'task_id' must be an integer id"),
    ],
)
def test_a_malformed_delivery_is_refused_saying_what_and_where(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        map_delivery(raw)
