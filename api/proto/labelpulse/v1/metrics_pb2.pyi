import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("project_ids",)
    PROJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    project_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetProjectSummaryRequest(_message.Message):
    __slots__ = ("project_id", "range")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    range: TimeRange
    def __init__(self, project_id: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class Tile(_message.Message):
    __slots__ = ("value", "previous")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    value: float
    previous: float
    def __init__(self, value: _Optional[float] = ..., previous: _Optional[float] = ...) -> None: ...

class ProjectSummary(_message.Message):
    __slots__ = ("project_id", "range", "annotations_per_hour", "tasks_completed", "backlog", "eta_hours", "first_pass_acceptance", "gold_accuracy", "krippendorff_alpha", "newest_event_at", "pace_per_hour")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    ETA_HOURS_FIELD_NUMBER: _ClassVar[int]
    FIRST_PASS_ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    GOLD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    KRIPPENDORFF_ALPHA_FIELD_NUMBER: _ClassVar[int]
    NEWEST_EVENT_AT_FIELD_NUMBER: _ClassVar[int]
    PACE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    range: TimeRange
    annotations_per_hour: Tile
    tasks_completed: Tile
    backlog: Tile
    eta_hours: float
    first_pass_acceptance: Tile
    gold_accuracy: Tile
    krippendorff_alpha: Tile
    newest_event_at: _timestamp_pb2.Timestamp
    pace_per_hour: Tile
    def __init__(self, project_id: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., annotations_per_hour: _Optional[_Union[Tile, _Mapping]] = ..., tasks_completed: _Optional[_Union[Tile, _Mapping]] = ..., backlog: _Optional[_Union[Tile, _Mapping]] = ..., eta_hours: _Optional[float] = ..., first_pass_acceptance: _Optional[_Union[Tile, _Mapping]] = ..., gold_accuracy: _Optional[_Union[Tile, _Mapping]] = ..., krippendorff_alpha: _Optional[_Union[Tile, _Mapping]] = ..., newest_event_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pace_per_hour: _Optional[_Union[Tile, _Mapping]] = ...) -> None: ...

class GetThroughputRequest(_message.Message):
    __slots__ = ("range", "bucket_seconds", "project_ids", "annotator_ids", "labels", "sources")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_IDS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    bucket_seconds: int
    project_ids: _containers.RepeatedScalarFieldContainer[str]
    annotator_ids: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., bucket_seconds: _Optional[int] = ..., project_ids: _Optional[_Iterable[str]] = ..., annotator_ids: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[str]] = ...) -> None: ...

class ThroughputPoint(_message.Message):
    __slots__ = ("bucket_start", "project_id", "annotations", "tasks_completed", "reviews")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    bucket_start: _timestamp_pb2.Timestamp
    project_id: str
    annotations: int
    tasks_completed: int
    reviews: int
    def __init__(self, bucket_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_id: _Optional[str] = ..., annotations: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., reviews: _Optional[int] = ...) -> None: ...

class GetThroughputResponse(_message.Message):
    __slots__ = ("bucket_seconds", "points")
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    bucket_seconds: int
    points: _containers.RepeatedCompositeFieldContainer[ThroughputPoint]
    def __init__(self, bucket_seconds: _Optional[int] = ..., points: _Optional[_Iterable[_Union[ThroughputPoint, _Mapping]]] = ...) -> None: ...

class StreamAnnotatorScorecardRequest(_message.Message):
    __slots__ = ("range", "project_ids", "annotator_ids")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_IDS_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    project_ids: _containers.RepeatedScalarFieldContainer[str]
    annotator_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., project_ids: _Optional[_Iterable[str]] = ..., annotator_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AnnotatorScore(_message.Message):
    __slots__ = ("annotator_id", "annotations", "active_hours", "per_active_hour", "model_assisted_share", "handle_p50_s", "handle_p90_s", "skip_rate", "first_pass_acceptance", "acceptance", "gold_accuracy", "gold_ci", "gold_answers", "peer_agreement", "flags")
    ANNOTATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_HOURS_FIELD_NUMBER: _ClassVar[int]
    PER_ACTIVE_HOUR_FIELD_NUMBER: _ClassVar[int]
    MODEL_ASSISTED_SHARE_FIELD_NUMBER: _ClassVar[int]
    HANDLE_P50_S_FIELD_NUMBER: _ClassVar[int]
    HANDLE_P90_S_FIELD_NUMBER: _ClassVar[int]
    SKIP_RATE_FIELD_NUMBER: _ClassVar[int]
    FIRST_PASS_ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_FIELD_NUMBER: _ClassVar[int]
    GOLD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    GOLD_CI_FIELD_NUMBER: _ClassVar[int]
    GOLD_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    PEER_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    annotator_id: str
    annotations: int
    active_hours: float
    per_active_hour: float
    model_assisted_share: float
    handle_p50_s: float
    handle_p90_s: float
    skip_rate: float
    first_pass_acceptance: float
    acceptance: float
    gold_accuracy: float
    gold_ci: str
    gold_answers: int
    peer_agreement: float
    flags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, annotator_id: _Optional[str] = ..., annotations: _Optional[int] = ..., active_hours: _Optional[float] = ..., per_active_hour: _Optional[float] = ..., model_assisted_share: _Optional[float] = ..., handle_p50_s: _Optional[float] = ..., handle_p90_s: _Optional[float] = ..., skip_rate: _Optional[float] = ..., first_pass_acceptance: _Optional[float] = ..., acceptance: _Optional[float] = ..., gold_accuracy: _Optional[float] = ..., gold_ci: _Optional[str] = ..., gold_answers: _Optional[int] = ..., peer_agreement: _Optional[float] = ..., flags: _Optional[_Iterable[str]] = ...) -> None: ...

