"""CVAT webhooks as contract events. Pure: a delivery's body in, contract documents out.

Built from CVAT's source and documentation (cvat/apps/webhooks, docs.cvat.ai "Webhooks", cvat-sdk's models);
no live CVAT was available. A CVAT *job* is the contract's task (its unit of work, with one assignee).

CVAT sends the job as it is now, not what changed: `before_update` was dropped from `update:*` payloads (CVAT
PR #11104). So each delivery maps to the facts the job's current stage, state and assignee state, and each
fact's event_id comes from the job, the fact and the person, never from the delivery: a later delivery that
states the same fact again, or a delivery sent again, is a duplicate the workers drop. The cost: a fact repeated
for the same person on the same job (a second rejection, a resubmission after a rejection) counts once.

- `create:job`: `task_created` at its `created_date` (and the facts below).
- stage annotation with an assignee: `task_assigned` (annotate); state `in progress`: `annotation_started`;
  state `completed`: `annotation_submitted` with the placeholder label PLACEHOLDER_LABEL (webhooks carry no
  labels). At validation the assignee may be the annotator or the reviewer (teams do both): no assignment.
- stage validation, state `completed` / `rejected`: `review_completed` accepted / rejected by the user who made
  the change (`sender`) of the work of the job's assignee — only when both are known and differ (a job reassigned
  to its reviewer no longer names whose work it was: left out).
- stage acceptance, state `completed`: `task_completed`.
- Issues are a rejection's reasons, but no payload joins them: an issue names its job only by id (no project,
  no annotator: it cannot be an event of its own), its text is its first comment, which names only the issue,
  and the rejection only counts the job's issues (kept as `cvat_issues`). So the ingest service remembers the
  issues it was sent (IssueMemory) and a rejection carries the texts of its job's open issues as `reason`.
  Nothing else maps (tasks, projects, deletions, ping, …).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ingest.mapping import (
    Delivery,
    MalformedWebhook,
    derived_id,
    event_skeleton,
    iso_time,
    json_object,
    require_int_id,
    require_object,
    require_text,
)

SOURCE_SYSTEM = "cvat"
SIGNATURE_HEADER = "X-Signature-256"
# What a submission's label is when the tool does not say: one value, so CVAT work shows as one entry.
PLACEHOLDER_LABEL = {"cvat": "labels not in webhooks"}
MAPPED = frozenset({"create:job", "update:job"})
# CVAT's own event names (cvat/apps/webhooks/event_type.py): known, with nothing to map.
RESOURCES = ("project", "task", "job", "issue", "comment", "organization", "membership", "invitation", "user")
KNOWN = MAPPED | {f"{verb}:{resource}" for verb in ("create", "update", "delete") for resource in RESOURCES} | {"ping"}
VERDICTS = {"completed": "accepted", "rejected": "rejected"}
ISSUE_EVENTS = frozenset({"create:issue", "update:issue", "delete:issue", "create:comment", "update:comment"})
REASON_CHARACTERS = 1024  # the contract's limit on `reason`


@dataclass
class _Issue:
    job: str = ""  # unknown while only a comment on it was seen
    resolved: bool = False
    message: str = ""
    message_comment: int | None = None  # the comment the text came from: an issue's text is its first comment


class IssueMemory:
    """The CVAT issues this process was sent, so a job's rejection can name its reasons (the texts of the job's
    open issues). Per process and bounded (the oldest issues are forgotten first): a rejection whose issues went
    to another replica, or came before a restart, or after the rejection, carries no reason — never a wrong one."""

    def __init__(self, limit: int = 10_000) -> None:
        self._issues: OrderedDict[int, _Issue] = OrderedDict()
        self._limit = limit

    def issue(self, issue: dict[str, Any], deleted: bool) -> str:
        """Note an issue's job, whether it is resolved and (CVAT before 2.4 sent its comments along) its text."""
        issue_id = int(require_int_id(issue, "id", "issue"))
        where = f"issue {issue_id}"
        job = require_int_id(issue, "job", where)
        if deleted:
            self._issues.pop(issue_id, None)
            return f"issue {issue_id} of job {job} deleted: no longer a reason"
        if not isinstance(issue.get("resolved"), bool):
            raise MalformedWebhook(f"{where}: 'resolved' must be true or false, got {issue.get('resolved')!r:.40}")
        noted = self._noted(issue_id)
        noted.job, noted.resolved = job, issue["resolved"]
        if isinstance(issue.get("comments"), list):  # CVAT before 2.4: the comments themselves
            for comment in issue["comments"]:
                self.comment(comment if isinstance(comment, dict) else {})
        state = "resolved: not a reason" if noted.resolved else "open: a reason of the job's next rejection"
        return f"issue {issue_id} of job {job} {state}"

    def comment(self, comment: dict[str, Any]) -> str:
        """Note a comment's text when it is its issue's first: the issue's own text (later ones are replies)."""
        comment_id = int(require_int_id(comment, "id", "comment"))
        issue_id = int(require_int_id(comment, "issue", f"comment {comment_id}"))
        message = require_text(comment, "message", f"comment {comment_id}")
        noted = self._noted(issue_id)
        if noted.message_comment is None or comment_id <= noted.message_comment:
            noted.message, noted.message_comment = " ".join(message.split()), comment_id
            return f"comment {comment_id}: the text of issue {issue_id}"
        return f"comment {comment_id}: a reply on issue {issue_id}, not its text"

    def reason(self, job: str) -> str:
        """The texts of the job's open issues, each once, in the order the issues were opened."""
        texts = dict.fromkeys(
            noted.message
            for _, noted in sorted(self._issues.items())
            if noted.job == job and not noted.resolved and noted.message
        )
        reason = "; ".join(texts)
        return reason if len(reason) <= REASON_CHARACTERS else reason[: REASON_CHARACTERS - 1] + "…"

    def _noted(self, issue_id: int) -> _Issue:
        noted = self._issues.setdefault(issue_id, _Issue())
        self._issues.move_to_end(issue_id)
        while len(self._issues) > self._limit:
            self._issues.popitem(last=False)
        return noted


