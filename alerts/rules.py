"""Alert rules as data: YAML files in alerts/rules/, validated with errors naming file, line and field.

    groups:
      - name: throughput
        interval: 1m                  # how often the group is evaluated (default 1m)
        rules:
          - alert: ThroughputDrop     # unique across all files
            kind: throughput_drop     # what to evaluate: one of KINDS below
            params: {drop_ratio: 0.5, min_baseline_per_hour: 30}
            for: 10m                  # condition must hold this long before firing
            keep_firing_for: 5m       # keep firing this long after it stops holding
            labels: {severity: page}  # page, ticket or info; more labels as you like
            annotations:
              summary: "Throughput of {{ $labels.project }} dropped"
              description: "{{ $value }} annotations/h, under half the usual rate"
              runbook_url: https://runbooks.example.com/labelpulse/throughput-drop

A file that does not parse or validate is reported (file, line, field, what is wrong) and left
out; the rules of every other file still load, so one broken file never stops evaluation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import yaml

from alerts.schedule import parse_hours, parse_weekdays
from alerts.state import Timing
from schema.events import SOURCE_SYSTEM_PATTERN

DEFAULT_RULES_DIR = Path(__file__).parent / "rules"
SEVERITIES = ("page", "ticket", "info")
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Annotation templates: the subset of Prometheus's Go templates that means the same in both places.
_TEMPLATE = re.compile(r"{{(.*?)}}")
_TEMPLATE_OK = re.compile(r"^\s*\$(value|labels\.[a-zA-Z_][a-zA-Z0-9_]*)\s*$")


def _deadlines(value: dict[Any, Any]) -> dict[str, datetime]:
    """{project: ISO 8601 time with offset} → {project: aware datetime}."""
    deadlines = {}
    for project, when in value.items():
        moment = when if isinstance(when, datetime) else None
        if moment is None:
            try:
                moment = datetime.fromisoformat(str(when))
            except ValueError:
                raise ValueError(f"deadline of {project!r} is not an ISO 8601 time: {when!r}") from None
        if moment.tzinfo is None:
            raise ValueError(f"deadline of {project!r} needs a UTC offset, like 2026-12-01T18:00:00Z")
        deadlines[str(project)] = moment
    return deadlines


_SOURCE_SYSTEM = re.compile(SOURCE_SYSTEM_PATTERN)  # as the contract allows it


def _source_systems(value: Any) -> tuple[str, ...]:
    """A list of source_system names → a tuple of them; the empty list means every source."""
    for name in value:
        if not isinstance(name, str) or not _SOURCE_SYSTEM.match(name):
            raise ValueError(
                f"{name!r} is not a source_system: lower-case letters, digits, '.', '_' or '-' (like label-studio)"
            )
    return tuple(value)


@dataclass(frozen=True)
class Param:
    type: type
    default: Any = None  # None: required
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    parse: Callable[[Any], Any] | None = None  # checks the value (ValueError) and returns its parsed form


# What each kind of rule needs; the evaluator has one query per kind (alerts.conditions, which
# documents what each one measures).
KINDS: dict[str, dict[str, Param]] = {
    "throughput_drop": {
        "baseline": Param(str, "ewma", choices=("ewma", "same_hour_last_week")),
        "drop_ratio": Param(float, 0.5, 0.0, 1.0),
        "min_baseline_per_hour": Param(float, 20.0, 0.0),
        "window": Param(timedelta, timedelta(minutes=30)),
        "lookback": Param(timedelta, timedelta(days=1)),  # ewma: how far back the average reaches
        "half_life": Param(timedelta, timedelta(hours=3)),  # ewma: weight halves every half_life
    },
    "no_events": {
        "window": Param(timedelta, timedelta(minutes=15)),
        "working_hours": Param(str, "00:00-24:00", parse=parse_hours),
        "weekdays": Param(str, "mon-sun", parse=parse_weekdays),
    },
    "quality_drop": {
        "metric": Param(str, choices=("first_pass_acceptance", "gold_accuracy")),
        "threshold": Param(float, None, 0.0, 1.0),
        "bound": Param(str, "upper", choices=("upper", "lower")),
        "min_n": Param(int, 30, 1),
        "window": Param(timedelta, timedelta(hours=6)),
    },
    "annotator_fast_handle": {
        "percentile": Param(float, 0.05, 0.0, 1.0),
        "ratio": Param(float, 0.5, 0.0, 1.0),  # "far below": under ratio x the project's percentile
        "min_annotations": Param(int, 20, 1),
        "window": Param(timedelta, timedelta(hours=2)),
        "baseline": Param(timedelta, timedelta(days=7)),
    },
    "annotator_same_answer": {
        "run_length": Param(int, 20, 2),
        "window": Param(timedelta, timedelta(hours=1)),
    },
    "annotator_gold_floor": {
        "floor": Param(float, 0.7, 0.0, 1.0),
        "min_n": Param(int, 10, 1),
        "window": Param(timedelta, timedelta(days=1)),
    },
    "backlog_eta": {
        "deadlines": Param(dict, parse=_deadlines),
        "window": Param(timedelta, timedelta(hours=6)),
    },
    "source_quiet": {
        "window": Param(timedelta, timedelta(minutes=30)),
        "sources": Param(list, (), parse=_source_systems),  # only these source systems; empty: every one
        "working_hours": Param(str, "00:00-24:00", parse=parse_hours),
        "weekdays": Param(str, "mon-sun", parse=parse_weekdays),
    },
    "pipeline_freshness": {
        "max_age": Param(timedelta, timedelta(minutes=2)),
        "working_hours": Param(str, "00:00-24:00", parse=parse_hours),
        "weekdays": Param(str, "mon-sun", parse=parse_weekdays),
    },
    "pipeline_dead_letter_rate": {
        "max_ratio": Param(float, 0.05, 0.0, 1.0),
        "min_dead_letters": Param(int, 10, 1),
        "window": Param(timedelta, timedelta(minutes=10)),
    },
}


@dataclass(frozen=True)
class Rule:
    alert: str
    kind: str
    params: dict[str, Any]
    for_: timedelta
    keep_firing_for: timedelta
    labels: dict[str, str]
    annotations: dict[str, str]
    group: str
    interval: timedelta
    source: str  # file:line, for messages

    @property
    def timing(self) -> Timing:
        return Timing(self.for_, self.keep_firing_for)

    def annotations_for(self, labels: Mapping[str, str], value: float) -> dict[str, str]:
        """The annotations with this instance's labels and value filled in."""
        return {name: render(text, labels, value) for name, text in self.annotations.items()}


