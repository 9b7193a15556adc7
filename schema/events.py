"""Event contract v1: what a labeling tool may send, and the one function that judges it.

Every event is one JSON object. `validate_event` returns either a typed event or an
`EventError` that names the field, the offending value and the rule it broke — never raises
for bad input, so one broken producer can never stop the stream.

The same pydantic models generate the published JSON Schema (`schema/contract/`), so the
document producers code against and the validator the workers run cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
JSON_SCHEMA_PATH = Path(__file__).parent / "contract" / f"events.v{SCHEMA_VERSION}.schema.json"


class EventType(StrEnum):
    TASK_CREATED = "task_created"
    TASK_ASSIGNED = "task_assigned"
    ANNOTATION_STARTED = "annotation_started"
    ANNOTATION_SUBMITTED = "annotation_submitted"
    ANNOTATION_SKIPPED = "annotation_skipped"
    REVIEW_COMPLETED = "review_completed"
    TASK_COMPLETED = "task_completed"


class Stage(StrEnum):
    ANNOTATE = "annotate"
    REVIEW = "review"


class Source(StrEnum):
    MANUAL = "manual"
    MODEL_ASSISTED = "model_assisted"
    IMPORTED = "imported"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    FIXED = "fixed"
    REJECTED = "rejected"


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# A label is a class name, or a structured payload (boxes, spans, ...) for richer tasks.
Label = Annotated[str, StringConstraints(min_length=1, max_length=1024)] | dict[str, Any]
# More than a day of active time on one item means a broken tool clock, not a slow annotator.
DurationMs = Annotated[int, Field(ge=0, le=86_400_000)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]


def _in_utc(moment: datetime) -> datetime:
    """The same instant in the stdlib's UTC: with pydantic's own tzinfo every comparison and
    subtraction calls back into Python (~1.5 µs each, several per event in the worker)."""
    return moment.astimezone(UTC)


class _Event(BaseModel):
    """Fields every event has, and the optional ones any event may carry where they apply."""

    # strict: a number sent as a string is a producer bug we report, not guess around.
    # extra="allow": unknown fields are kept (stored as JSON), so producers can move ahead of us.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    event_id: Identifier
    schema_version: Literal[1]
    occurred_at: Annotated[AwareDatetime, AfterValidator(_in_utc)] = Field(
        description="Producer clock, ISO 8601 with a UTC offset."
    )
    project_id: Identifier
    task_id: Identifier

    annotator_id: Identifier | None = Field(default=None, description="Pseudonymous annotator id.")
    reviewer_id: Identifier | None = None
    session_id: Identifier | None = None
    stage: Stage | None = None
    source: Source | None = None
    label: Label | None = None
    duration_ms: DurationMs | None = Field(default=None, description="Active time the tool measured.")
    is_gold: bool | None = None
    gold_label: Label | None = None
    verdict: Verdict | None = None
    reason: Annotated[str, StringConstraints(max_length=1024)] | None = None
    model_label: Label | None = None
    model_confidence: Confidence | None = None


def _required_because(field: str, condition: str) -> PydanticCustomError:
    return PydanticCustomError(
        "required_when", "{field} is required when {condition}", {"field": field, "condition": condition}
    )


class TaskCreated(_Event):
    event_type: Literal["task_created"]

    @model_validator(mode="after")
    def _gold_needs_answer(self) -> TaskCreated:
        if self.is_gold and self.gold_label is None:
            raise _required_because("gold_label", "is_gold is true")
        return self


class TaskAssigned(_Event):
    event_type: Literal["task_assigned"]
    stage: Stage = Stage.ANNOTATE

    @model_validator(mode="after")
    def _assignee_matches_stage(self) -> TaskAssigned:
        if self.stage is Stage.ANNOTATE and self.annotator_id is None:
            raise _required_because("annotator_id", "stage is annotate")
        if self.stage is Stage.REVIEW and self.reviewer_id is None:
            raise _required_because("reviewer_id", "stage is review")
        return self


class AnnotationStarted(_Event):
    event_type: Literal["annotation_started"]
    annotator_id: Identifier


class AnnotationSubmitted(_Event):
    event_type: Literal["annotation_submitted"]
    annotator_id: Identifier
    label: Label
    source: Source = Source.MANUAL


class AnnotationSkipped(_Event):
    event_type: Literal["annotation_skipped"]
    annotator_id: Identifier


class ReviewCompleted(_Event):
    event_type: Literal["review_completed"]
    reviewer_id: Identifier
    annotator_id: Identifier = Field(description="Whose annotation was reviewed.")
    verdict: Verdict


class TaskCompleted(_Event):
    event_type: Literal["task_completed"]


Event = Annotated[
    TaskCreated
    | TaskAssigned
    | AnnotationStarted
    | AnnotationSubmitted
    | AnnotationSkipped
    | ReviewCompleted
    | TaskCompleted,
    Field(discriminator="event_type"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass(frozen=True)
class ContractLimits:
    """How far `occurred_at` may sit from the receiver's clock before the event is refused.

    Producers' clocks drift by seconds or minutes; hours in the future or years in the past
    mean a broken clock or a unit mistake (seconds read as milliseconds), and such events
    would poison time-bucketed rollups.
    """

    max_future: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=366)


@dataclass(frozen=True)
class EventError:
    """Why an event was refused. `rule` is stable and machine-readable (it labels metrics and
    dead letters); `message` is for people."""

    rule: str
    field: str | None
    value: Any
    message: str
    event_id: str | None = None

    @property
    def reason(self) -> str:
        return f"{self.rule}: {self.message}"


def validate_event(
    raw: bytes | str | dict[str, Any],
    *,
    now: datetime | None = None,
    limits: ContractLimits = ContractLimits(),
) -> Event | EventError:
    """Judge one event. Returns the typed event, or an EventError naming field, value and rule.

    Never raises on bad input: malformed JSON, a non-object, missing fields, wrong types,
    unknown event types, out-of-range values and implausible timestamps all become errors.
    """
    payload = json.dumps(raw) if isinstance(raw, dict) else raw
    try:
        event = _EVENT_ADAPTER.validate_json(payload)
    except ValidationError as exc:
        return _explain(exc, payload)
    return _check_clock(event, now or datetime.now(UTC), limits)


def _check_clock(event: Event, now: datetime, limits: ContractLimits) -> Event | EventError:
    occurred = event.occurred_at
    if occurred > now + limits.max_future:
        return EventError(
            "future_timestamp",
            "occurred_at",
            occurred.isoformat(),
            f"occurred_at {occurred.isoformat()} is more than {limits.max_future} ahead of the "
            f"receiver clock {now.isoformat(timespec='seconds')}; check the producer clock",
            event.event_id,
        )
    if occurred < now - limits.max_age:
        return EventError(
            "ancient_timestamp",
            "occurred_at",
            occurred.isoformat(),
            f"occurred_at {occurred.isoformat()} is more than {limits.max_age.days} days old; "
            "check the producer clock and the timestamp unit",
            event.event_id,
        )
    return event


# pydantic error types grouped into the rules we report.
_RULES = {
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "union_tag_invalid": "unknown_event_type",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "invalid_value",
    "string_too_long": "invalid_value",
    "timezone_aware": "invalid_value",
    "datetime_parsing": "invalid_value",
    "datetime_from_date_parsing": "invalid_value",
    "required_when": "missing_field",
    "json_invalid": "malformed_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
}


def _explain(exc: ValidationError, payload: bytes | str) -> EventError:
    error = exc.errors(include_url=False)[0]
    kind = error["type"]
    context = error.get("ctx") or {}
    loc = [str(part) for part in error["loc"]]
    event_type = loc.pop(0) if loc and loc[0] in EventType.__members__.values() else None
    field = context.get("field") or (".".join(loc) if loc else None)
    value = error.get("input")
    rule = _RULES.get(kind, "wrong_type")
    event_id = _event_id_of(payload)

    def refuse(rule: str, message: str, field: str | None = field, value: Any = value) -> EventError:
        return EventError(rule, field, value, message, event_id)

    if rule == "malformed_json":
        return refuse(rule, f"not valid JSON: {error['msg']}", None, _preview(payload))
    if kind == "union_tag_not_found":
        return refuse(rule, "event_type is required", "event_type", None)
    if rule == "unknown_event_type":
        tag = context.get("tag")
        return refuse(
            rule,
            f"unknown event_type {tag!r}; known types: {', '.join(EventType)}",
            "event_type",
            tag,
        )
    if field is None:
        return refuse("not_an_object", "an event must be a JSON object", None, _preview(payload))
    where = f" for {event_type}" if event_type else ""
    if kind == "required_when":
        return refuse(rule, f"{field} is required{where} when {context['condition']}", value=None)
    if rule == "missing_field":
        return refuse(rule, f"{field} is required{where}", value=None)
    if field == "schema_version" and rule == "invalid_value":
        return refuse(
            "unsupported_schema_version",
            f"schema_version {value!r} is not supported; this receiver speaks {SCHEMA_VERSION}",
        )
    if kind == "greater_than_equal":
        return refuse(rule, f"{field} must be ≥ {context['ge']}, got {value!r}")
    if kind == "less_than_equal":
        return refuse(rule, f"{field} must be ≤ {context['le']}, got {value!r}")
    return refuse(rule, f"{field}: {error['msg']}, got {value!r}")


def _event_id_of(payload: bytes | str) -> str | None:
    """Best effort: the event_id of a refused event, so its dead letter can be traced."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    event_id = document.get("event_id") if isinstance(document, dict) else None
    return event_id if isinstance(event_id, str) else None


def _preview(payload: bytes | str, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return text if len(text) <= limit else text[:limit] + "…"


def extra_fields(event: Event) -> dict[str, Any]:
    """Fields the producer sent that the contract does not know; kept, never dropped."""
    return dict(event.model_extra or {})


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of contract v1, generated from the models above."""
    document = _EVENT_ADAPTER.json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["$id"] = f"https://labelpulse.dev/schema/events.v{SCHEMA_VERSION}.schema.json"
    document["title"] = f"LabelPulse event, contract v{SCHEMA_VERSION}"
    document["description"] = (
        "One labeling event, sent as one JSON object per Kafka message keyed by task_id. "
        "Unknown fields are kept. Receivers also refuse occurred_at more than 15 minutes in "
        "the future or more than 366 days in the past (configurable)."
    )
    return document


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