def signed(secret: str, body: bytes, sent: str | None) -> bool | None:
    """Whether `sent` (X-Signature-256) is `sha256=` + the HMAC-SHA256 of the exact body with the webhook's secret,
    compared in constant time. None when the header is missing (a webhook without a secret signs nothing)."""
    if sent is None:
        return None
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent.strip().encode(), expected.encode())


def map_delivery(body: bytes, issues: IssueMemory | None = None) -> Delivery:
    """The contract documents one delivery stands for; issues and comments are noted in `issues` (when given) and
    a rejection carries the texts of its job's open issues as `reason`. Raises MalformedWebhook."""
    document = json_object(body)
    action = document.get("event")
    if not isinstance(action, str) or not action:
        raise MalformedWebhook(f"'event' must be a CVAT event name such as 'update:job', got {action!r:.80}")
    if action in ISSUE_EVENTS and issues is not None:
        verb, resource = action.split(":")
        noted = require_object(document, resource, action)
        kept = issues.issue(noted, verb == "delete") if resource == "issue" else issues.comment(noted)
        return Delivery(action, ignored=f"{action} has no event in the contract; {kept}")
    if action not in MAPPED:
        ignored = f"{action} has no event in the contract" if action in KNOWN else f"unknown event {action!r:.80}"
        return Delivery(action, ignored=ignored)
    job = require_object(document, "job", action)
    events = _job_facts(job, _sender(document))
    if action == "create:job":
        events.insert(0, _task_created(job))
    for event in events:
        if event.get("verdict") == "rejected" and issues is not None and (reason := issues.reason(event["task_id"])):
            event["reason"] = reason
    if not events:
        return Delivery(action, ignored=_why_nothing(job))
    return Delivery(action, events)


def _why_nothing(job: dict[str, Any]) -> str:
    if job.get("stage") == "validation" and job.get("state") in VERDICTS:
        return (
            "a verdict on a job assigned to its reviewer (or to nobody), or set by nobody: whose work it judges is "
            "not in the payload"
        )
    if job.get("stage") == "annotation" and job.get("state") != "new" and job.get("assignee") is None:
        return "work on a job without an assignee: whose work it is is not in the payload (assign jobs in CVAT)"
    return f"stage {job.get('stage')}, state {job.get('state')}: no contract event"


