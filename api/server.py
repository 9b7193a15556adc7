"""The gRPC service: each method checks its caller and its request, reads through schema.queries and
schema.summaries (the dashboard's numbers) over the caller's projects, and answers in protobuf.

Errors are gRPC status codes: INVALID_ARGUMENT naming the field, UNAUTHENTICATED without a known token,
PERMISSION_DENIED for a project outside the token's, UNAVAILABLE while ClickHouse is down (the health
service says NOT_SERVING until it answers again), DEADLINE_EXCEEDED when the caller's deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pandas as pd
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2
from prometheus_client import Counter, Histogram

from access.scoped import QueryTimedOut
from api.data import Reader
from api.proto.labelpulse.v1 import metrics_pb2 as pb
from api.proto.labelpulse.v1 import metrics_pb2_grpc
from api.settings import ApiClient, token_sha256
from api.watch import WatchHub
from schema import queries, summaries
from schema.client import ClickHouseUnavailable

log = logging.getLogger("labelpulse.api")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Metrics"].full_name
REQUESTS = Counter("labelpulse_api_requests_total", "gRPC requests by method and status code", ["method", "code"])
LATENCY = Histogram(
    "labelpulse_api_request_duration_seconds", "Time to answer a gRPC request (a stream: its whole life)", ["method"]
)

Key = TypeVar("Key")
MAX_SPAN = timedelta(days=400)
MAX_POINTS = 10_000
DEFAULT_WINDOW_S, DEFAULT_INTERVAL_S = 6 * 3600, 5
EVERYONE = ApiClient("anyone on loopback", None)


class Refused(Exception):
    """A request answered with a status code other than OK (INVALID_ARGUMENT, PERMISSION_DENIED, …)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


def invalid(field: str, problem: str) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


# ------------------------------------------------------------------ requests in, protobuf out


def time_range(message: pb.TimeRange, field: str, *, has: bool) -> tuple[datetime, datetime]:
    """[start, end) in UTC from a TimeRange the request must carry."""
    if not has or not message.HasField("start") or not message.HasField("end"):
        raise invalid(field, "required, with start and end (UTC)")
    start, end = message.start.ToDatetime(tzinfo=UTC), message.end.ToDatetime(tzinfo=UTC)
    if end <= start:
        raise invalid(f"{field}.end", f"must be after {field}.start ({start.isoformat()}), got {end.isoformat()}")
    if end - start > MAX_SPAN:
        raise invalid(field, f"at most {MAX_SPAN.days} days, got {(end - start).days}")
    return start, end


def _ids(values: Iterable[str], field: str) -> tuple[str, ...]:
    ids = tuple(values)
    if any(not value.strip() for value in ids):
        raise invalid(field, "ids must not be empty")
    return ids


def _timestamp(value: Any) -> Timestamp | None:
    if value is None or pd.isna(value):
        return None
    moment = pd.Timestamp(value)
    stamp = Timestamp()
    stamp.FromDatetime((moment.tz_convert(UTC) if moment.tzinfo else moment.tz_localize(UTC)).to_pydatetime())
    return stamp


