"""Label Studio webhooks as contract events: the mapping, on the deliveries a real Label Studio 1.23.2 sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.label_studio import UNKNOWN_TASK, MalformedWebhook, label, map_delivery, map_export, redacted
from schema.events import EventError, validate_event

CAPTURES = Path(__file__).parent / "fixtures" / "label_studio"
RECEIVED = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # shortly after the captures were made


def capture(name: str) -> bytes:
    (path,) = CAPTURES.glob(f"{name}-*.body")
    return path.read_bytes()


def mapped(name: str) -> list[dict[str, Any]]:
    return map_delivery(capture(name), received_at=RECEIVED).events


# What each real delivery becomes: (event_type, task_id, annotator_id) per event.
EXPECTED = {
    "002": [("task_created", t, None) for t in ("1", "2", "3", "4")],
    "004": [("annotation_submitted", "1", "2")],
    "008": [("annotation_skipped", "2", "3")],  # was_cancelled
    "010": [("task_created", "4", None)],  # ground truth: the task's gold label, nobody's work
    "012": [("annotation_submitted", "3", "1")],  # lead_time null
    "013": [("annotation_updated", "1", "4")],
    "014": [("annotation_updated", "2", "2"), ("task_created", "2", None)],  # made ground truth by an edit
    "015": [("annotation_deleted", UNKNOWN_TASK, None)],
    "017": [("annotation_submitted", "5", "3")],
    "025": [("annotation_submitted", "7", "1"), ("annotation_submitted", "8", "1")],  # ANNOTATIONS_CREATED
    "026": [("annotation_deleted", UNKNOWN_TASK, None)] * 2,
}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_each_real_delivery_maps_to_the_contract_events_it_stands_for(name: str, expected: list[Any]) -> None:
    events = mapped(name)
    assert [(e["event_type"], e["task_id"], e.get("annotator_id")) for e in events] == expected
    for event in events:
        result = validate_event(json.dumps(event), now=RECEIVED)
        assert not isinstance(result, EventError), result
        assert result.source_system == "label-studio"


@pytest.mark.parametrize("name", ["001", "016", "018", "024", "027"])
def test_project_updates_and_task_deletions_are_known_and_ignored(name: str) -> None:
    delivery = map_delivery(capture(name), received_at=RECEIVED)
    assert (delivery.events, bool(delivery.ignored)) == ([], True)
    assert "no event in the contract" in delivery.ignored


def test_an_unknown_action_is_ignored_not_refused() -> None:
    delivery = map_delivery(b'{"action": "REVIEW_CREATED", "review": {}}', received_at=RECEIVED)
    assert (delivery.action, delivery.events, delivery.ignored) == (
        "REVIEW_CREATED",
        [],
        "unknown action 'REVIEW_CREATED'",
    )


def test_fields_map_as_the_readme_table_says() -> None:
    (submitted,) = mapped("004")
    assert submitted | {"event_id": "?"} == {
        "event_id": "?",
        "event_type": "annotation_submitted",
        "schema_version": 1,
        "project_id": "1",
        "task_id": "1",
        "source_system": "label-studio",
        "annotation_id": "1",
        "annotator_id": "2",
        "occurred_at": "2026-11-30T14:25:14.157280+00:00",
        "label": "Positive",
        "source": "manual",
        "duration_ms": 12_500,  # lead_time 12.5 s
    }
    (skipped,) = mapped("008")
    assert (skipped["duration_ms"], "label" in skipped) == (2000, False)
    (gold,) = mapped("010")
    assert (gold["is_gold"], gold["gold_label"], "annotator_id" in gold) == (True, "Neutral", False)


def test_a_prediction_the_annotator_started_from_makes_it_model_assisted() -> None:
    (assisted,) = mapped("017")
    assert (assisted["source"], assisted["model_label"], assisted["model_confidence"]) == (
        "model_assisted",
        "Positive",
        0.87,
    )
    bulk = mapped("025")  # the Data Manager's predictions -> annotations: parent_prediction, no prediction body
    assert {event["source"] for event in bulk} == {"model_assisted"}


def test_regions_and_spans_become_a_structured_label_of_what_not_where() -> None:
    first, second = mapped("022")[0]["label"], mapped("023")[0]["label"]
    kinds = {region["type"] for region in first["results"]}
    assert kinds >= {"rectanglelabels", "polygonlabels", "labels", "rating", "choices", "textarea"}
    for region in first["results"]:
        assert not {"x", "y", "width", "height", "points", "start", "end"} & set(region["value"])
    assert first["results"][0] == {"from_name": "box", "type": "rectanglelabels", "value": {"rectanglelabels": ["Car"]}}
    assert isinstance(second, dict)


def test_the_same_fact_gets_the_same_event_id_and_another_fact_another() -> None:
    assert mapped("013") == mapped("013")  # a delivery sent again: duplicates the workers drop
    ids = [event["event_id"] for name in EXPECTED for event in mapped(name)]
    assert len(ids) == len(set(ids))
    edits = [mapped(name)[0]["event_id"] for name in ("019", "020")]  # two edits of one annotation
    assert edits[0] != edits[1]


def test_an_edit_does_not_claim_the_cumulative_lead_time_as_its_duration() -> None:
    (edit,) = mapped("013")
    assert "duration_ms" not in edit
    assert edit["lead_time_s"] == 41.0  # kept as an unknown field


def test_a_deletion_without_a_time_happens_when_it_arrives() -> None:
    (deleted,) = mapped("015")
    assert (deleted["annotation_id"], deleted["occurred_at"]) == ("9", RECEIVED.isoformat())


def test_a_single_choice_is_its_class_name_and_several_are_structured() -> None:
    choice = {"type": "choices", "from_name": "c", "value": {"choices": ["cat"]}}
    assert label([choice], "here") == "cat"
    both = {**choice, "value": {"choices": ["cat", "dog"]}}
    assert label([both], "here") == {
        "results": [{"from_name": "c", "type": "choices", "value": {"choices": ["cat", "dog"]}}]
    }
    assert label([], "here") == {"results": []}


def annotation_created(**changes: Any) -> bytes:
    document = json.loads(capture("004"))
    for key, value in changes.items():
        if value is ...:
            document["annotation"].pop(key)
        else:
            document["annotation"][key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"annotation": {}}', "no 'action'"),
        (b'{"action": "ANNOTATION_CREATED"}', "'annotation' must be an object"),
        (b'{"action": "TASKS_CREATED", "tasks": "all"}', "'tasks' must be a list"),
        (b'{"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}]}', "without 'project'"),
        (annotation_created(id="1"), "'id' must be an integer id"),
        (annotation_created(task=...), "annotation 1: 'task' must be an integer id"),
        (annotation_created(created_at="yesterday"), "'created_at' must be an ISO 8601 time"),
        (annotation_created(created_at="2026-11-30T14:25:14"), "with a zone"),
        (annotation_created(completed_by="alice"), "completed_by must be a user id"),
        (annotation_created(result="Positive"), "result must be a list"),
        (annotation_created(result=["Positive"]), "each result must be an object"),
        (annotation_created(lead_time=-3), "lead_time must be seconds ≥ 0"),
    ],
)
def test_a_malformed_delivery_is_refused_saying_what_and_where(body: bytes, message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message.replace("(", r"\(")):
        map_delivery(body, received_at=RECEIVED)


def test_the_project_secrets_are_blanked_before_a_delivery_is_kept() -> None:
    body = capture("004")
    assert json.loads(body)["project"]["token"]
    kept = json.loads(redacted(body))
    assert kept["project"]["token"] == "(redacted)"
    assert kept["annotation"] == json.loads(body)["annotation"]
    assert redacted(b"{not json") == b"{not json"


EXPORTS = CAPTURES / "exports"


def live_event_ids() -> set[str]:
    return {
        e["event_id"]
        for path in CAPTURES.glob("*.body")
        for e in map_delivery(path.read_bytes(), received_at=RECEIVED).events
    }


@pytest.mark.parametrize("export", sorted(path.name for path in EXPORTS.glob("*.json")))
def test_an_export_maps_to_the_event_ids_the_webhooks_gave_the_same_facts(export: str) -> None:
    events = map_export(json.loads((EXPORTS / export).read_text()))
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids))
    assert set(ids) <= live_event_ids()  # a backfill over live history stores nothing twice
    for event in events:
        assert not isinstance(validate_event(json.dumps(event), now=RECEIVED), EventError)


def test_an_export_holds_creations_and_last_edits_and_reads_completed_by_as_an_object_too() -> None:
    # Exported by the `label-studio export` command at the end: completed_by objects, annotation 1 edited twice.
    events = map_export(json.loads((EXPORTS / "project1-cli-export-completed_by-object.json").read_text()))
    types = [e["event_type"] for e in events]
    assert (types.count("task_created"), types.count("annotation_submitted"), types.count("annotation_updated")) == (
        4 + 2,  # four tasks, and the gold labels of two
        6,
        3,  # the last edits of annotations 1 (edited twice), 3, and 4 (made ground truth)
    )
    assert {e["annotator_id"] for e in events if "annotator_id" in e} == {"2", "3", "4"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"tasks": []}, "JSON array of tasks"),
        ([{"id": 1, "annotations": []}], "'project' must be an integer id"),
        ([{"id": 1, "project": 1, "created_at": "2026-11-30T14:25:13Z"}], "'annotations' must be a list"),
    ],
)
def test_a_file_that_is_not_a_json_export_is_refused_saying_why(document: Any, message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        map_export(document)