def _task_created(job: dict[str, Any]) -> dict[str, Any]:
    where = f"job {require_int_id(job, 'id', 'job')}"
    return _event(job, "task_created", "created") | {"occurred_at": iso_time(job, "created_date", where)}


def _job_facts(job: dict[str, Any], sender: str | None) -> list[dict[str, Any]]:
    where = f"job {require_int_id(job, 'id', 'job')}"
    stage, state = job.get("stage"), job.get("state")
    if stage not in ("annotation", "validation", "acceptance"):
        raise MalformedWebhook(f"{where}: 'stage' must be annotation, validation or acceptance, got {stage!r:.40}")
    if state not in ("new", "in progress", "rejected", "completed"):
        raise MalformedWebhook(f"{where}: 'state' must be new, in progress, rejected or completed, got {state!r:.40}")
    assignee = _person(job.get("assignee"), f"{where}, assignee")
    changed_at = iso_time(job, "updated_date", where)
    facts: list[dict[str, Any]] = []
    if stage == "annotation" and assignee:
        assigned_at = iso_time(job, "assignee_updated_date", where) if job.get("assignee_updated_date") else changed_at
        facts.append(
            _event(job, "task_assigned", "assigned", assignee)
            | {"occurred_at": assigned_at, "stage": "annotate", "annotator_id": assignee}
        )
        if state == "in progress":
            facts.append(_event(job, "annotation_started", "started", assignee) | _work(changed_at, assignee))
        elif state == "completed":
            facts.append(
                _event(job, "annotation_submitted", "submitted", assignee)
                | _work(changed_at, assignee)
                | {"label": PLACEHOLDER_LABEL, "annotation_id": str(job["id"])}
            )
    elif stage == "validation" and state in VERDICTS and assignee and sender and sender != assignee:
        verdict = VERDICTS[str(state)]
        review = _event(job, "review_completed", verdict, assignee) | _work(changed_at, assignee)
        facts.append(review | {"reviewer_id": sender, "verdict": verdict, "stage": "review"} | _issue_count(job))
    elif stage == "acceptance" and state == "completed":
        facts.append(_event(job, "task_completed", "completed") | {"occurred_at": changed_at})
    return facts


def _event(job: dict[str, Any], event_type: str, fact: str, person: str = "") -> dict[str, Any]:
    """The fields every event of a job has; its id from the job, the fact and the person it is about."""
    job_id = str(job["id"])
    event_id = derived_id("cvat", "job", job_id, fact, person)
    return event_skeleton(SOURCE_SYSTEM, event_type, event_id, _project(job), job_id)


def _project(job: dict[str, Any]) -> str:
    """The job's project id; a CVAT task outside any project stands for its own project (`task-<id>`)."""
    if isinstance(job.get("project_id"), int) and not isinstance(job["project_id"], bool):
        return str(job["project_id"])
    return "task-" + require_int_id(job, "task_id", f"job {job['id']}")


def _work(occurred_at: str, annotator: str) -> dict[str, Any]:
    return {"occurred_at": occurred_at, "annotator_id": annotator}


def _issue_count(job: dict[str, Any]) -> dict[str, int]:
    """The job's issues (its rejection reasons are their comments) as `cvat_issues`, where the payload counts them."""
    issues = job.get("issues")
    count = issues.get("count") if isinstance(issues, dict) else None
    return {"cvat_issues": count} if isinstance(count, int) and not isinstance(count, bool) else {}


def _sender(document: dict[str, Any]) -> str | None:
    """Who made the change: a user's id; None for CVAT itself (a background job sends null, or no user id)."""
    sender = document.get("sender")
    user_id = sender.get("id") if isinstance(sender, dict) else None
    return str(user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def _person(value: Any, where: str) -> str | None:
    """A CVAT user (BasicUser) as its id; None for nobody."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{where} must be a user object or null, got {value!r:.80}")
    return require_int_id(value, "id", where)