def _number(value: Any) -> float | None:
    """A float, or None for NULL / NaN: proto3 optional fields stay unset."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return float(value)


def _fields(**values: Any) -> dict[str, Any]:
    """Keyword arguments for a message without the unset (None) ones."""
    return {name: value for name, value in values.items() if value is not None}


# ------------------------------------------------------------------ the service


@dataclass(frozen=True)
class Reads:
    """A summaries.Fetch over the caller's projects. Each query may run only until the caller's deadline
    (time.monotonic(); None: no deadline): ClickHouse stops it there, and none starts after it, nor after the
    call was cancelled."""

    reader: Reader
    scope: tuple[str, ...] | None
    deadline: float | None
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)

    def __call__(self, query: queries.Query) -> pd.DataFrame:
        if self.cancelled.is_set():
            raise Refused(grpc.StatusCode.CANCELLED, "the call was cancelled before its reads were done")
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before its reads were done")
        return self.reader.frame(query, self.scope, remaining)

    def many(self, wanted: Mapping[Key, queries.Query]) -> dict[Key, pd.DataFrame]:
        """Each query's result, the queries run side by side on the reader's bounded pool, each as __call__
        runs one (this scope, deadline and cancellation). The first error is raised at once: the queries not
        started by then never start, those running end by themselves (by the deadline at the latest)."""
        futures = {key: self.reader.pool.submit(self, query) for key, query in wanted.items()}
        try:
            return {key: future.result() for key, future in futures.items()}
        finally:
            for future in futures.values():
                future.cancel()  # those still queued: after an error nothing uses their results

    def only(self, project: str) -> Reads:
        """Reads of one project the caller may see (checked before): queries without a project filter of
        their own, such as data_as_of, then answer for that project alone."""
        return replace(self, scope=(project,))


Response = TypeVar("Response", bound=Message)


class MetricsService(metrics_pb2_grpc.MetricsServicer):
    def __init__(
        self, reader: Reader, clients: Mapping[str, ApiClient], health_servicer: health.aio.HealthServicer | None = None
    ) -> None:
        self.reader = reader
        self.clients = clients
        self.health = health_servicer
        self._serving_now: bool | None = None
        self._health_updates: set[asyncio.Task[None]] = set()
        self.watches: WatchHub[pb.ProjectSummary] = WatchHub(self._watched_summary, self._change_signal, self._serving)

    # -------------------------------------------------------------- who calls, what they may see

    def caller(self, context: grpc.aio.ServicerContext) -> ApiClient:
        if not self.clients:
            return EVERYONE
        metadata = dict(context.invocation_metadata() or ())
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "send `authorization: Bearer <token>` metadata")
        client = self.clients.get(token_sha256(token.strip()))
        if client is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "unknown token")
        return client

    @staticmethod
    def permit(caller: ApiClient, projects: Iterable[str], field: str) -> None:
        """PERMISSION_DENIED for any project outside the caller's; reads are scoped by ClickHouse besides."""
        if caller.projects is None:
            return
        if outside := [project for project in projects if project not in caller.projects]:
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{field}: this token may not read project {outside[0]!r} (it may read: {', '.join(caller.projects)})",
            )

    # -------------------------------------------------------------- methods

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Any) -> pb.ListProjectsResponse:
        def answer(caller: ApiClient, fetch: Reads) -> pb.ListProjectsResponse:
            return pb.ListProjectsResponse(project_ids=list(fetch(queries.project_names())["project_id"]))

        return await self._unary("ListProjects", context, answer)

    async def GetProjectSummary(self, request: pb.GetProjectSummaryRequest, context: Any) -> pb.ProjectSummary:
        def answer(caller: ApiClient, fetch: Reads) -> pb.ProjectSummary:
            project = self._project(request.project_id, caller)
            start, end = time_range(request.range, "range", has=request.HasField("range"))
            return project_summary(project, start, end, fetch.only(project))

        return await self._unary("GetProjectSummary", context, answer)

    async def GetThroughput(self, request: pb.GetThroughputRequest, context: Any) -> pb.GetThroughputResponse:
        def answer(caller: ApiClient, fetch: Reads) -> pb.GetThroughputResponse:
            start, end = time_range(request.range, "range", has=request.HasField("range"))
            projects = _ids(request.project_ids, "project_ids")
            self.permit(caller, projects, "project_ids")
            filters = queries.Filters(
                start,
                end,
                projects,
                _ids(request.annotator_ids, "annotator_ids"),
                _ids(request.labels, "labels"),
                _ids(request.sources, "sources"),
            )
            return throughput(filters, request.bucket_seconds, fetch)

        return await self._unary("GetThroughput", context, answer)

    async def StreamAnnotatorScorecard(
        self, request: pb.StreamAnnotatorScorecardRequest, context: Any
    ) -> AsyncIterator[pb.AnnotatorScore]:
        def rows(caller: ApiClient, fetch: Reads) -> list[pb.AnnotatorScore]:
            start, end = time_range(request.range, "range", has=request.HasField("range"))
            projects = _ids(request.project_ids, "project_ids")
            self.permit(caller, projects, "project_ids")
            filters = queries.Filters(start, end, projects, _ids(request.annotator_ids, "annotator_ids"))
            return [annotator_score(row) for row in summaries.annotator_scorecard(filters, fetch).to_dict("records")]

        async for score in self._stream("StreamAnnotatorScorecard", context, rows):
            yield score

    async def GetAgreement(self, request: pb.GetAgreementRequest, context: Any) -> pb.GetAgreementResponse:
        def answer(caller: ApiClient, fetch: Reads) -> pb.GetAgreementResponse:
            project = self._project(request.project_id, caller)
            start, end = time_range(request.range, "range", has=request.HasField("range"))
            return agreement(queries.Filters(start, end, (project,)), fetch)

        return await self._unary("GetAgreement", context, answer)

    async def ListAlerts(self, request: pb.ListAlertsRequest, context: Any) -> pb.ListAlertsResponse:
        def answer(caller: ApiClient, fetch: Reads) -> pb.ListAlertsResponse:
            if request.HasField("range"):
                start, end = time_range(request.range, "range", has=True)
            else:
                end = datetime.now(UTC)
                start = end - timedelta(days=1)
            projects = _ids(request.project_ids, "project_ids")
            self.permit(caller, projects, "project_ids")
            if request.history_limit > 10_000:
                raise invalid("history_limit", f"at most 10000, got {request.history_limit}")
            return alerts(queries.Filters(start, end, projects), request.history_limit or 200, fetch)

        return await self._unary("ListAlerts", context, answer)

    async def WatchProject(self, request: pb.WatchProjectRequest, context: Any) -> AsyncIterator[pb.ProjectSummary]:
        started, code = time.monotonic(), grpc.StatusCode.OK
        try:
            caller = self.caller(context)
            project = self._project(request.project_id, caller)
            window = request.window_seconds or DEFAULT_WINDOW_S
            interval = request.interval_seconds or DEFAULT_INTERVAL_S
            if window > MAX_SPAN.total_seconds():
                raise invalid("window_seconds", f"at most {int(MAX_SPAN.total_seconds())}, got {window}")
            if interval > 3600:
                raise invalid("interval_seconds", f"at most 3600, got {interval}")
            async with contextlib.aclosing(self.watches.watch(project, interval, window)) as summaries_:
                async for summary in summaries_:  # closed with the call: the shared poll knows at once
                    yield summary
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            code, details = self._status(error)
            await context.abort(code, details)
        finally:
            self._observe("WatchProject", code, started)

    # -------------------------------------------------------------- WatchProject's shared reads

    def _change_signal(self, project: str) -> tuple[Any, ...]:
        """What moves when new events of the project are stored (one poll per project and interval)."""
        newest = self.reader.frame(queries.data_as_of(), (project,))
        return tuple(newest.iloc[0]) if not newest.empty else ()

    def _watched_summary(self, project: str, window_s: int, end: datetime) -> pb.ProjectSummary:
        return project_summary(project, end - timedelta(seconds=window_s), end, Reads(self.reader, (project,), None))

    # -------------------------------------------------------------- the plumbing of every method

    def _project(self, project: str, caller: ApiClient) -> str:
        if not project.strip():
            raise invalid("project_id", "required (ListProjects names them)")
        self.permit(caller, [project], "project_id")
        return project

    async def _run(self, context: Any, work: Callable[[ApiClient, Reads], Response]) -> Response:
        caller = self.caller(context)
        remaining: float | None = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        reads = Reads(self.reader, caller.projects, deadline)
        try:
            answer = await asyncio.to_thread(work, caller, reads)
        except asyncio.CancelledError:
            reads.cancelled.set()  # the thread runs on, but starts no more queries
            raise
        self._serving(True)
        return answer

    async def _unary(self, method: str, context: Any, work: Callable[[ApiClient, Reads], Response]) -> Response:
        started, code = time.monotonic(), grpc.StatusCode.OK
        try:
            return await self._run(context, work)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            code, details = self._status(error)
            await context.abort(code, details)
            raise  # abort raises; this keeps type checkers sure nothing falls through
        finally:
            self._observe(method, code, started)

    async def _stream(
        self, method: str, context: Any, work: Callable[[ApiClient, Reads], list[Response]]
    ) -> AsyncIterator[Response]:
        started, code = time.monotonic(), grpc.StatusCode.OK
        try:
            for message in await self._run(context, work):
                yield message
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            code, details = self._status(error)
            await context.abort(code, details)
        finally:
            self._observe(method, code, started)

    def _status(self, error: Exception) -> tuple[grpc.StatusCode, str]:
        if isinstance(error, Refused):
            return error.code, error.details
        if isinstance(error, ClickHouseUnavailable):
            self._serving(False)
            return grpc.StatusCode.UNAVAILABLE, f"ClickHouse is unavailable, try again: {error}"
        if isinstance(error, QueryTimedOut):
            return grpc.StatusCode.DEADLINE_EXCEEDED, f"the query ran past the deadline ({error})"
        log.exception("internal error")
        return grpc.StatusCode.INTERNAL, f"internal error ({type(error).__name__}); the server log has details"

    def _serving(self, serving: bool) -> None:
        """Tell the health service whether ClickHouse answers (on the event loop, after each read)."""
        if self.health is None or serving == self._serving_now:
            return
        self._serving_now = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE_NAME):
            task = asyncio.get_running_loop().create_task(self.health.set(service, status))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

    @staticmethod
    def _observe(method: str, code: grpc.StatusCode, started: float) -> None:
        REQUESTS.labels(method, code.name).inc()
        LATENCY.labels(method).observe(time.monotonic() - started)