class GetAgreementRequest(_message.Message):
    __slots__ = ("project_id", "range")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    range: TimeRange
    def __init__(self, project_id: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class PairKappa(_message.Message):
    __slots__ = ("annotator_a", "annotator_b", "items", "percent_agreement", "cohen_kappa")
    ANNOTATOR_A_FIELD_NUMBER: _ClassVar[int]
    ANNOTATOR_B_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    COHEN_KAPPA_FIELD_NUMBER: _ClassVar[int]
    annotator_a: str
    annotator_b: str
    items: int
    percent_agreement: float
    cohen_kappa: float
    def __init__(self, annotator_a: _Optional[str] = ..., annotator_b: _Optional[str] = ..., items: _Optional[int] = ..., percent_agreement: _Optional[float] = ..., cohen_kappa: _Optional[float] = ...) -> None: ...

class GetAgreementResponse(_message.Message):
    __slots__ = ("project_id", "tasks", "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1", "pairs")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    FLEISS_KAPPA_FIELD_NUMBER: _ClassVar[int]
    KRIPPENDORFF_ALPHA_FIELD_NUMBER: _ClassVar[int]
    GWET_AC1_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    tasks: int
    percent_agreement: float
    fleiss_kappa: float
    krippendorff_alpha: float
    gwet_ac1: float
    pairs: _containers.RepeatedCompositeFieldContainer[PairKappa]
    def __init__(self, project_id: _Optional[str] = ..., tasks: _Optional[int] = ..., percent_agreement: _Optional[float] = ..., fleiss_kappa: _Optional[float] = ..., krippendorff_alpha: _Optional[float] = ..., gwet_ac1: _Optional[float] = ..., pairs: _Optional[_Iterable[_Union[PairKappa, _Mapping]]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("range", "project_ids", "history_limit")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    range: TimeRange
    project_ids: _containers.RepeatedScalarFieldContainer[str]
    history_limit: int
    def __init__(self, range: _Optional[_Union[TimeRange, _Mapping]] = ..., project_ids: _Optional[_Iterable[str]] = ..., history_limit: _Optional[int] = ...) -> None: ...

class ActiveAlert(_message.Message):
    __slots__ = ("rule", "labels", "state", "active_since", "value", "summary", "runbook_url")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RULE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SINCE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_URL_FIELD_NUMBER: _ClassVar[int]
    rule: str
    labels: _containers.ScalarMap[str, str]
    state: str
    active_since: _timestamp_pb2.Timestamp
    value: float
    summary: str
    runbook_url: str
    def __init__(self, rule: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[str] = ..., active_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., summary: _Optional[str] = ..., runbook_url: _Optional[str] = ...) -> None: ...

class AlertTransition(_message.Message):
    __slots__ = ("at", "rule", "previous_state", "state", "labels", "value", "summary", "runbook_url")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_URL_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    rule: str
    previous_state: str
    state: str
    labels: _containers.ScalarMap[str, str]
    value: float
    summary: str
    runbook_url: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule: _Optional[str] = ..., previous_state: _Optional[str] = ..., state: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., value: _Optional[float] = ..., summary: _Optional[str] = ..., runbook_url: _Optional[str] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("active", "history")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    active: _containers.RepeatedCompositeFieldContainer[ActiveAlert]
    history: _containers.RepeatedCompositeFieldContainer[AlertTransition]
    def __init__(self, active: _Optional[_Iterable[_Union[ActiveAlert, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[AlertTransition, _Mapping]]] = ...) -> None: ...

class WatchProjectRequest(_message.Message):
    __slots__ = ("project_id", "window_seconds", "interval_seconds")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    window_seconds: int
    interval_seconds: int
    def __init__(self, project_id: _Optional[str] = ..., window_seconds: _Optional[int] = ..., interval_seconds: _Optional[int] = ...) -> None: ...
