"""Label Studio (1.23) webhooks as contract events. Pure: a delivery's body in, contract documents out.

What each action becomes (README, "Connect your labeling tool"):
- TASKS_CREATED: one `task_created` per task.
- ANNOTATION_CREATED / each annotation of ANNOTATIONS_CREATED: `annotation_skipped` when it was cancelled,
  a gold declaration (`task_created` with `is_gold` and `gold_label`) when it is ground truth, else
  `annotation_submitted`.
- ANNOTATION_UPDATED: `annotation_updated`, and a gold declaration when it is ground truth now.
- ANNOTATIONS_DELETED: one `annotation_deleted` per annotation. Label Studio sends only their ids, no task
  and no time: task_id is UNKNOWN_TASK and occurred_at the time it arrived.
- TASKS_DELETED and PROJECT_*: nothing in the contract; known, ignored. Any other action: ignored too.

Event ids are derived from what the event is about (project, entity, version), never from the body as a
whole, so a delivery sent again, or the same fact arriving from a backfill, is a duplicate the workers drop.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from ingest.mapping import (
    Delivery,
    MalformedWebhook,
    derived_id,
    event_skeleton,
    iso_time,
    json_object,
    require_int_id,
)
from schema.events import MAX_DURATION_MS

__all__ = ["Delivery", "MalformedWebhook", "label", "map_delivery", "map_export", "redacted"]

SOURCE_SYSTEM = "label-studio"
UNKNOWN_TASK = "unknown"
MAPPED = frozenset(
    {"TASKS_CREATED", "ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}
)
# Known actions the contract has no event for.
IGNORED = frozenset({"TASKS_DELETED", "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED"})
# Where a region is, not what it is: left out of structured labels, so that two annotators who drew the same
# classes count as agreeing (LabelPulse compares labels, it does not compute overlaps).
GEOMETRY = frozenset(
    {"x", "y", "width", "height", "rotation", "points", "closed", "start", "end", "startOffset", "endOffset"}
)
# An annotation's updated_at trails its created_at by microseconds when it is made; an edit comes seconds later.
EDITED_AFTER = timedelta(seconds=1)
# Project fields that are secrets (invite token, storage credentials): never kept, not even in dead letters.
PROJECT_SECRETS = ("token", "task_data_login", "task_data_password")


def map_delivery(body: bytes, *, received_at: datetime) -> Delivery:
    """The contract documents one delivery stands for. Raises MalformedWebhook."""
    document = json_object(body)
    action = document.get("action")
    if not isinstance(action, str) or not action:
        raise MalformedWebhook("no 'action': not a Label Studio webhook")
    if action in IGNORED:
        return Delivery(action, ignored=f"{action} has no event in the contract")
    if action not in MAPPED:
        return Delivery(action, ignored=f"unknown action {action!r}")
    project = document.get("project")
    project_id = require_int_id(project, "id", "project") if isinstance(project, dict) else None
    if action == "TASKS_CREATED":
        return Delivery(action, [_task_created(task, project_id) for task in _list(document, "tasks")])
    if action == "ANNOTATIONS_DELETED":
        if project_id is None:
            raise MalformedWebhook("ANNOTATIONS_DELETED without 'project': cannot tell which project it is")
        deleted = [_deleted(item, project_id, received_at) for item in _list(document, "annotations")]
        return Delivery(action, deleted)
    # ANNOTATIONS_CREATED carries lists under the same key as ANNOTATION_CREATED's single object.
    annotations = _list(document, "annotation") if action == "ANNOTATIONS_CREATED" else [_dict(document, "annotation")]
    events = []
    for annotation in annotations:
        if action == "ANNOTATION_UPDATED":
            events.extend(_updated(annotation, project_id))
        else:
            events.append(_created(annotation, project_id))
    return Delivery(action, events)


def map_export(tasks: Any) -> list[dict[str, Any]]:
    """The contract documents a JSON export (a list of tasks with their annotations) stands for, with the same
    event ids the webhooks give the same facts: a backfill overlapping live deliveries stores nothing twice.

    An export holds each annotation as it is now: its creation, and (when it was edited later) its last edit.
    Deleted annotations and earlier edits are gone; an annotation made ground truth by an edit looks like one
    that was ground truth from the start (only the gold label, no submission). Raises MalformedWebhook."""
    if not isinstance(tasks, list):
        raise MalformedWebhook(
            "a Label Studio export is a JSON array of tasks (export type JSON; JSON_MIN lacks skips and ground truth)"
        )
    events: dict[str, dict[str, Any]] = {}  # by event_id: an edit of a gold annotation declares its gold again
    for task in tasks:
        task = _as_dict(task, "tasks[]")
        project_id = require_int_id(task, "project", f"task {task.get('id')!r:.20}")
        for event in [_task_created(task, project_id), *_task_annotations(task, project_id)]:
            events.setdefault(event["event_id"], event)
    return list(events.values())


def _task_annotations(task: dict[str, Any], project_id: str) -> list[dict[str, Any]]:
    mapped = []
    for annotation in _list(task, "annotations"):
        annotation = _as_dict(annotation, "annotations[]")
        mapped.append(_created(annotation, project_id))
        created = datetime.fromisoformat(iso_time(annotation, "created_at", "annotation"))
        if datetime.fromisoformat(iso_time(annotation, "updated_at", "annotation")) - created > EDITED_AFTER:
            mapped.extend(_updated(annotation, project_id))
    return mapped


def redacted(body: bytes) -> bytes:
    """The body with the project's secrets blanked, for the dead-letter topic; as it is when unreadable."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    project = document.get("project") if isinstance(document, dict) else None
    if not isinstance(project, dict) or not any(project.get(name) for name in PROJECT_SECRETS):
        return body
    for name in PROJECT_SECRETS:
        if project.get(name):
            project[name] = "(redacted)"
    return json.dumps(document).encode()