# ------------------------------------------------------------------ answers, from the shared summaries


def project_summary(project: str, start: datetime, end: datetime, fetch: Reads) -> pb.ProjectSummary:
    """The Overview's tiles for one project over [start, end), each beside its value over the period before.
    Its reads (both periods' summaries and the freshness) run side by side: none needs another's result."""
    filters = queries.Filters(start, end, (project,))
    periods = {"now": filters, "before": filters.previous()}
    reads = {period: summaries.project_summary_reads(within) for period, within in periods.items()}
    wanted = {(period, name): query for period, named in reads.items() for name, query in named.items()}
    frames = fetch.many({**wanted, ("newest", ""): queries.data_as_of()})  # the caller scopes data_as_of
    now, before = (
        summaries.tiles(summaries.summary_of(within, {name: frames[period, name] for name in reads[period]}), within)
        for period, within in periods.items()
    )
    newest = frames["newest", ""]

    def tile(name: str) -> pb.Tile:
        return pb.Tile(**_fields(value=_number(getattr(now, name)), previous=_number(getattr(before, name))))

    period = pb.TimeRange(start=_timestamp(start), end=_timestamp(end))
    return pb.ProjectSummary(
        project_id=project,
        range=period,
        annotations_per_hour=tile("annotations_per_hour"),
        tasks_completed=tile("tasks_completed"),
        backlog=tile("backlog"),
        first_pass_acceptance=tile("first_pass_acceptance"),
        gold_accuracy=tile("gold_accuracy"),
        krippendorff_alpha=tile("krippendorff_alpha"),
        pace_per_hour=tile("pace_per_hour"),
        **_fields(
            eta_hours=now.eta_hours,
            newest_event_at=_timestamp(newest.iloc[0]["newest_occurred_at"]) if not newest.empty else None,
        ),
    )