@dataclass(frozen=True)
class RuleFileError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleFileError] = field(default_factory=list)


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """An annotation with `{{ $value }}` and `{{ $labels.name }}` filled in (a missing label is empty)."""

    def fill(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        return format_value(value) if expression == "$value" else labels.get(expression[len("$labels.") :], "")

    return _TEMPLATE.sub(fill, template)


def format_value(value: float) -> str:
    """Like Prometheus prints a sample: +Inf, whole numbers without a point, else 4 significant digits."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.4g}"


def format_duration(delta: timedelta) -> str:
    """The shortest duration text parse_duration reads back: 90s, 5m, 2h, 1d."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text: Any) -> timedelta:
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"expected a duration like 30s, 5m, 2h, 1d, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


class _Invalid(Exception):
    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def load_rules(directory: Path = DEFAULT_RULES_DIR) -> RuleSet:
    """Every rule of every *.yml / *.yaml file in `directory`; bad files are reported, not fatal."""
    result = RuleSet()
    seen: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        loaded = load_rule_file(path)
        if loaded.errors:
            result.errors += loaded.errors
            continue
        duplicates = [rule for rule in loaded.rules if rule.alert in seen]
        for rule in duplicates:
            file, line = rule.source.rsplit(":", 1)
            result.errors.append(
                RuleFileError(file, int(line), "alert", f"{rule.alert} is already defined at {seen[rule.alert]}")
            )
        if duplicates:
            continue
        seen.update({rule.alert: rule.source for rule in loaded.rules})
        result.rules += loaded.rules
    return result


def load_rule_file(path: Path) -> RuleSet:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        return RuleSet(errors=[RuleFileError(name, 0, "file", f"cannot read: {exc}")])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return RuleSet(errors=[RuleFileError(name, line, "yaml", f"not valid YAML: {problem}")])
    try:
        return RuleSet(rules=_rules(document, name, lambda path: _line(root, path)))
    except _Invalid as invalid:
        field_name = ".".join(str(part) for part in invalid.path) or "(file)"
        return RuleSet(errors=[RuleFileError(name, _line(root, invalid.path), field_name, invalid.message)])


def _line(node: yaml.Node | None, path: tuple[Any, ...]) -> int:
    """1-based line of the field at `path`: its key's line, or that of the deepest field that exists
    (for a missing field, the mapping that should hold it)."""
    if node is None:
        return 1
    line = int(node.start_mark.line) + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if key.value == part), None)
            if pair is None:
                break
            line, node = int(pair[0].start_mark.line) + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        else:
            break
    return line


