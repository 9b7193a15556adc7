"""Event contract v1.1: what a labeling tool may send, and the one function that judges it.

v1.1 adds to v1 without changing it (every v1 event is a valid v1.1 event, and `schema_version`
stays 1): the types `annotation_updated` and `annotation_deleted`, and the optional fields
`source_system` (which tool or producer sent the event) and `annotation_id` (the tool's id of
the annotation an edit or a deletion is about).

Every event is one JSON object. `validate_event` returns either a typed event or an
`EventError` that names the field, the offending value and the rule it broke — never raises
for bad input, so one broken producer can never stop the stream.

The same msgspec structs generate the published JSON Schema (`schema/contract/`), so the
document producers code against and the validator the workers run cannot drift apart. msgspec
decodes an event straight from Kafka's bytes into its struct in well under a microsecond
(pydantic, which this replaced, took ~4 µs: a fifth of a worker's time went to validation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1  # the major version: what `schema_version` says; minor versions only add
CONTRACT_VERSION = "1.1"
JSON_SCHEMA_PATH = Path(__file__).parent / "contract" / f"events.v{SCHEMA_VERSION}.schema.json"


class EventType(StrEnum):
    TASK_CREATED = "task_created"
    TASK_ASSIGNED = "task_assigned"
    ANNOTATION_STARTED = "annotation_started"
    ANNOTATION_SUBMITTED = "annotation_submitted"
    ANNOTATION_SKIPPED = "annotation_skipped"
    REVIEW_COMPLETED = "review_completed"
    TASK_COMPLETED = "task_completed"
    ANNOTATION_UPDATED = "annotation_updated"
    ANNOTATION_DELETED = "annotation_deleted"


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


Identifier = Annotated[str, Meta(min_length=1, max_length=256)]
# A label is a class name, or a structured payload (boxes, spans, ...) for richer tasks.
Label = Annotated[str, Meta(min_length=1, max_length=1024)] | dict[str, Any]
# More than a day of active time on one item means a broken tool clock, not a slow annotator.
MAX_DURATION_MS = 86_400_000
DurationMs = Annotated[int, Meta(ge=0, le=MAX_DURATION_MS, description="Active time the tool measured.")]
Confidence = Annotated[float, Meta(ge=0.0, le=1.0)]
PersonId = Annotated[Identifier, Meta(description="Pseudonymous person id.")]
# Few distinct values (it labels metrics): lower-case names such as label-studio, cvat, labelbox, api.
SOURCE_SYSTEM_PATTERN = "^[a-z0-9][a-z0-9._-]{0,63}$"
SourceSystem = Annotated[
    str,
    Meta(
        pattern=SOURCE_SYSTEM_PATTERN,
        description="Which tool or producer sent the event: label-studio, cvat, labelbox, api, simulator, ...",
    ),
]


class RequiredWhen(Exception):
    """A field the event's other fields make necessary is missing. Not a ValueError, so msgspec
    lets it through as it is, field and condition intact, instead of flattening it to a message."""

    def __init__(self, field: str, condition: str) -> None:
        super().__init__(f"{field} is required when {condition}")
        self.field = field
        self.condition = condition


# frozen: an event is a fact. dict=True: the instance can carry the fields a producer sent that
# the contract does not know (`extra_fields`): kept and stored, so producers can move ahead of us.
# forbid_unknown_fields: the typed decoder stops at such a field, and `validate_event` takes the
# path that keeps them; an event without any (nearly all) is decoded once.
# JSON decoding is strict: a number sent as a string is a producer bug we report, not guess around.
class _Event(Struct, frozen=True, kw_only=True, dict=True, forbid_unknown_fields=True, tag_field="event_type"):
    """Fields every event has, and the optional ones any event may carry where they apply."""

    event_type: ClassVar[EventType]  # the struct's tag, set for every type below

    event_id: Identifier
    schema_version: Literal[1]
    occurred_at: Annotated[
        datetime,
        Meta(
            tz=True,
            description="Producer clock, RFC 3339 (ISO 8601) with a UTC offset.",
            extra_json_schema={"format": "date-time"},
        ),
    ]
    project_id: Identifier
    task_id: Identifier

    annotator_id: PersonId | None = None
    reviewer_id: PersonId | None = None
    session_id: Identifier | None = None
    stage: Stage | None = None
    source: Source | None = None
    label: Label | None = None
    duration_ms: DurationMs | None = None
    is_gold: bool | None = None
    gold_label: Label | None = None
    verdict: Verdict | None = None
    reason: Annotated[str, Meta(max_length=1024)] | None = None
    model_label: Label | None = None
    model_confidence: Confidence | None = None
    source_system: SourceSystem | None = None  # v1.1
    annotation_id: Annotated[Identifier, Meta(description="The tool's id of the annotation.")] | None = None  # v1.1


class TaskCreated(_Event, tag="task_created", frozen=True, kw_only=True):
    """A task exists; a gold (honeypot) task carries its known answer."""

    def __post_init__(self) -> None:
        if self.is_gold and self.gold_label is None:
            raise RequiredWhen("gold_label", "is_gold is true")


class TaskAssigned(_Event, tag="task_assigned", frozen=True, kw_only=True):
    """A task was given to an annotator (stage annotate) or a reviewer (stage review)."""

    stage: Stage = Stage.ANNOTATE

    def __post_init__(self) -> None:
        if self.stage is Stage.ANNOTATE and self.annotator_id is None:
            raise RequiredWhen("annotator_id", "stage is annotate")
        if self.stage is Stage.REVIEW and self.reviewer_id is None:
            raise RequiredWhen("reviewer_id", "stage is review")


class AnnotationStarted(_Event, tag="annotation_started", frozen=True, kw_only=True):
    """An annotator opened the task."""

    annotator_id: PersonId


class AnnotationSubmitted(_Event, tag="annotation_submitted", frozen=True, kw_only=True):
    """An annotator submitted a label."""

    annotator_id: PersonId
    label: Label
    source: Source = Source.MANUAL


class AnnotationSkipped(_Event, tag="annotation_skipped", frozen=True, kw_only=True):
    """An annotator skipped the task."""

    annotator_id: PersonId


class ReviewCompleted(_Event, tag="review_completed", frozen=True, kw_only=True):
    """A reviewer judged an annotator's work."""

    reviewer_id: PersonId
    annotator_id: Annotated[Identifier, Meta(description="Whose annotation was reviewed.")]
    verdict: Verdict


