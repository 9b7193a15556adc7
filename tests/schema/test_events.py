"""Event contract v1: what is accepted, and the specific reason for everything that is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.events import (
    JSON_SCHEMA_PATH,
    ContractLimits,
    EventError,
    EventType,
    extra_fields,
    render_json_schema,
    validate_event,
    with_changes,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# A minimal valid event of every type.
VALID: dict[str, dict[str, Any]] = {
    "task_created": {},
    "task_assigned": {"annotator_id": "ann-1"},
    "annotation_started": {"annotator_id": "ann-1"},
    "annotation_submitted": {"annotator_id": "ann-1", "label": "cat"},
    "annotation_skipped": {"annotator_id": "ann-1"},
    "review_completed": {"annotator_id": "ann-1", "reviewer_id": "rev-1", "verdict": "accepted"},
    "task_completed": {},
    "annotation_updated": {"annotator_id": "ann-1"},  # v1.1
    "annotation_deleted": {},  # v1.1
}


def event(event_type: Any = "annotation_submitted", **fields: Any) -> dict[str, Any]:
    """A valid event of `event_type`, with `fields` replaced (`...` removes a field)."""
    document: dict[str, Any] = {
        "event_id": "7f3c0000-0000-4000-8000-000000000001",
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2026-11-23T11:59:00Z",
        "project_id": "proj-a",
        "task_id": "task-1",
        **VALID.get(event_type, VALID["annotation_submitted"]),
    }
    if document["event_type"] is ...:
        del document["event_type"]
    for name, value in fields.items():
        if value is ...:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def refused(raw: Any) -> EventError:
    result = validate_event(raw, now=NOW)
    assert isinstance(result, EventError), f"expected a refusal, got {result!r}"
    return result


@pytest.mark.parametrize("event_type", list(VALID))
def test_minimal_event_of_every_type_is_accepted(event_type: str) -> None:
    result = validate_event(event(event_type), now=NOW)
    assert not isinstance(result, EventError), result
    assert result.event_type == event_type


def test_every_contract_event_type_has_a_case() -> None:
    assert set(VALID) == {member.value for member in EventType}


def test_bytes_str_and_dict_inputs_are_judged_alike() -> None:
    document = event()
    results = [
        validate_event(form, now=NOW) for form in (document, json.dumps(document), json.dumps(document).encode())
    ]
    assert results[0] == results[1] == results[2]


def test_unknown_fields_are_kept() -> None:
    result = validate_event(event(tool_version="4.2", nested={"a": [1, 2]}), now=NOW)
    assert not isinstance(result, EventError)
    assert extra_fields(result) == {"tool_version": "4.2", "nested": {"a": [1, 2]}}


def test_unknown_fields_survive_a_changed_copy() -> None:
    result = validate_event(event(tool_version="4.2"), now=NOW)
    assert not isinstance(result, EventError)
    changed = with_changes(result, annotator_id="p-1")
    assert (changed.annotator_id, extra_fields(changed)) == ("p-1", {"tool_version": "4.2"})
    assert extra_fields(validate_event(event(), now=NOW)) == {}  # type: ignore[arg-type]


def test_events_with_unknown_fields_are_judged_like_any_other() -> None:
    """The typed decoder stops at an unknown field; what comes after it is still judged."""
    wrong_type = refused({"tool_version": "4.2", **event(task_id=42)})
    assert (wrong_type.rule, wrong_type.field, wrong_type.value) == ("wrong_type", "task_id", 42)
    required = refused(event("task_created", tool_version="4.2", is_gold=True))
    assert (required.rule, required.field) == ("missing_field", "gold_label")
    assert refused(json.dumps(event(tool_version="4.2"))[:-1] + ', "x": }').rule == "malformed_json"
    late = validate_event({"tool_version": "4.2", **event(occurred_at="2026-11-23T13:30:00+02:00")}, now=NOW)
    assert not isinstance(late, EventError)
    assert (late.occurred_at.tzinfo, extra_fields(late)) == (UTC, {"tool_version": "4.2"})


def test_structured_labels_are_accepted() -> None:
    result = validate_event(event(label={"boxes": [[0, 0, 10, 10]], "class": "car"}), now=NOW)
    assert not isinstance(result, EventError)


def test_a_v1_0_event_is_a_valid_v1_1_event_without_the_new_fields() -> None:
    result = validate_event(event(), now=NOW)
    assert not isinstance(result, EventError)
    assert (result.schema_version, result.source_system, result.annotation_id) == (1, None, None)


def test_edits_and_deletions_name_the_annotation_and_the_sending_system() -> None:
    document = event("annotation_updated", annotation_id="ls-17", source_system="label-studio", label="dog")
    result = validate_event(document, now=NOW)
    assert not isinstance(result, EventError), result
    assert (result.event_type, result.annotation_id, result.source_system) == (
        "annotation_updated",
        "ls-17",
        "label-studio",
    )


def test_submission_source_defaults_to_manual() -> None:
    result = validate_event(event(), now=NOW)
    assert not isinstance(result, EventError)
    assert result.source == "manual"


@pytest.mark.parametrize(
    ("raw", "rule", "field", "message_part"),
    [
        (b"{not json", "malformed_json", None, "not valid JSON"),
        # The typed decoder stops at the missing gold answer; the broken end still makes it malformed.
        (json.dumps(event("task_created", is_gold=True)).encode() + b" trailing", "malformed_json", None, "not valid"),
        (b"\xff\xfe\x00", "malformed_json", None, "not valid JSON"),
        (b"", "malformed_json", None, "not valid JSON"),
        (b"[1, 2]", "not_an_object", None, "JSON object"),
        (b'"task_created"', "not_an_object", None, "JSON object"),
        (b"null", "not_an_object", None, "JSON object"),
        (event(event_type=...), "missing_field", "event_type", "event_type is required"),
        (event(event_type="annotation_erased"), "unknown_event_type", "event_type", "'annotation_erased'"),
        (event("annotation_updated", annotator_id=...), "missing_field", "annotator_id", "annotator_id is required"),
        (event(source_system="Label Studio"), "invalid_value", "source_system", "lower-case name"),
        (event(source_system="x" * 65), "invalid_value", "source_system", "at most 64 characters"),
        (event(annotation_id=""), "invalid_value", "annotation_id", "at least 1 character"),
        (event(event_type=7), "unknown_event_type", "event_type", "unknown event_type"),
        (event(event_id=...), "missing_field", "event_id", "event_id is required for annotation_submitted"),
        (event(project_id=...), "missing_field", "project_id", "project_id is required"),
        (event(label=...), "missing_field", "label", "label is required for annotation_submitted"),
        (event(annotator_id=...), "missing_field", "annotator_id", "annotator_id is required"),
        (event("review_completed", verdict=...), "missing_field", "verdict", "verdict is required"),
        (event("task_assigned", stage="review"), "missing_field", "reviewer_id", "when stage is review"),
        (event("task_created", is_gold=True), "missing_field", "gold_label", "when is_gold is true"),
        (event(project_id=""), "invalid_value", "project_id", "must be at least 1 character long, got ''"),
        (event(project_id=None), "wrong_type", "project_id", "project_id must be a string, got None"),
        (event(task_id=42), "wrong_type", "task_id", "must be a string, got 42"),
        (event(duration_ms="1200"), "wrong_type", "duration_ms", "must be an integer or null, got '1200'"),
        (event(duration_ms=1.5), "wrong_type", "duration_ms", "an integer"),
        (event(duration_ms=-5), "out_of_range", "duration_ms", "duration_ms must be ≥ 0, got -5"),
        (event(duration_ms=90_000_000), "out_of_range", "duration_ms", "≤ 86400000"),
        (event(model_confidence=1.5), "out_of_range", "model_confidence", "≤ 1"),
        (event(is_gold="yes"), "wrong_type", "is_gold", "must be a boolean or null"),
        (event("review_completed", verdict="meh"), "invalid_value", "verdict", "'accepted', 'fixed' or 'rejected'"),
        (event(source="crowd"), "invalid_value", "source", "'manual'"),
        (event(schema_version=2), "unsupported_schema_version", "schema_version", "speaks 1"),
        (event(schema_version="1"), "unsupported_schema_version", "schema_version", "not supported"),
        (event(occurred_at="2026-11-23T11:59:00"), "invalid_value", "occurred_at", "timezone"),
        (event(occurred_at="yesterday"), "invalid_value", "occurred_at", "valid datetime"),
        (event(occurred_at=1763899140), "wrong_type", "occurred_at", "an RFC 3339 datetime string, got 1763899140"),
        (event(task_id="t" * 257), "invalid_value", "task_id", "at most 256 characters long"),
        (event(label=["cat"]), "wrong_type", "label", "label must be a string or an object, got ['cat']"),
        (event(label=""), "invalid_value", "label", "at least 1 character"),
        (event("task_assigned", annotator_id=...), "missing_field", "annotator_id", "when stage is annotate"),
        (event(occurred_at="2026-11-23T14:00:00Z"), "future_timestamp", "occurred_at", "check the producer clock"),
        (event(occurred_at="1970-01-01T00:00:00Z"), "ancient_timestamp", "occurred_at", "more than 366 days old"),
    ],
)
def test_malformed_events_are_refused_with_a_specific_reason(
    raw: Any, rule: str, field: str | None, message_part: str
) -> None:
    error = refused(raw)
    assert (error.rule, error.field) == (rule, field), error
    assert message_part in error.message
    assert error.reason.startswith(f"{rule}: ")


NESTED = "[" * 10_000 + "]" * 10_000  # 20 kB, deeper than any decoder's recursion allows


@pytest.mark.parametrize(
    "raw",
    [
        NESTED,
        json.dumps(event())[:-1] + f', "attachment": {NESTED}}}',  # inside a field the contract does not know
        json.dumps(event())[:-1] + ', "label": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}",
        json.dumps(event(label={"a": json.loads("[" * 35 + '"x"' + "]" * 35)})),
    ],
    ids=["top-level", "unknown-field", "label-5000", "label-35"],
)
def test_deeply_nested_json_is_refused_not_raised(raw: str) -> None:
    error = refused(raw.encode())
    assert error.rule == "too_deep", error
    assert "nested more than 32 levels" in error.message


def test_nesting_up_to_the_limit_is_accepted() -> None:
    label: Any = "x"
    for _ in range(31):  # 31 containers inside the label object: 32 levels with it
        label = [label]
    assert not isinstance(validate_event(event(label={"a": label}), now=NOW), EventError)


@pytest.mark.parametrize("field", ["event_id", "project_id", "task_id", "annotator_id", "reviewer_id", "session_id"])
@pytest.mark.parametrize("character", [r"\u0000", r"\n", r"\u001b", r"\u007f", r"\u0085", r"\u2028", r"\u200b"])
def test_identifiers_with_unprintable_characters_are_refused(field: str, character: str) -> None:
    document = event("review_completed", session_id="s-1")
    raw = json.dumps(document).replace(f'"{field}": "', f'"{field}": "a{character}', 1)
    error = refused(raw.encode())
    assert (error.rule, error.field) == ("unprintable_characters", field), error
    assert "printable" in error.message


@pytest.mark.parametrize("character", ["\x7f", "\u0085", "\u2028", "\u200b", "\ufeff"])
def test_unprintable_characters_sent_raw_rather_than_escaped_are_refused_too(character: str) -> None:
    raw = json.dumps(event(annotator_id=f"a{character}"), ensure_ascii=False).encode()
    assert character.encode() in raw
    assert refused(raw).rule == "unprintable_characters"


def test_identifiers_may_hold_any_printable_text() -> None:
    result = validate_event(event(project_id="Ñandú 🐦 proj #7", annotator_id="アノテーター"), now=NOW)
    assert not isinstance(result, EventError), result


def test_a_message_over_the_size_limit_is_refused_before_it_is_decoded() -> None:
    big = json.dumps(event(note="x" * 2_000_000)).encode()
    error = refused(big)
    assert error.rule == "too_large"
    assert "2,000" in error.message and "1,048,576" in error.message
    assert not isinstance(validate_event(big, now=NOW, limits=ContractLimits(max_event_bytes=4 << 20)), EventError)


def test_refusal_carries_the_event_id_when_it_can_be_read() -> None:
    assert refused(event(duration_ms=-1)).event_id == "7f3c0000-0000-4000-8000-000000000001"
    assert refused(b"{broken").event_id is None


def test_refusal_carries_the_offending_value() -> None:
    assert refused(event(duration_ms=-5)).value == -5
    assert refused(event(event_type="nope")).value == "nope"


def test_clock_limits_are_configurable() -> None:
    strict = ContractLimits(max_future=timedelta(seconds=1), max_age=timedelta(minutes=5))
    ten_minutes_old = event(occurred_at=(NOW - timedelta(minutes=10)).isoformat())
    assert isinstance(validate_event(ten_minutes_old, now=NOW, limits=strict), EventError)
    assert not isinstance(validate_event(ten_minutes_old, now=NOW), EventError)


def test_offsets_other_than_utc_are_accepted_and_compared_correctly() -> None:
    # 13:30+02:00 is 11:30 UTC: in the past, so fine.
    result = validate_event(event(occurred_at="2026-11-23T13:30:00+02:00"), now=NOW)
    assert not isinstance(result, EventError)
    assert result.occurred_at == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert result.occurred_at.tzinfo is UTC  # the stdlib's: the worker's time arithmetic stays in C


def test_published_json_schema_is_current() -> None:
    assert JSON_SCHEMA_PATH.read_text(encoding="utf-8") == render_json_schema(), (
        "schema/contract is stale: run `labelpulse contract --write`"
    )


def test_published_json_schema_names_every_event_type() -> None:
    document = json.loads(JSON_SCHEMA_PATH.read_text(encoding="utf-8"))
    tags = set(document["discriminator"]["mapping"])
    assert tags == {member.value for member in EventType}


# -- properties -------------------------------------------------------------------------------

# Printable text: identifiers with control or other unprintable characters are refused (tested above).
identifiers = st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=40)
labels = st.one_of(st.text(min_size=1, max_size=30), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(list(VALID)))
    document = event(event_type)
    document["event_id"] = draw(identifiers)
    document["project_id"] = draw(identifiers)
    document["task_id"] = draw(identifiers)
    offset = draw(st.integers(min_value=-365 * 24 * 3600, max_value=600))
    document["occurred_at"] = (NOW + timedelta(seconds=offset)).isoformat()
    if event_type in ("annotation_submitted", "annotation_skipped", "review_completed"):
        document["duration_ms"] = draw(st.integers(min_value=0, max_value=86_400_000))
    if event_type == "annotation_submitted":
        document["label"] = draw(labels)
    return document


@given(valid_events())
@settings(max_examples=300)
def test_any_valid_event_is_accepted_with_its_values(document: dict[str, Any]) -> None:
    result = validate_event(document, now=NOW)
    assert not isinstance(result, EventError), result
    assert (result.event_id, result.project_id, result.task_id) == (
        document["event_id"],
        document["project_id"],
        document["task_id"],
    )


@given(valid_events(), st.data())
@settings(max_examples=300)
def test_dropping_any_required_field_is_refused_naming_that_field(
    document: dict[str, Any], data: st.DataObject
) -> None:
    required = ["event_id", "schema_version", "occurred_at", "project_id", "task_id"]
    field = data.draw(st.sampled_from(required))
    del document[field]
    error = refused(document)
    assert (error.rule, error.field) == ("missing_field", field)


@given(valid_events(), st.data())
@settings(max_examples=300)
def test_a_wrong_type_in_any_field_is_refused_naming_that_field(document: dict[str, Any], data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(["event_id", "project_id", "task_id", "occurred_at"]))
    document[field] = data.draw(st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))
    error = refused(document)
    assert error.field == field


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = validate_event(raw, now=NOW)
    assert isinstance(result, EventError) or result.event_type in VALID


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda children: st.lists(children)))
def test_arbitrary_json_values_never_raise(value: Any) -> None:
    assert isinstance(validate_event(json.dumps(value), now=NOW), EventError)
