"""`labelpulse api` for real: the server as its own process against the embedded ClickHouse seeded with
simulated events, called by a real grpcio client over loopback. Every answer equals what the dashboard's
queries and summaries (schema.queries, schema.summaries) give on the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import grpc
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from access.scoped import QueryTimedOut, ScopedClient
from api.data import Reader
from api.proto.labelpulse.v1 import metrics_pb2 as pb
from api.proto.labelpulse.v1 import metrics_pb2_grpc
from api.server import Reads
from api.settings import token_sha256
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from labelpulse.runtime import cli_command
from labelpulse.simulator import Plan, generate
from schema import migrations, queries, summaries
from schema.client import ClickHouseSettings, connect
from schema.tables import ALERT_HISTORY
from streams.offline import load
from tests.support.services import ClickHouseService, run_cli, system_tool, wait_for

pytestmark = pytest.mark.clickhouse

ALL, ONE, OTHER = "token-for-everything", "token-for-one-project", "not-a-token"
# Gold tasks enough for annotators to reach MIN_GOLD_ANSWERS, so that the scorecard has gold accuracies to compare.
PLAN = Plan(seed=11, start=datetime.now(UTC) - timedelta(hours=2), rate=1, gold_share=0.4)
SEED_EVENTS = 3000


@dataclass
class Api:
    settings: ClickHouseSettings
    address: str
    metrics_url: str
    one_project: str  # the project the ONE token may read

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)


def start_api(
    clickhouse: ClickHouseSettings,
    log_path: Path,
    tokens: str | None,
    tls: tuple[Path, Path] | None = None,  # certificate, key
) -> tuple[subprocess.Popen, str, str]:
    port, metrics_port = free_port(), free_port()
    env = {
        **clickhouse.to_env(),
        "LABELPULSE_API_PORT": str(port),
        "LABELPULSE_API_METRICS_PORT": str(metrics_port),
        **({"LABELPULSE_API_TOKENS": tokens} if tokens else {}),
        **({"LABELPULSE_API_TLS_CERT_FILE": str(tls[0]), "LABELPULSE_API_TLS_KEY_FILE": str(tls[1])} if tls else {}),
    }
    process = spawn(cli_command("api"), log_path, {**os.environ, **env})
    address = f"127.0.0.1:{port}"
    with (
        grpc.secure_channel(address, grpc.ssl_channel_credentials(tls[0].read_bytes()))
        if tls
        else grpc.insecure_channel(address)
    ) as channel:
        ready = grpc.channel_ready_future(channel)

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the API exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            return ready.done()

        wait_for(listening, 60, f"the API on {address} ({log_path})")
    return process, address, f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.fixture(scope="module")
def api(clickhouse_service: ClickHouseService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = replace(clickhouse_service.settings, database=f"api_{uuid.uuid4().hex[:10]}")
    admin = connect(clickhouse_service.settings, database="default")
    admin.command(f"CREATE DATABASE {settings.database}")
    client = connect(settings)
    migrations.migrate(client)
    load([message.value for message in islice(generate(PLAN), SEED_EVENTS)], lambda: client)
    projects = list(client.query_df(queries.project_names().sql)["project_id"])
    assert len(projects) >= 2, projects
    tokens = json.dumps(
        {
            "clients": [
                {"name": "everything", "token_sha256": token_sha256(ALL), "projects": "all"},
                {"name": "one", "token_sha256": token_sha256(ONE), "projects": [projects[0]]},
            ]
        }
    )
    process, address, metrics_url = start_api(settings, tmp_path_factory.mktemp("api") / "api.log", tokens)
    yield Api(settings, address, metrics_url, projects[0])
    terminate(process, timeout_s=30)
    admin.command(f"DROP DATABASE {settings.database} SYNC")
    admin.close()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def last_hours(hours: float) -> pb.TimeRange:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    return pb.TimeRange(start=stamp(end - timedelta(hours=hours)), end=stamp(end))


def dashboard_fetch(settings: ClickHouseSettings) -> summaries.Fetch:
    """The dashboard's reads, unscoped (the queries' own project filters choose)."""
    client = connect(settings)

    def fetch(query: queries.Query) -> pd.DataFrame:
        frame = client.query_df(query.sql, parameters=query.parameters)
        if frame.columns.empty:  # as dashboard.data: an empty result keeps its columns
            described = client.query(f"DESCRIBE ({query.sql})", parameters=query.parameters)
            return pd.DataFrame(columns=[row[0] for row in described.result_rows])
        return frame

    return fetch


def filters_of(period: pb.TimeRange, projects: tuple[str, ...] = ()) -> queries.Filters:
    return queries.Filters(period.start.ToDatetime(UTC), period.end.ToDatetime(UTC), projects)


def optional(message: object, field: str) -> float | None:
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return (a is None or pd.isna(a)) and (b is None or pd.isna(b))
    return a == pytest.approx(b, rel=1e-9)


# ------------------------------------------------------------------ every method on seeded data


def test_list_projects_names_every_project_with_data(api: Api) -> None:
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).ListProjects(pb.ListProjectsRequest(), metadata=bearer(ALL))
    expected = dashboard_fetch(api.settings)(queries.project_names())["project_id"]
    assert list(answer.project_ids) == list(expected)


def test_project_summary_is_the_overviews_tiles_now_and_before(api: Api) -> None:
    period = last_hours(1.7)  # the seed (from 2 h ago, 50 min long) falls into the range and the one before
    with api.channel() as channel:
        summary = metrics_pb2_grpc.MetricsStub(channel).GetProjectSummary(
            pb.GetProjectSummaryRequest(project_id=api.one_project, range=period), metadata=bearer(ALL)
        )
    fetch = dashboard_fetch(api.settings)
    filters = filters_of(period, (api.one_project,))
    now = summaries.tiles(summaries.project_summary(filters, fetch), filters)
    before = summaries.tiles(summaries.project_summary(filters.previous(), fetch), filters.previous())
    assert summary.project_id == api.one_project
    tiles = ("pace_per_hour", "annotations_per_hour", "tasks_completed", "backlog", "first_pass_acceptance")
    for tile in (*tiles, "gold_accuracy"):
        got = getattr(summary, tile)
        assert same(optional(got, "value"), getattr(now, tile)), tile
        assert same(optional(got, "previous"), getattr(before, tile)), tile
    assert same(optional(summary.krippendorff_alpha, "value"), now.krippendorff_alpha)
    assert same(optional(summary, "eta_hours"), now.eta_hours)
    assert now.annotations_per_hour > 0 and before.annotations_per_hour > 0
    assert summary.HasField("newest_event_at")


def test_throughput_per_bucket_adds_up_to_the_dashboards_totals(api: Api) -> None:
    period = last_hours(3)
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).GetThroughput(
            pb.GetThroughputRequest(range=period, bucket_seconds=900), metadata=bearer(ALL)
        )
    fetch = dashboard_fetch(api.settings)
    expected = fetch(queries.throughput(filters_of(period), 900))
    got = [
        (point.bucket_start.ToDatetime(), point.project_id, point.annotations, point.tasks_completed, point.reviews)
        for point in answer.points
    ]
    assert answer.bucket_seconds == 900
    assert got == [
        (row.bucket.to_pydatetime(), row.project_id, row.annotations, row.tasks_completed, row.reviews)
        for row in expected.itertuples()
    ]
    totals = fetch(queries.project_totals(filters_of(period))).set_index("project_id")["annotations"]
    per_project = pd.DataFrame(got, columns=["bucket", "project_id", "annotations", "completed", "reviews"])
    assert per_project.groupby("project_id")["annotations"].sum().to_dict() == totals.to_dict()


def test_throughput_of_one_annotator_adds_up_to_their_scorecard_annotations(api: Api) -> None:
    period = last_hours(3)
    fetch = dashboard_fetch(api.settings)
    output = fetch(queries.annotator_output(filters_of(period)))
    annotator = output["annotator_id"].iloc[0]
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).GetThroughput(
            pb.GetThroughputRequest(range=period, annotator_ids=[annotator]), metadata=bearer(ALL)
        )
    assert answer.bucket_seconds % 3600 == 0
    assert not any(point.HasField("tasks_completed") for point in answer.points)
    assert sum(p.annotations for p in answer.points) == output.set_index("annotator_id").loc[annotator, "annotations"]


def test_throughput_of_one_label_class_adds_up_to_the_projects_label_table(api: Api) -> None:
    period = last_hours(3)
    labels = dashboard_fetch(api.settings)(queries.label_throughput(filters_of(period)))
    label = labels["label"].iloc[0]
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).GetThroughput(
            pb.GetThroughputRequest(range=period, labels=[label]), metadata=bearer(ALL)
        )
    assert sum(p.annotations for p in answer.points) == labels[labels["label"] == label]["annotations"].sum()


def test_throughput_of_one_source_adds_up_to_the_projects_label_table(api: Api) -> None:
    period = last_hours(3)
    labels = dashboard_fetch(api.settings)(queries.label_throughput(filters_of(period)))
    per_source = labels.groupby("source")["annotations"].sum()
    assert len(per_source) >= 2, "the seed has annotations of several sources"
    source = per_source.index[0]
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).GetThroughput(
            pb.GetThroughputRequest(range=period, sources=[source]), metadata=bearer(ALL)
        )
    assert sum(p.annotations for p in answer.points) == per_source[source]


def test_annotator_scorecard_streams_the_annotators_views_rows(api: Api) -> None:
    period = last_hours(3)
    with api.channel() as channel:
        rows = list(
            metrics_pb2_grpc.MetricsStub(channel).StreamAnnotatorScorecard(
                pb.StreamAnnotatorScorecardRequest(range=period), metadata=bearer(ALL)
            )
        )
    expected = summaries.annotator_scorecard(filters_of(period), dashboard_fetch(api.settings))
    assert set(pb.AnnotatorScore.DESCRIPTOR.fields_by_name) == set(summaries.SCORECARD_COLUMNS)
    measures = [name for name in summaries.SCORECARD_COLUMNS if name not in ("annotator_id", "gold_ci", "flags")]
    assert [row.annotator_id for row in rows] == list(expected["annotator_id"])
    for row, want in zip(rows, expected.to_dict("records"), strict=True):
        assert row.gold_ci == want["gold_ci"]
        assert "; ".join(row.flags) == want["flags"]
        for name in measures:  # every column of the Annotators view, the optional ones None alike
            got = optional(row, name) if row.DESCRIPTOR.fields_by_name[name].has_presence else getattr(row, name)
            assert same(got, want[name]), (row.annotator_id, name, got, want[name])
    for name in measures:
        assert expected[name].notna().any(), f"the seed gives no annotator a {name}: the comparison would be empty"


def test_agreement_gives_the_projects_agreement_and_kappa_per_pair(api: Api) -> None:
    period = last_hours(3)
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).GetAgreement(
            pb.GetAgreementRequest(project_id=api.one_project, range=period), metadata=bearer(ALL)
        )
    fetch = dashboard_fetch(api.settings)
    filters = filters_of(period, (api.one_project,))
    overall = fetch(queries.agreement(filters)).iloc[0]
    pairs = fetch(queries.pair_kappa(filters))
    assert answer.tasks == overall["tasks"] > 0
    assert same(optional(answer, "krippendorff_alpha"), overall["krippendorff_alpha"])
    assert same(optional(answer, "percent_agreement"), overall["percent_agreement"])
    assert [(p.annotator_a, p.annotator_b, p.items) for p in answer.pairs] == list(
        pairs[["annotator_a", "annotator_b", "items"]].itertuples(index=False, name=None)
    )
    for pair, kappa in zip(answer.pairs, pairs["cohen_kappa"], strict=True):
        assert same(optional(pair, "cohen_kappa"), kappa)


def test_alerts_lists_those_firing_and_pending_and_the_history(api: Api) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        # rule, fingerprint, project, state, previous, at
        ("slow", "f1", api.one_project, "pending", "inactive", now - timedelta(minutes=30)),
        ("slow", "f1", api.one_project, "firing", "pending", now - timedelta(minutes=20)),
        ("stuck", "f2", "elsewhere", "firing", "pending", now - timedelta(minutes=10)),
        ("stuck", "f2", "elsewhere", "resolved", "firing", now - timedelta(minutes=5)),
    ]
    columns = ["at", "rule", "fingerprint", "labels", "state", "previous_state", "value", "active_since", "summary"]
    data = [[at, r, f, {"project": p}, s, ps, 1.5, at, f"{r} in {p}"] for r, f, p, s, ps, at in rows]
    connect(api.settings).insert(ALERT_HISTORY.name, data, column_names=columns)
    with api.channel() as channel:
        answer = metrics_pb2_grpc.MetricsStub(channel).ListAlerts(
            pb.ListAlertsRequest(range=last_hours(1)), metadata=bearer(ALL)
        )
    assert [(a.rule, a.state, a.labels["project"]) for a in answer.active] == [("slow", "firing", api.one_project)]
    assert [(t.rule, t.state) for t in answer.history] == [(r, s) for r, _, _, s, _, _ in reversed(rows)]
    assert answer.history[0].value == 1.5


# ------------------------------------------------------------------ scoping and errors


def code_of(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_a_token_for_one_project_sees_only_that_project(api: Api) -> None:
    period = last_hours(3)
    with api.channel() as channel:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        projects = stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(ONE))
        series = stub.GetThroughput(pb.GetThroughputRequest(range=period), metadata=bearer(ONE))
        scorecard = list(
            stub.StreamAnnotatorScorecard(pb.StreamAnnotatorScorecardRequest(range=period), metadata=bearer(ONE))
        )
    assert list(projects.project_ids) == [api.one_project]
    assert {point.project_id for point in series.points} == {api.one_project}
    expected = summaries.annotator_scorecard(filters_of(period, (api.one_project,)), dashboard_fetch(api.settings))
    assert [(row.annotator_id, row.annotations) for row in scorecard] == list(
        expected[["annotator_id", "annotations"]].itertuples(index=False, name=None)
    )


def test_reads_side_by_side_each_keep_their_callers_projects(api: Api) -> None:
    """The API runs a call's queries at once (Reads.many); each carries its caller's scope, whatever runs
    beside it on the same client — here one caller's reads and an unscoped caller's, interleaved."""
    reader = Reader(api.settings)
    one, everyone = Reads(reader, (api.one_project,), None), Reads(reader, None, None)
    wanted = {n: queries.project_names() for n in range(16)}
    with ThreadPoolExecutor(2) as callers:
        scoped, unscoped = callers.submit(one.many, wanted), callers.submit(everyone.many, wanted)
        scoped_frames, unscoped_frames = scoped.result(), unscoped.result()
    every = list(dashboard_fetch(api.settings)(queries.project_names())["project_id"])
    assert len(every) >= 2
    assert [list(frame["project_id"]) for frame in scoped_frames.values()] == [[api.one_project]] * len(wanted)
    assert [list(frame["project_id"]) for frame in unscoped_frames.values()] == [every] * len(wanted)


def test_another_projects_data_is_permission_denied(api: Api) -> None:
    projects = dashboard_fetch(api.settings)(queries.project_names())["project_id"]
    other = next(project for project in projects if project != api.one_project)
    with api.channel() as channel:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        summary = code_of(
            lambda: stub.GetProjectSummary(
                pb.GetProjectSummaryRequest(project_id=other, range=last_hours(1)), metadata=bearer(ONE)
            )
        )
        series = code_of(
            lambda: stub.GetThroughput(
                pb.GetThroughputRequest(range=last_hours(1), project_ids=[other]), metadata=bearer(ONE)
            )
        )
        watch = code_of(lambda: next(stub.WatchProject(pb.WatchProjectRequest(project_id=other), metadata=bearer(ONE))))
    for error in (summary, series, watch):
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert repr(other) in error.details()


def test_a_call_without_a_known_token_is_unauthenticated(api: Api) -> None:
    with api.channel() as channel:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        missing = code_of(lambda: stub.ListProjects(pb.ListProjectsRequest()))
        unknown = code_of(lambda: stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(OTHER)))
    assert missing.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in missing.details()


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetThroughputRequest(), "range"),
        (pb.GetThroughputRequest(range=pb.TimeRange(start=last_hours(1).end, end=last_hours(1).start)), "range.end"),
        (pb.GetThroughputRequest(range=last_hours(1), bucket_seconds=90), "bucket_seconds"),
        (pb.GetThroughputRequest(range=last_hours(1), annotator_ids=["a"], bucket_seconds=600), "bucket_seconds"),
        (pb.GetThroughputRequest(range=last_hours(1), annotator_ids=["a"], labels=["cat"]), "annotator_ids"),
        (pb.GetThroughputRequest(range=last_hours(1), project_ids=[""]), "project_ids"),
    ],
)
def test_bad_filters_and_ranges_are_invalid_arguments_naming_the_field(
    api: Api, request_: pb.GetThroughputRequest, field: str
) -> None:
    with api.channel() as channel:
        error = code_of(lambda: metrics_pb2_grpc.MetricsStub(channel).GetThroughput(request_, metadata=bearer(ALL)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()


def test_a_missing_project_id_is_an_invalid_argument(api: Api) -> None:
    with api.channel() as channel:
        error = code_of(
            lambda: metrics_pb2_grpc.MetricsStub(channel).GetAgreement(
                pb.GetAgreementRequest(range=last_hours(1)), metadata=bearer(ALL)
            )
        )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("project_id:")


# A read that takes a minute on the embedded ClickHouse: in a database of its own, the rollup ListProjects
# reads is a view sleeping a tenth of a second on each of its 600 rows, one row a block, so that ClickHouse
# checks max_execution_time between them.
SLOW_ROLLUP = (
    "CREATE VIEW {database}.rollup_project_minute AS SELECT toString(number) AS project_id "
    "FROM system.numbers WHERE sleepEachRow(0.1) = 0 LIMIT 600 SETTINGS max_block_size = 1"
)


@pytest.fixture
def slow(clickhouse_service: ClickHouseService) -> Iterator[ClickHouseSettings]:
    settings = replace(clickhouse_service.settings, database=f"slow_{uuid.uuid4().hex[:10]}")
    admin = connect(clickhouse_service.settings, database="default")
    admin.command(f"CREATE DATABASE {settings.database}")
    admin.command(SLOW_ROLLUP.format(database=settings.database))
    yield settings
    admin.command(f"DROP DATABASE {settings.database} SYNC")
    admin.close()


def reads_running(settings: ClickHouseSettings) -> int:
    """Queries ClickHouse is running in the settings' database."""
    return int(
        connect(settings, database="default").command(
            "SELECT count() FROM system.processes WHERE current_database = {database:String}",
            parameters={"database": settings.database},
        )
    )