class TaskCompleted(_Event, tag="task_completed", frozen=True, kw_only=True):
    """The task needs no more work."""


class AnnotationUpdated(_Event, tag="annotation_updated", frozen=True, kw_only=True):
    """An annotation submitted before was edited (v1.1). Rework: the submission it edits stays
    counted; `label` is the new answer when the edit changed it, `duration_ms` the time the edit took."""

    annotator_id: Annotated[Identifier, Meta(description="Whose annotation was edited.")]


class AnnotationDeleted(_Event, tag="annotation_deleted", frozen=True, kw_only=True):
    """An annotation was deleted in the tool (v1.1). The work it took stays counted."""


Event = (
    TaskCreated
    | TaskAssigned
    | AnnotationStarted
    | AnnotationSubmitted
    | AnnotationSkipped
    | ReviewCompleted
    | TaskCompleted
    | AnnotationUpdated
    | AnnotationDeleted
)
EVENT_TYPES: tuple[type[_Event], ...] = get_args(Event)
for _type in EVENT_TYPES:
    _type.event_type = EventType(str(_type.__struct_config__.tag))

_EVENTS = msgspec.json.Decoder(Event)
_ANY_JSON = msgspec.json.Decoder()  # the unknown fields, and the values errors name
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `")  # msgspec's refusal of one
_DECLARED = frozenset({"event_type"}.union(*(type_.__struct_fields__ for type_ in EVENT_TYPES)))
_EXTRA = "extra"  # where an event keeps its unknown fields (the instance __dict__)
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
_E = TypeVar("_E", bound=_Event)


@dataclass(frozen=True)
class ContractLimits:
    """How far `occurred_at` may sit from the receiver's clock before the event is refused.

    Producers' clocks drift by seconds or minutes; hours in the future or years in the past
    mean a broken clock or a unit mistake (seconds read as milliseconds), and such events
    would poison time-bucketed rollups.
    """

    max_future: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=366)
    # A labeling event is a few hundred bytes; megabytes are a producer sending files. Refused before
    # decoding, so a huge message costs the worker nothing.
    max_event_bytes: int = 1 << 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ContractLimits:
        """The limits every receiver applies alike (workers, ingest, import), from LABELPULSE_* variables."""
        from config.env import env_int

        return cls(
            max_future=timedelta(seconds=env_int(env, "MAX_FUTURE_SECONDS", 900, maximum=86_400 * 365)),
            max_age=timedelta(days=env_int(env, "MAX_AGE_DAYS", 366, minimum=1, maximum=36_500)),
            max_event_bytes=env_int(env, "MAX_EVENT_BYTES", 1 << 20, minimum=1024, maximum=64 << 20),
        )

    def for_history(self) -> ContractLimits:
        """The limits for backfilled history (`labelpulse import`, the backfill topic): no age limit to speak of
        (a century), since the age limit guards against broken live clocks and old history is the point."""
        return replace(self, max_age=timedelta(days=36_500))


# How deep a value inside an event (a structured label, an unknown field) may nest. Real labels nest a few
# levels; thousands exhaust any decoder's recursion, and would stop the worker instead of one message.
MAX_DEPTH = 32
# Identifiers are printable text: control characters (NUL, escapes, newlines), separators and invisible
# format characters in ids break logs, CSV exports and dashboards, and make look-alike ids.
IDENTIFIERS = ("event_id", "project_id", "task_id", "annotator_id", "reviewer_id", "session_id", "annotation_id")


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
    if len(payload) > limits.max_event_bytes:
        return EventError(
            "too_large",
            None,
            _preview(payload),
            f"message is {len(payload):,} bytes; an event may be at most {limits.max_event_bytes:,} "
            "(LABELPULSE_MAX_EVENT_BYTES)",
        )
    try:
        try:
            event: Event | EventError = _EVENTS.decode(payload)
        except (msgspec.DecodeError, RequiredWhen) as problem:  # a ValidationError is a DecodeError
            unknown_fields = _UNKNOWN_FIELD.match(str(problem))
            event = _keeping_unknown_fields(payload) if unknown_fields else _explain(problem, payload)
    except RecursionError:
        return _too_deep(payload, None)
    if isinstance(event, EventError):
        return event
    if event.occurred_at.tzinfo is not UTC:  # the stdlib's UTC keeps the worker's time arithmetic in C
        event = with_changes(event, occurred_at=event.occurred_at.astimezone(UTC))
    return _check_values(event, _plainly_printable(payload)) or _check_clock(event, now or datetime.now(UTC), limits)


def _too_deep(payload: bytes | str, event: Event | None) -> EventError:
    return EventError(
        "too_deep",
        None,
        _preview(payload),
        f"JSON nested more than {MAX_DEPTH} levels; structured labels and other values must be flatter",
        event.event_id if event else None,
    )


def _plainly_printable(payload: bytes | str) -> bool:
    """Whether every string in the JSON is surely printable: ASCII without escapes or DEL (raw
    control characters are malformed JSON). The usual event; it spares checking each identifier."""
    # Looking for a byte value (an int) is a memchr; a one-byte bytes goes the substring search's way (~6x slower).
    return isinstance(payload, bytes) and payload.isascii() and _BACKSLASH not in payload and _DEL not in payload


_BACKSLASH, _DEL = ord("\\"), 0x7F


def _check_values(event: Event, printable: bool = False) -> EventError | None:
    """What the typed decoding cannot judge: printable identifiers, values not nested too deep."""
    if not printable:
        ids = event.event_id + event.project_id + event.task_id  # one check for all, in the usual case
        people = (event.annotator_id or "") + (event.reviewer_id or "") + (event.session_id or "")
        if not (ids + people + (event.annotation_id or "")).isprintable():
            return _unprintable(event)
    label = event.label
    if (
        (type(label) is dict and _deeper_than(label, MAX_DEPTH))
        or (type(event.gold_label) is dict and _deeper_than(event.gold_label, MAX_DEPTH))
        or (type(event.model_label) is dict and _deeper_than(event.model_label, MAX_DEPTH))
        or (event.__dict__ and any(_deeper_than(value, MAX_DEPTH) for value in extra_fields(event).values()))
    ):
        return _too_deep(msgspec.json.encode(event), event)
    return None


def _unprintable(event: Event) -> EventError:
    name, value = next((name, value) for name in IDENTIFIERS if not (value := getattr(event, name) or "").isprintable())
    bad = next(character for character in value if not character.isprintable())
    return EventError(
        "unprintable_characters",
        name,
        value,
        f"{name} contains U+{ord(bad):04X}, which is not printable; identifiers must be printable text, got {value!r}",
        event.event_id if name != "event_id" else None,
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """True when `value` nests containers more than `limit` levels deep (without recursing)."""
    if not isinstance(value, dict | list):
        return False
    pending = [(value, 1)]
    while pending:
        container, depth = pending.pop()
        children = container.values() if isinstance(container, dict) else container
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                pending.append((child, depth + 1))
    return limit < 1


def _keeping_unknown_fields(payload: bytes | str) -> Event | EventError:
    """An event with fields the contract does not know: the contract's fields judged as usual
    (from the decoded JSON), the others kept aside on the event."""
    try:
        document = _ANY_JSON.decode(payload)  # the typed decoder stopped early: may be malformed further on
        event = msgspec.convert({name: value for name, value in document.items() if name in _DECLARED}, Event)
    except (msgspec.DecodeError, RequiredWhen) as problem:
        return _explain(problem, payload)
    event.__dict__[_EXTRA] = {name: value for name, value in document.items() if name not in _DECLARED}
    return event


def with_changes(event: _E, **changes: Any) -> _E:
    """A copy of `event` with `changes`, keeping the unknown fields it carries."""
    changed = msgspec.structs.replace(event, **changes)
    changed.__dict__.update(event.__dict__)
    return changed


def extra_fields(event: Event) -> Mapping[str, Any]:
    """Fields the producer sent that the contract does not know; kept, never dropped."""
    return event.__dict__.get(_EXTRA, _NO_EXTRA)


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


# msgspec's validation messages: what was wrong, then where (absent for the object itself).
_WHERE = re.compile(r"(?P<problem>.*?)(?: - at `\$\.(?P<field>[^`]*)`)?", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_BOUND = re.compile(r"Expected `\w+` (?P<op>[<>]=?) (?P<bound>\S+)")
_LENGTH = re.compile(r"Expected `str` of length (?P<op>[<>]=?) (?P<bound>\d+)")
_TYPE = re.compile(r"Expected `(?P<expected>[^`]+)`(?:, got `\w+`)?")
_SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}
_LENGTH_WORDS = {">=": "at least", "<=": "at most", ">": "more than", "<": "fewer than"}
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
    "datetime": "an RFC 3339 datetime string",
}