# ---------------------------------------------------------------- per entity


def _task_created(task: Any, project_id: str | None) -> dict[str, Any]:
    task = _as_dict(task, "tasks[]")
    task_id = require_int_id(task, "id", "task")
    project = project_id or require_int_id(task, "project", f"task {task_id}")
    return _event("task_created", _event_id(project, "task", task_id, "created"), project, task_id) | {
        "occurred_at": iso_time(task, "created_at", f"task {task_id}")
    }


def _created(annotation: Any, project_id: str | None) -> dict[str, Any]:
    annotation = _as_dict(annotation, "annotation")
    common, where = _annotation_common(annotation, project_id)
    project, annotation_id = common["project_id"], common["annotation_id"]
    occurred_at = iso_time(annotation, "created_at", where)
    if annotation.get("was_cancelled"):
        return common | {
            "event_type": "annotation_skipped",
            "event_id": _event_id(project, "annotation", annotation_id, "created"),
            "occurred_at": occurred_at,
            **_timing(annotation, where),
        }
    if annotation.get("ground_truth"):
        return _gold(annotation, common, occurred_at, where)
    prediction = annotation.get("prediction")
    assisted = annotation.get("parent_prediction") is not None or (isinstance(prediction, dict) and "id" in prediction)
    submitted = common | {
        "event_type": "annotation_submitted",
        "event_id": _event_id(project, "annotation", annotation_id, "created"),
        "occurred_at": occurred_at,
        "label": label(annotation.get("result"), where),
        "source": "model_assisted" if assisted else "manual",
        **_timing(annotation, where),
    }
    if isinstance(prediction, dict) and prediction.get("result"):
        submitted["model_label"] = label(prediction["result"], f"{where}, its prediction")
        score = prediction.get("score")
        if isinstance(score, int | float) and 0 <= score <= 1:
            submitted["model_confidence"] = float(score)
    return submitted


def _updated(annotation: Any, project_id: str | None) -> list[dict[str, Any]]:
    annotation = _as_dict(annotation, "annotation")
    common, where = _annotation_common(annotation, project_id)
    project, annotation_id = common["project_id"], common["annotation_id"]
    occurred_at = iso_time(annotation, "updated_at", where)
    updated = common | {
        "event_type": "annotation_updated",
        "event_id": _event_id(project, "annotation", annotation_id, f"updated {occurred_at}"),
        "occurred_at": occurred_at,
        "label": label(annotation.get("result"), where),
    }
    # lead_time is cumulative over the annotation's life: the edit took the difference to the previous
    # value, which this delivery does not carry. Kept (an unknown field) so analysts can take differences.
    if isinstance(annotation.get("lead_time"), int | float):
        updated["lead_time_s"] = annotation["lead_time"]
    if annotation.get("ground_truth") and not annotation.get("was_cancelled"):
        return [updated, _gold(annotation, common, occurred_at, where)]
    return [updated]