def throughput(filters: queries.Filters, bucket: int, fetch: Reads) -> pb.GetThroughputResponse:
    """Annotations per bucket and project: from the minute rollup unless annotators, labels or sources are
    chosen (they live in hour rollups, which do not hold completions and reviews)."""
    if filters.annotators and (filters.labels or filters.sources):
        raise invalid("annotator_ids", "cannot be combined with labels or sources (no rollup holds both)")
    hourly = bool(filters.annotators or filters.labels or filters.sources)
    unit = 3600 if hourly else 60
    if bucket == 0:
        bucket = max(queries.bucket_seconds(filters.span), unit)
        bucket = math.ceil(bucket / unit) * unit
    elif bucket % unit:
        what = "whole hours with annotator, label or source filters" if hourly else "whole minutes"
        raise invalid("bucket_seconds", f"must be {what} (a multiple of {unit}), got {bucket}")
    if (points := filters.span.total_seconds() / bucket) > MAX_POINTS:
        raise invalid("bucket_seconds", f"{bucket} gives {points:.0f} buckets over the range; at most {MAX_POINTS}")
    if filters.annotators:
        frame = fetch(queries.throughput_by_annotator(filters, bucket))
    elif hourly:
        frame = fetch(queries.throughput_by_label(filters, bucket))
    else:
        frame = fetch(queries.throughput(filters, bucket))
    points_ = [
        pb.ThroughputPoint(
            bucket_start=_timestamp(row["bucket"]),
            project_id=row["project_id"],
            annotations=int(row["annotations"]),
            **({} if hourly else {"tasks_completed": int(row["tasks_completed"]), "reviews": int(row["reviews"])}),
        )
        for row in frame.to_dict("records")
    ]
    return pb.GetThroughputResponse(bucket_seconds=bucket, points=points_)