def _choices() -> dict[str, str]:
    """Per field with a fixed set of values, those values as a message lists them."""
    choices = {}
    for type_ in EVENT_TYPES:
        for field in msgspec.structs.fields(type_):
            for option in get_args(field.type) or (field.type,):
                if isinstance(option, type) and issubclass(option, Enum):
                    values = [repr(member.value) for member in option]
                    choices[field.encode_name] = ", ".join(values[:-1]) + " or " + values[-1]
    return choices


_CHOICES = _choices()


def _explain(problem: Exception, payload: bytes | str) -> EventError:
    try:  # the typed decoder stops at its first problem: is the rest of the JSON sound?
        document = _ANY_JSON.decode(payload)
    except msgspec.DecodeError as exc:
        return EventError("malformed_json", None, _preview(payload), f"not valid JSON: {exc}")
    if not isinstance(document, dict):
        return EventError("not_an_object", None, _preview(payload), "an event must be a JSON object")
    event_id = document.get("event_id") if isinstance(document.get("event_id"), str) else None
    event_type = document.get("event_type")
    where = f" for {event_type}" if event_type in EventType.__members__.values() else ""

    if isinstance(problem, RequiredWhen):
        message = f"{problem.field} is required{where} when {problem.condition}"
        return EventError("missing_field", problem.field, None, message, event_id)
    found = _WHERE.fullmatch(str(problem))
    assert found is not None  # the pattern matches any text
    text, field = found["problem"], found["field"]
    if field is None:
        if missing := _MISSING.fullmatch(text):
            field = missing["field"]
            return EventError(
                "missing_field", field, None, f"{field} is required{where if field != 'event_type' else ''}", event_id
            )
        return EventError("invalid_value", None, _preview(payload), f"not a valid event: {text}", event_id)

    value = document.get(field)

    def refuse(rule: str, message: str) -> EventError:
        return EventError(rule, field, value, message, event_id)

    if field == "event_type":
        return refuse("unknown_event_type", f"unknown event_type {value!r}; known types: {', '.join(EventType)}")
    if field == "schema_version":
        return refuse(
            "unsupported_schema_version",
            f"schema_version {value!r} is not supported; this receiver speaks {SCHEMA_VERSION}",
        )
    if length := _LENGTH.fullmatch(text):
        count = f"{_LENGTH_WORDS[length['op']]} {length['bound']} character{'' if length['bound'] == '1' else 's'}"
        return refuse("invalid_value", f"{field} must be {count} long, got {value!r}")
    if bound := _BOUND.fullmatch(text):
        return refuse("out_of_range", f"{field} must be {_SYMBOLS[bound['op']]} {bound['bound']}, got {value!r}")
    if text.startswith("Expected `str` matching regex") and field == "source_system":
        return refuse(
            "invalid_value",
            f"source_system must be a lower-case name of letters, digits, '.', '_' or '-' (at most 64 characters, "
            f"e.g. label-studio), got {value!r}",
        )
    if text.startswith("Invalid enum value") and field in _CHOICES:
        return refuse("invalid_value", f"{field} must be {_CHOICES[field]}, got {value!r}")
    if text == "Expected `datetime` with a timezone component":
        return refuse("invalid_value", f"{field} needs a timezone (Z or an offset such as +02:00), got {value!r}")
    if text == "Invalid RFC3339 encoded datetime":
        return refuse(
            "invalid_value", f"{field} is not a valid datetime (RFC 3339, e.g. 2026-11-23T11:59:00Z), got {value!r}"
        )
    if expected := _TYPE.fullmatch(text):
        kinds = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in expected["expected"].split(" | "))
        return refuse("wrong_type", f"{field} must be {kinds}, got {value!r}")
    return refuse("invalid_value", f"{field}: {text}, got {value!r}")


def _preview(payload: bytes | str, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return text if len(text) <= limit else text[:limit] + "…"


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of contract v1.1, generated from the structs above."""
    document = msgspec.json.schema(Event)
    for definition in document["$defs"].values():
        definition["additionalProperties"] = True  # unknown fields are kept, not refused
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["$id"] = f"https://labelpulse.dev/schema/events.v{SCHEMA_VERSION}.schema.json"
    document["title"] = f"LabelPulse event, contract v{CONTRACT_VERSION}"
    document["description"] = (
        "One labeling event, sent as one JSON object per Kafka message keyed by task_id. "
        "Unknown fields are kept. Receivers also refuse occurred_at more than 15 minutes in "
        "the future or more than 366 days in the past (configurable), messages over 1 MiB (configurable), "
        f"values nested more than {MAX_DEPTH} levels, and identifiers that are not printable text."
    )
    return document


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
