"""Labelbox webhooks as contract events. Pure: a delivery's body and headers in, contract documents out.

Built from Labelbox's documentation and SDK (topics, signature headers) and from a real consumer's handler (the
label fields); no live Labelbox was available, so fields beyond `id`, `label`, `dataRow.id`, `project.id` are as
documented, not observed (README, "Connect your labeling tool").

- LABEL_CREATED: `annotation_submitted` (annotator `createdBy.id`, `secondsToLabel` as duration);
  LABEL_UPDATED: `annotation_updated`; LABEL_DELETED: `annotation_deleted`.
- REVIEW_CREATED / REVIEW_UPDATED (legacy review scores): score 1 → `review_completed` accepted, -1 → rejected;
  0 (no verdict, or a review removed) maps to nothing.
- WORKFLOW_ACTION and any other topic: ignored.
A data row is the contract's task. Event ids come from what the event is about (topic, entity, its updatedAt),
so a delivery sent again, whatever its `X-Labelbox-Id`, is a duplicate the workers drop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ingest.mapping import (
    Delivery,
    MalformedWebhook,
    derived_id,
    event_skeleton,
    iso_time,
    json_object,
    require_object,
    require_text,
)
from schema.events import MAX_DURATION_MS

SOURCE_SYSTEM = "labelbox"
MAPPED = frozenset({"LABEL_CREATED", "LABEL_UPDATED", "LABEL_DELETED", "REVIEW_CREATED", "REVIEW_UPDATED"})
EVENT_HEADER = "X-Labelbox-Event"
DELIVERY_HEADER = "X-Labelbox-Id"
VERDICTS = {1: "accepted", -1: "rejected"}


def signed(secret: str, body: bytes, headers: Mapping[str, str]) -> bool | None:
    """Whether the body carries the secret's HMAC: X-Hub-Signature-256 (sha256=…) where sent, else X-Hub-Signature
    (sha1=…), over the raw bytes, compared in constant time. None when neither header is there."""
    sent_headers = {name.lower(): value for name, value in headers.items()}
    for header, algorithm in (("x-hub-signature-256", hashlib.sha256), ("x-hub-signature", hashlib.sha1)):
        sent = sent_headers.get(header)
        if sent is not None:
            expected = f"{algorithm().name}=" + hmac.new(secret.encode(), body, algorithm).hexdigest()
            return hmac.compare_digest(sent.strip().encode(), expected.encode())
    return None


def map_delivery(body: bytes, headers: Mapping[str, str], *, received_at: datetime) -> Delivery:
    """The contract documents one delivery stands for. Raises MalformedWebhook."""
    headers = {name.lower(): value for name, value in headers.items()}
    topic = headers.get(EVENT_HEADER.lower(), "")
    if not topic:
        raise MalformedWebhook(f"no {EVENT_HEADER} header: not a Labelbox webhook")
    if topic not in MAPPED:
        known = topic == "WORKFLOW_ACTION"  # its payload is not documented
        return Delivery(topic, ignored=f"{topic} has no event in the contract" if known else f"unknown topic {topic!r}")
    document = json_object(body)
    delivery_id = headers.get(DELIVERY_HEADER.lower())
    events = _review(document, topic) if topic.startswith("REVIEW_") else [_label(document, topic, received_at)]
    for event in events:
        if delivery_id:
            event["labelbox_delivery_id"] = delivery_id  # kept (an unknown field) to trace a delivery
    if not events:
        return Delivery(topic, ignored="a review without a verdict (score 0)")
    return Delivery(topic, events)


def _label(document: dict[str, Any], topic: str, received_at: datetime) -> dict[str, Any]:
    label_id = require_text(document, "id", "label")
    where = f"label {label_id}"
    event_type = {"LABEL_CREATED": "annotation_submitted", "LABEL_UPDATED": "annotation_updated"}.get(
        topic, "annotation_deleted"
    )
    occurred_key = "createdAt" if topic == "LABEL_CREATED" else "updatedAt"
    if topic == "LABEL_DELETED" and not document.get("updatedAt"):
        occurred_at = received_at.isoformat()
    else:
        occurred_at = iso_time(document, occurred_key, where)
    # A label is deleted once: a deletion's id must not depend on when it was received (a redelivery).
    version = topic if topic == "LABEL_DELETED" else f"{topic} {occurred_at}"
    event = _common(document, event_type, where, version=version) | {
        "occurred_at": occurred_at,
        "annotation_id": label_id,
        "annotator_id": require_text(require_object(document, "createdBy", where), "id", f"{where}, createdBy"),
    }
    if topic != "LABEL_DELETED":
        event["label"] = label(document.get("label"), where)
    seconds = document.get("secondsToLabel")
    if topic == "LABEL_CREATED" and isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        event["duration_ms"] = min(round(seconds * 1000), MAX_DURATION_MS)
    return event


def _review(document: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    review_id = require_text(document, "id", "review")
    where = f"review {review_id}"
    score = document.get("score")
    if score not in (-1, 0, 1) or isinstance(score, bool):
        raise MalformedWebhook(f"{where}: score must be 1, 0 or -1, got {score!r:.40}")
    if score == 0:
        return []
    reviewed = require_object(document, "label", where)
    occurred_at = iso_time(document, "updatedAt" if topic == "REVIEW_UPDATED" else "createdAt", where)
    return [
        _common(document, "review_completed", where, version=f"{topic} {occurred_at}")
        | {
            "occurred_at": occurred_at,
            "verdict": VERDICTS[score],
            "reviewer_id": require_text(require_object(document, "createdBy", where), "id", f"{where}, createdBy"),
            "annotator_id": require_text(
                require_object(reviewed, "createdBy", f"{where}, label"), "id", f"{where}, label.createdBy"
            ),
            "annotation_id": require_text(reviewed, "id", f"{where}, label"),
            "stage": "review",
        }
    ]


def label(value: Any, where: str) -> str | dict[str, Any]:
    """The label JSON (a string in v1 payloads): one classification answer and no objects as its title, anything
    else as a structured label of object and classification titles, without geometry, in a canonical order."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise MalformedWebhook(f"{where}: label is not JSON: {value!r:.80}") from None
    if not isinstance(value, dict):
        raise MalformedWebhook(f"{where}: label must be an object or its JSON, got {value!r:.80}")
    objects, classifications = value.get("objects") or [], value.get("classifications") or []
    if not isinstance(objects, list) or not isinstance(classifications, list):
        raise MalformedWebhook(f"{where}: label objects and classifications must be lists")
    answers = [_answer(item, where) for item in classifications]
    if not objects and len(answers) == 1 and isinstance(answers[0]["answer"], str):
        return str(answers[0]["answer"])
    titles = sorted(str(item.get("title")) for item in objects if isinstance(item, dict))
    return {"objects": titles, "classifications": sorted(answers, key=lambda a: json.dumps(a, sort_keys=True))}


def _answer(classification: Any, where: str) -> dict[str, Any]:
    if not isinstance(classification, dict):
        raise MalformedWebhook(f"{where}: each classification must be an object, got {classification!r:.80}")
    if isinstance(classification.get("answer"), dict):
        answer: Any = classification["answer"].get("title")
    elif isinstance(classification.get("answers"), list):
        answer = sorted(str(item.get("title")) for item in classification["answers"] if isinstance(item, dict))
    else:
        answer = classification.get("answer")  # free text
    return {"question": classification.get("title"), "answer": answer}


def _common(document: dict[str, Any], event_type: str, where: str, *, version: str) -> dict[str, Any]:
    project_id = require_text(require_object(document, "project", where), "id", f"{where}, project")
    event_id = derived_id("lb", project_id, require_text(document, "id", where), version)
    task_id = require_text(require_object(document, "dataRow", where), "id", f"{where}, dataRow")
    return event_skeleton(SOURCE_SYSTEM, event_type, event_id, project_id, task_id)