def test_clickhouse_stops_a_read_at_a_deadline_of_a_fraction_of_a_second(slow: ClickHouseSettings) -> None:
    with pytest.raises(QueryTimedOut, match=r"maximum: 300\.000 ms"):
        ScopedClient(slow).frame(queries.project_names().sql, {}, None, timeout_s=0.3)


def test_the_server_stops_its_read_at_the_callers_deadline(slow: ClickHouseSettings, tmp_path: Path) -> None:
    process, address, _ = start_api(slow, tmp_path / "api.log", None)
    try:
        with grpc.insecure_channel(address) as channel:
            started = time.monotonic()
            call = metrics_pb2_grpc.MetricsStub(channel).ListProjects.future(pb.ListProjectsRequest(), timeout=5.0)
            wait_for(lambda: reads_running(slow) == 1, 5, "ClickHouse running the call's read")
            error = call.exception()
            answered_s = time.monotonic() - started
            # The read would go on for a minute: ClickHouse stops it at the deadline the server passed on.
            wait_for(lambda: reads_running(slow) == 0, 15, "ClickHouse stopping the read after the deadline")
            stopped_s = time.monotonic() - started
    finally:
        terminate(process, timeout_s=30)
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert answered_s < 15 and stopped_s < 20, (answered_s, stopped_s)  # not the read's minute