def _deleted(item: Any, project_id: str, received_at: datetime) -> dict[str, Any]:
    annotation_id = require_int_id(_as_dict(item, "annotations[]"), "id", "annotations[]")
    return _event("annotation_deleted", _event_id(project_id, "annotation", annotation_id, "deleted"), project_id) | {
        "task_id": UNKNOWN_TASK,
        "annotation_id": annotation_id,
        "occurred_at": received_at.isoformat(),
    }


def _gold(annotation: dict[str, Any], common: dict[str, Any], occurred_at: str, where: str) -> dict[str, Any]:
    """A ground-truth annotation makes its task a honeypot: declared as the contract does, by a task_created
    with the gold label. Keyed by the annotation alone: the first declaration of it stands."""
    project, task_id, annotation_id = common["project_id"], common["task_id"], common["annotation_id"]
    return _event("task_created", _event_id(project, "gold", annotation_id, ""), project, task_id) | {
        "occurred_at": occurred_at,
        "is_gold": True,
        "gold_label": label(annotation.get("result"), where),
        "annotation_id": annotation_id,
    }


def _annotation_common(annotation: dict[str, Any], project_id: str | None) -> tuple[dict[str, Any], str]:
    annotation_id = require_int_id(annotation, "id", "annotation")
    where = f"annotation {annotation_id}"
    project = project_id or require_int_id(annotation, "project", where)
    common = _event("", "", project, require_int_id(annotation, "task", where)) | {
        "annotation_id": annotation_id,
        "annotator_id": _annotator(annotation.get("completed_by"), where),
    }
    return common, where


def _timing(annotation: dict[str, Any], where: str) -> dict[str, Any]:
    """duration_ms from lead_time (seconds, cumulative; null when the client sent none)."""
    lead_time = annotation.get("lead_time")
    if lead_time is None:
        return {}
    if not isinstance(lead_time, int | float) or isinstance(lead_time, bool) or lead_time < 0:
        raise MalformedWebhook(f"{where}: lead_time must be seconds ≥ 0 or null, got {lead_time!r}")
    return {"duration_ms": min(round(lead_time * 1000), MAX_DURATION_MS)}


def label(result: Any, where: str) -> str | dict[str, Any]:
    """A single choice as its class name; anything else (regions, spans, several controls) as a structured label
    of what each result says, without where it is (GEOMETRY), in a canonical order."""
    if not isinstance(result, list):
        raise MalformedWebhook(f"{where}: result must be a list, got {result!r:.80}")
    if len(result) == 1 and isinstance(result[0], dict) and result[0].get("type") == "choices":
        choices = (result[0].get("value") or {}).get("choices")
        if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str) and choices[0]:
            return choices[0]
    regions = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value", {}), dict):
            raise MalformedWebhook(f"{where}: each result must be an object with a 'value' object, got {item!r:.80}")
        value = {name: part for name, part in item.get("value", {}).items() if name not in GEOMETRY}
        regions.append({"from_name": item.get("from_name"), "type": item.get("type"), "value": value})
    regions.sort(key=lambda region: json.dumps(region, sort_keys=True))
    return {"results": regions}


# ---------------------------------------------------------------- small readers


def _event(event_type: str, event_id: str, project_id: str, task_id: str = "") -> dict[str, Any]:
    return event_skeleton(SOURCE_SYSTEM, event_type, event_id, project_id, task_id)


def _event_id(project_id: str, kind: str, entity_id: str, version: str) -> str:
    return derived_id("ls", project_id, kind, entity_id, version)


def _annotator(completed_by: Any, where: str) -> str:
    # An integer user id in webhooks; an object in some exports.
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return str(completed_by)
    raise MalformedWebhook(f"{where}: completed_by must be a user id, got {completed_by!r:.80}")


def _dict(document: dict[str, Any], key: str) -> dict[str, Any]:
    return _as_dict(document.get(key), key)


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedWebhook(f"'{where}' must be an object, got {value!r:.80}")
    return value


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise MalformedWebhook(f"'{key}' must be a list, got {value!r:.80}")
    return value
