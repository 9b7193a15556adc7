"""CVAT webhooks as contract events, on deliveries built from CVAT's source with signatures computed for real
(secret `cvat-test-secret-0123456789`; tests/ingest/fixtures/cvat/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.cvat import PLACEHOLDER_LABEL, IssueMemory, map_delivery, signed
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


def changed(fixture: str, resource: str, **changes: Any) -> bytes:
    """A fixture's delivery with its job, issue or comment changed."""
    delivery = document(fixture)
    delivery[resource] |= changes
    return body(delivery)


def job_with(**changes: Any) -> bytes:
    return changed("05", "job", **changes)


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


# ---------------------------------------------------------------- issues as rejection reasons

ISSUE_AND_COMMENT = ("07", "08")  # create:issue (job 19, frame 3), create:comment "Box misses the mirror"


def remembered(*names: str) -> IssueMemory:
    issues = IssueMemory()
    for name in names:
        assert map_delivery(fixture(name)[0], issues).events == []
    return issues


def rejection(issues: IssueMemory) -> dict[str, Any]:
    (rejected,) = map_delivery(fixture("09")[0], issues).events
    return rejected


def test_a_rejection_carries_the_text_of_its_jobs_open_issue_as_its_reason() -> None:
    rejected = rejection(remembered(*ISSUE_AND_COMMENT))
    assert (rejected["reason"], rejected["cvat_issues"]) == ("Box misses the mirror", 1)
    result = validate_event(json.dumps(rejected), now=NOW)
    assert not isinstance(result, EventError), result
    assert result.reason == "Box misses the mirror"


def test_the_reason_does_not_change_the_rejections_event_id_so_a_redelivery_stays_a_duplicate() -> None:
    assert rejection(remembered(*ISSUE_AND_COMMENT))["event_id"] == mapped("09")[0]["event_id"]
    issues = remembered(*ISSUE_AND_COMMENT)
    assert rejection(issues) == rejection(issues)


def test_the_issue_and_its_comment_may_arrive_in_either_order() -> None:
    assert rejection(remembered("08", "07"))["reason"] == "Box misses the mirror"


def test_an_issue_and_comment_delivery_says_what_was_kept() -> None:
    issues = IssueMemory()
    assert map_delivery(fixture("07")[0], issues).ignored == (
        "create:issue has no event in the contract; issue 5 of job 19 open: a reason of the job's next rejection"
    )
    assert map_delivery(fixture("08")[0], issues).ignored.endswith("comment 6: the text of issue 5")


def test_replies_on_an_issue_are_not_its_text() -> None:
    issues = remembered(*ISSUE_AND_COMMENT)
    reply = document("08")
    reply["comment"] |= {"id": 9, "message": "fixed it", "owner": {"id": 6}}
    assert map_delivery(body(reply), issues).ignored.endswith("a reply on issue 5, not its text")
    assert rejection(issues)["reason"] == "Box misses the mirror"


def test_resolved_deleted_and_other_jobs_issues_are_not_reasons() -> None:
    assert "reason" not in rejection(remembered(*ISSUE_AND_COMMENT, "10"))  # resolved
    assert "reason" not in rejection(remembered(*ISSUE_AND_COMMENT, "14"))  # deleted
    elsewhere = document("07")
    elsewhere["issue"]["job"] = 20
    issues = remembered("08")
    map_delivery(body(elsewhere), issues)
    assert "reason" not in rejection(issues)
    assert "reason" not in rejection(IssueMemory())  # the issues went elsewhere (another replica, a restart)


def test_several_open_issues_give_their_texts_once_each_in_the_order_they_were_opened() -> None:
    issues = remembered(*ISSUE_AND_COMMENT)
    for issue_id, comment_id, message in ((8, 12, "Wrong class: bus"), (7, 11, "Box misses  the\nmirror")):
        opened, commented = document("07"), document("08")
        opened["issue"]["id"] = issue_id
        commented["comment"] |= {"id": comment_id, "issue": issue_id, "message": message}
        map_delivery(body(opened), issues)
        map_delivery(body(commented), issues)
    assert rejection(issues)["reason"] == "Box misses the mirror; Wrong class: bus"


def test_a_reason_longer_than_the_contract_allows_is_cut() -> None:
    issues = remembered("07")
    long_comment = document("08")
    long_comment["comment"]["message"] = "x" * 2000
    map_delivery(body(long_comment), issues)
    reason = rejection(issues)["reason"]
    assert (len(reason), reason[-1]) == (1024, "…")


def test_an_issue_sent_with_its_comments_as_cvat_before_2_4_did_needs_no_comment_delivery() -> None:
    older = document("07")
    older["issue"]["comments"] = [document("08")["comment"]]
    issues = IssueMemory()
    map_delivery(body(older), issues)
    assert rejection(issues)["reason"] == "Box misses the mirror"


def test_the_memory_forgets_the_oldest_issues_beyond_its_limit() -> None:
    issues = IssueMemory(limit=1)
    map_delivery(fixture("07")[0], issues)
    map_delivery(fixture("08")[0], issues)
    other = document("07")
    other["issue"] |= {"id": 99, "job": 20}
    map_delivery(body(other), issues)
    assert "reason" not in rejection(issues)


def issue_with(**changes: Any) -> bytes:
    return changed("07", "issue", **changes)


def comment_with(**changes: Any) -> bytes:
    return changed("08", "comment", **changes)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"event": "create:issue", "issue": 5}', "create:issue: 'issue' must be an object"),
        (issue_with(job="19"), "issue 5: 'job' must be an integer id"),
        (issue_with(resolved="no"), "issue 5: 'resolved' must be true or false"),
        (comment_with(issue=None), "comment 6: 'issue' must be an integer id"),
        (comment_with(message=""), "comment 6: 'message' must be a non-empty string"),
    ],
)
def test_a_malformed_issue_or_comment_is_refused_saying_what_and_where(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        map_delivery(raw, IssueMemory())