def test_while_clickhouse_is_down_calls_are_unavailable_and_health_says_not_serving(
    clickhouse_service: ClickHouseService, tmp_path: Path
) -> None:
    nowhere = replace(clickhouse_service.settings, port=free_port())  # nothing listens there
    process, address, _ = start_api(nowhere, tmp_path / "api.log", None)
    try:
        with grpc.insecure_channel(address) as channel:
            error = code_of(lambda: metrics_pb2_grpc.MetricsStub(channel).ListProjects(pb.ListProjectsRequest()))
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    finally:
        terminate(process, timeout_s=30)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "ClickHouse" in error.details()
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_a_port_another_api_holds_is_refused_naming_the_setting(api: Api) -> None:
    port = api.address.rsplit(":", 1)[1]
    result = run_cli("api", env={"LABELPULSE_API_PORT": port, "LABELPULSE_API_METRICS_PORT": "0"})
    assert result.returncode == 2
    assert f"cannot serve the API on 127.0.0.1:{port}" in result.stderr and "LABELPULSE_API_PORT" in result.stderr


def test_with_a_certificate_and_key_the_api_speaks_tls(api: Api, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    self_signed = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    names = ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run([system_tool("openssl", "openssl"), *self_signed, *names], check=True, capture_output=True)
    process, address, _ = start_api(api.settings, tmp_path / "api.log", None, tls=(cert, key))
    try:
        with grpc.secure_channel(address, grpc.ssl_channel_credentials(cert.read_bytes())) as channel:
            projects = metrics_pb2_grpc.MetricsStub(channel).ListProjects(pb.ListProjectsRequest(), timeout=30)
        with grpc.insecure_channel(address) as channel:
            plaintext = code_of(
                lambda: metrics_pb2_grpc.MetricsStub(channel).ListProjects(pb.ListProjectsRequest(), timeout=10)
            )
    finally:
        terminate(process, timeout_s=30)
    assert list(projects.project_ids) == list(dashboard_fetch(api.settings)(queries.project_names())["project_id"])
    assert plaintext.code() == grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------ live, health, reflection, metrics


def test_watch_project_pushes_a_new_summary_within_seconds_of_events_landing(api: Api) -> None:
    later = replace(PLAN, seed=12, start=datetime.now(UTC) - timedelta(minutes=5))
    more = [message.value for message in islice(generate(later), 400)]
    project = api.one_project
    assert any(json.loads(value)["project_id"] == project for value in more)
    with api.channel() as channel:
        stream = metrics_pb2_grpc.MetricsStub(channel).WatchProject(
            pb.WatchProjectRequest(project_id=project, window_seconds=3600, interval_seconds=1),
            metadata=bearer(ALL),
            timeout=120,  # the bound on the wait: a summary that never comes fails the test
        )
        first = next(stream)
        client = connect(api.settings)
        load(more, lambda: client, topic="more")  # offsets of a topic of their own: not a replay of the seed
        landed = time.monotonic()
        second = next(stream)
        pushed_after_s = time.monotonic() - landed
        stream.cancel()
    # Polled every second: a change seen at the next poll, or a few later on a busy machine — not never.
    assert pushed_after_s < 10, f"the new summary came {pushed_after_s:.1f} s after the events were stored"
    assert second.annotations_per_hour.value > first.annotations_per_hour.value
    assert second.newest_event_at.ToDatetime() > first.newest_event_at.ToDatetime()


def test_watchers_of_one_project_share_one_poll(api: Api) -> None:
    request = pb.WatchProjectRequest(project_id=api.one_project, interval_seconds=2)
    # Watches of earlier tests end as the server notices their cancellation.
    wait_for(lambda: metric_values(api.metrics_url)["labelpulse_api_watchers"] == 0, 60, "earlier watches to end")
    with api.channel() as channel:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        streams = [stub.WatchProject(request, metadata=bearer(ALL), timeout=120) for _ in range(5)]
        for stream in streams:
            next(stream)  # each watcher has its first summary
        watching = metric_values(api.metrics_url)
        for stream in streams:
            stream.cancel()
    assert watching["labelpulse_api_watchers"] == 5
    assert watching["labelpulse_api_watch_polls"] == 1
    wait_for(lambda: metric_values(api.metrics_url)["labelpulse_api_watch_polls"] == 0, 60, "the poll to stop")


def metric_values(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and not line.startswith("#")
    }


def test_health_checking_answers_serving(api: Api) -> None:
    with api.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        overall = stub.Check(health_pb2.HealthCheckRequest(service=""))
        service = stub.Check(health_pb2.HealthCheckRequest(service="labelpulse.v1.Metrics"))
    assert overall.status == service.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services_and_describes_the_protobuf(api: Api) -> None:
    with api.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="labelpulse.v1.Metrics"),
        ]
        listed, described = list(stub.ServerReflectionInfo(iter(requests)))
    services = {service.name for service in listed.list_services_response.service}
    assert {"labelpulse.v1.Metrics", "grpc.health.v1.Health"} <= services
    assert described.file_descriptor_response.file_descriptor_proto


def test_requests_are_counted_per_method_and_code_on_metrics(api: Api) -> None:
    with api.channel() as channel:
        stub = metrics_pb2_grpc.MetricsStub(channel)
        stub.ListProjects(pb.ListProjectsRequest(), metadata=bearer(ALL))
        code_of(lambda: stub.ListProjects(pb.ListProjectsRequest()))
    values = metric_values(api.metrics_url)
    assert values['labelpulse_api_requests_total{code="OK",method="ListProjects"}'] >= 1
    assert values['labelpulse_api_requests_total{code="UNAUTHENTICATED",method="ListProjects"}'] >= 1
    assert values['labelpulse_api_request_duration_seconds_count{method="ListProjects"}'] >= 2


def test_the_readmes_client_example_runs(api: Api) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### gRPC: `labelpulse api`", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    example = example.replace("127.0.0.1:50051", api.address).replace("Bearer my-token", f"Bearer {ALL}")
    result = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert "annotations/h" in result.stdout and "now:" in result.stdout