# The scorecard's columns the message sets by hand; every other one is an optional number. A column added to
# the scorecard then reaches the message, or fails loudly until the proto has it.
SCORE_FIELDS_BY_HAND = {"annotator_id", "annotations", "active_hours", "gold_ci", "gold_answers", "flags"}


def annotator_score(row: Mapping[str, Any]) -> pb.AnnotatorScore:
    optional = [column for column in summaries.SCORECARD_COLUMNS if column not in SCORE_FIELDS_BY_HAND]
    return pb.AnnotatorScore(
        annotator_id=row["annotator_id"],
        annotations=int(row["annotations"]),
        active_hours=float(row["active_hours"]),
        gold_ci=row["gold_ci"],
        gold_answers=int(row["gold_answers"]),
        flags=[flag for flag in str(row["flags"]).split("; ") if flag],
        **_fields(**{name: _number(row[name]) for name in optional}),
    )


def agreement(filters: queries.Filters, fetch: Reads) -> pb.GetAgreementResponse:
    (project,) = filters.projects
    summary = fetch(queries.agreement(filters))
    pairs = fetch(queries.pair_kappa(filters))
    overall = summary.iloc[0] if not summary.empty else None
    return pb.GetAgreementResponse(
        project_id=project,
        tasks=int(overall["tasks"]) if overall is not None else 0,
        pairs=[
            pb.PairKappa(
                annotator_a=row["annotator_a"],
                annotator_b=row["annotator_b"],
                items=int(row["items"]),
                **_fields(percent_agreement=_number(row["percent_agreement"]), cohen_kappa=_number(row["cohen_kappa"])),
            )
            for row in pairs.to_dict("records")
        ],
        **_fields(
            **{
                name: _number(overall[name]) if overall is not None else None
                for name in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
            }
        ),
    )


def alerts(filters: queries.Filters, limit: int, fetch: Reads) -> pb.ListAlertsResponse:
    active = fetch(queries.alerts_now(filters))
    history = fetch(queries.alert_log(filters, limit))
    return pb.ListAlertsResponse(
        active=[
            pb.ActiveAlert(
                rule=row["rule"],
                labels=dict(row["labels"]),
                state=row["state"],
                active_since=_timestamp(row["episode_start"]),
                summary=row["summary"],
                runbook_url=row["runbook_url"],
                **_fields(value=_number(row["value"])),
            )
            for row in active.to_dict("records")
        ],
        history=[
            pb.AlertTransition(
                at=_timestamp(row["at"]),
                rule=row["rule"],
                previous_state=row["previous_state"],
                state=row["state"],
                labels=dict(row["labels"]),
                summary=row["summary"],
                runbook_url=row["runbook_url"],
                **_fields(value=_number(row["value"])),
            )
            for row in history.to_dict("records")
        ],
    )