def _mapping(value: Any, path: tuple[Any, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _rules(document: Any, name: str, line_of: Callable[[tuple[Any, ...]], int]) -> list[Rule]:
    if document is None:
        return []  # an empty file has no rules
    top = _mapping(document, ())
    _only(top, ("groups",), ())
    groups = top.get("groups")
    if not isinstance(groups, list):
        raise _Invalid(("groups",), "expected a list of groups")
    rules: list[Rule] = []
    for g, group in enumerate(groups):
        where = ("groups", g)
        group = _mapping(group, where)
        _only(group, ("name", "interval", "rules"), where)
        group_name = group.get("name")
        if not isinstance(group_name, str) or not group_name.strip():
            raise _Invalid((*where, "name"), "every group needs a name")
        interval = _duration(group.get("interval", "1m"), (*where, "interval"))
        if not isinstance(group.get("rules"), list) or not group["rules"]:
            raise _Invalid((*where, "rules"), "expected a non-empty list of rules")
        for r, raw in enumerate(group["rules"]):
            at = (*where, "rules", r)
            rules.append(_rule(_mapping(raw, at), at, group_name, interval, f"{name}:{line_of(at)}"))
    return rules


def _rule(raw: Mapping[str, Any], at: tuple[Any, ...], group: str, interval: timedelta, source: str) -> Rule:
    _only(raw, ("alert", "kind", "params", "for", "keep_firing_for", "labels", "annotations"), at)
    alert = raw.get("alert")
    if not isinstance(alert, str) or not _ALERT_NAME.match(alert):
        raise _Invalid(
            (*at, "alert"), f"an alert name is letters, digits and _, not starting with a digit, got {alert!r}"
        )
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _Invalid((*at, "kind"), f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    labels = {str(k): str(v) for k, v in _mapping(raw.get("labels", {}), (*at, "labels")).items()}
    for label in labels:
        if not _LABEL_NAME.match(label) or label.startswith("__"):
            raise _Invalid((*at, "labels", label), f"{label!r} is not a valid Prometheus label name")
    if labels.get("severity") not in SEVERITIES:
        raise _Invalid((*at, "labels", "severity"), f"severity must be one of {', '.join(SEVERITIES)}")
    annotations = {str(k): str(v) for k, v in _mapping(raw.get("annotations", {}), (*at, "annotations")).items()}
    for required in ("summary", "description", "runbook_url"):
        if not annotations.get(required, "").strip():
            raise _Invalid((*at, "annotations", required), f"every rule needs annotations.{required}")
    if not re.match(r"^https?://\S+$", annotations["runbook_url"]):
        raise _Invalid((*at, "annotations", "runbook_url"), "runbook_url must be an http(s) URL")
    for name, text in annotations.items():
        for expression in _TEMPLATE.findall(text):
            if not _TEMPLATE_OK.match(expression):
                raise _Invalid(
                    (*at, "annotations", name),
                    f"unknown template {{{{{expression}}}}}; use {{{{ $value }}}} or {{{{ $labels.<name> }}}}",
                )
    return Rule(
        alert=alert,
        kind=kind,
        params=_params(kind, _mapping(raw.get("params", {}), (*at, "params")), (*at, "params")),
        for_=_duration(raw.get("for", "0s"), (*at, "for")),
        keep_firing_for=_duration(raw.get("keep_firing_for", "0s"), (*at, "keep_firing_for")),
        labels=labels,
        annotations=annotations,
        group=group,
        interval=interval,
        source=source,
    )


def params_for(kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """A kind's params with defaults filled in and values parsed; ValueError names the bad one."""
    try:
        return _params(kind, given, ("params",))
    except _Invalid as invalid:
        raise ValueError(f"{'.'.join(map(str, invalid.path))}: {invalid.message}") from invalid


def _params(kind: str, given: Mapping[str, Any], at: tuple[Any, ...]) -> dict[str, Any]:
    specs = KINDS[kind]
    _only(given, tuple(specs), at)
    params: dict[str, Any] = {}
    for name, spec in specs.items():
        where = (*at, name)
        if name not in given:
            if spec.default is None:
                raise _Invalid(where, f"{kind} needs params.{name}")
            params[name] = spec.parse(spec.default) if spec.parse else spec.default
            continue
        value: Any = given[name]
        if spec.type is timedelta:
            params[name] = _duration(value, where)
            continue
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.type) or isinstance(value, bool):
            raise _Invalid(where, f"expected {spec.type.__name__}, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise _Invalid(where, f"must be one of {', '.join(spec.choices)}, got {value!r}")
        number = cast(float, value)  # only int and float params have bounds
        if spec.minimum is not None and number < spec.minimum:
            raise _Invalid(where, f"must be at least {spec.minimum}, got {value!r}")
        if spec.maximum is not None and number > spec.maximum:
            raise _Invalid(where, f"must be at most {spec.maximum}, got {value!r}")
        if spec.parse is not None:
            try:
                value = spec.parse(value)
            except ValueError as exc:
                raise _Invalid(where, str(exc)) from exc
        params[name] = value
    return params


def _duration(value: Any, where: tuple[Any, ...]) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Invalid(where, str(exc)) from exc


def _only(mapping: Mapping[str, Any], allowed: tuple[str, ...], at: tuple[Any, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            raise _Invalid((*at, key), f"unknown field {key!r}; expected one of {', '.join(allowed)}")
