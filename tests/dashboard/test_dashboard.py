"""The dashboard, driven with Streamlit's AppTest against a real embedded ClickHouse seeded with a
known event set: numbers on screen equal counts computed independently with pandas."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from alerts.rules import DEFAULT_RULES_DIR, load_rules
from dashboard.page import MISSING
from dashboard.presentation import bar_range, format_count
from labelpulse.net import free_port
from schema.client import ClickHouseSettings, connect
from streams.offline import load
from tests.support.dashboard import APP, HOSTILE_LINK_VALUE, count_of, create_database, evaluator_metrics, metric
from tests.support.references import expected_active_time, expected_from, expected_review_rounds
from tests.support.services import ClickHouseService

pytestmark = pytest.mark.clickhouse

EVENTS = 3000


@dataclass
class Seeded:
    settings: ClickHouseSettings
    events: pd.DataFrame
    refused: Counter[str]


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest, clickhouse_service: ClickHouseService) -> Iterator[Seeded]:
    settings, values = create_database(clickhouse_service, seed_events=EVENTS)
    events, refused = expected_from(values)
    yield Seeded(settings, events, refused)
    connect(clickhouse_service.settings, database="default").command(f"DROP DATABASE {settings.database} SYNC")


def app(
    settings: ClickHouseSettings,
    monkeypatch: pytest.MonkeyPatch,
    page: str | None = None,
    alerts_metrics_url: str | None = None,
    **params: object,
) -> AppTest:
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    # Without an evaluator of its own, a test must not find one that happens to run on this machine.
    monkeypatch.setenv("LABELPULSE_ALERTS_METRICS_URL", alerts_metrics_url or f"http://127.0.0.1:{free_port()}/metrics")
    monkeypatch.setenv("LABELPULSE_DASHBOARD_CACHE_TTL_S", "0")
    st.cache_resource.clear()  # settings and the client are cached per process: start from this test's
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_kpis_equal_pandas_counts(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch)
    assert metric(at, "Tasks completed") == f"{count_of(seeded.events, 'task_completed'):,}"
    per_hour = count_of(seeded.events, "annotation_submitted") / 6
    assert float(metric(at, "Annotations/h · range average").replace(",", "")) == pytest.approx(per_hour, abs=0.05)
    created, completed = count_of(seeded.events, "task_created"), count_of(seeded.events, "task_completed")
    assert metric(at, "Backlog") == f"{created - completed:,}"
    rounds = expected_review_rounds(seeded.events).sum()
    assert metric(at, "First-pass") == f"{rounds['first_pass_accepted'] / rounds['reviews']:.1%}"
    assert metric(at, "Freshness").endswith((" s", " min", " h"))


def test_overview_shows_the_last_hours_pace_beside_the_range_average(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range that began long before the work did: the average is diluted, the pace is not."""
    submitted = seeded.events[seeded.events["event_type"] == "annotation_submitted"]
    end = submitted["occurred_at"].min().floor("min") + pd.Timedelta(minutes=30)
    start = end - pd.Timedelta(hours=6)
    at = app(
        seeded.settings,
        monkeypatch,
        range="custom",
        **{"from": f"{start:%Y-%m-%dT%H:%M}", "to": f"{end:%Y-%m-%dT%H:%M}"},
    )
    minutes = submitted["occurred_at"].dt.floor("min")
    in_range = submitted[(minutes >= start) & (minutes < end)]
    last_hour = submitted[(minutes >= end - pd.Timedelta(hours=1)) & (minutes < end)]
    assert metric(at, "Annotations/h · last hour") == f"{len(last_hour):,}"
    assert metric(at, "Annotations/h · range average") == format_count(len(in_range) / 6)
    assert len(last_hour) > len(in_range) / 6


def test_overview_compares_projects_side_by_side(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch)
    table = at.dataframe[0].value.set_index("project_id")
    reviews = seeded.events[seeded.events["event_type"] == "review_completed"]
    for project in seeded.events["project_id"].unique():
        verdicts = reviews.loc[reviews["project_id"] == project, "verdict"]
        assert table.loc[project, "acceptance"] == pytest.approx(verdicts.isin(["accepted", "fixed"]).mean())
        assert table.loc[project, "tasks_completed"] == count_of(seeded.events, "task_completed", project)
        backlog = count_of(seeded.events, "task_created", project) - count_of(seeded.events, "task_completed", project)
        assert table.loc[project, "backlog"] == backlog


def column_configs(frame: object) -> dict[str, dict]:
    return {name: config for name, config in json.loads(frame.proto.columns).items()}  # type: ignore[attr-defined]


def test_missing_values_show_a_dash_and_each_column_says_why(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    """First-pass acceptance of a project without reviews, kappas of a single-label window: "–", not "None"."""
    for page, column, why in (
        ("views/overview.py", "first_pass_acceptance", "no reviews in the range yet"),
        ("views/overview.py", "gold_accuracy", "fewer than 10 gold answers"),
        ("views/annotators.py", "first_pass_acceptance", "no review of their work yet"),
        ("views/project.py", "krippendorff_alpha", "one label"),
        ("views/project.py", "gwet_ac1", "one label"),
    ):
        at = app(seeded.settings, monkeypatch, page=page)
        (frame,) = [frame for frame in at.dataframe if column in frame.value.columns]
        assert frame.proto.placeholder == MISSING, page
        assert f"{MISSING}: " in column_configs(frame)[column]["help"] and why in column_configs(frame)[column]["help"]
    for frame in at.dataframe:
        assert frame.proto.placeholder == MISSING


def test_the_annotators_table_shows_its_key_columns_first_and_explains_every_flag(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(seeded.settings, monkeypatch, page="views/annotators.py")
    frame = at.dataframe[0]
    configs = column_configs(frame)
    assert list(frame.proto.column_order)[:2] == ["annotator_id", "flags"]
    assert configs["annotator_id"]["pinned"] and configs["flags"]["pinned"]
    flagged = frame.value[frame.value["flags"] != ""]
    assert len(flagged) > 0
    (listed,) = [warning.value for warning in at.warning]
    for annotator, reasons in zip(flagged["annotator_id"], flagged["flags"], strict=True):
        assert f"` {annotator} `: {reasons}" in listed


def test_share_bars_are_coloured_against_the_alert_rules_targets(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    with evaluator_metrics(seeded.settings) as url:
        at = app(seeded.settings, monkeypatch, alerts_metrics_url=url)
    bars = column_configs(at.dataframe[0])
    targets = {"first_pass_acceptance": 0.5, "gold_accuracy": 0.7}  # FirstPassAcceptanceLow, GoldAccuracyLow
    for column, target in targets.items():
        low, high = bar_range(target)
        assert (
            bars[column]["type_config"] | {"min_value": low, "max_value": high, "color": "auto"}
            == bars[column]["type_config"]
        )
        assert (low + high) / 2 == pytest.approx(target)  # "auto" turns green above the middle
    for column in ("acceptance", "percent_agreement"):  # no rule sets a target for them
        assert bars[column]["type_config"]["color"] == "blue"
    assert any("targets from the alert rules: first-pass 50%, gold accuracy 70%" in c.value for c in at.caption)


def test_share_bars_are_blue_and_say_why_without_an_evaluator(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch)
    bars = column_configs(at.dataframe[0])
    assert {bars[column]["type_config"]["color"] for column in ("first_pass_acceptance", "gold_accuracy")} == {"blue"}
    assert any("Bars are blue" in c.value and "no answer from" in c.value for c in at.caption)


def test_a_project_filter_from_the_url_narrows_every_number(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    project = sorted(seeded.events["project_id"].unique())[0]
    at = app(seeded.settings, monkeypatch, project=project)
    assert metric(at, "Tasks completed") == f"{count_of(seeded.events, 'task_completed', project):,}"
    assert list(at.dataframe[0].value["project_id"]) == [project]
    assert at.query_params["project"] == project  # the link keeps the filter


def test_annotators_table_equals_pandas(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch, page="views/annotators.py")
    table = at.dataframe[0].value.set_index("annotator_id")
    submissions = seeded.events[seeded.events["event_type"] == "annotation_submitted"]
    answered = seeded.events[seeded.events["event_type"].isin(["annotation_submitted", "annotation_skipped"])]
    expected = submissions.groupby("annotator_id").size().reindex(answered["annotator_id"].unique(), fill_value=0)
    assert table["annotations"].to_dict() == expected.to_dict(), "an annotator who only skipped has 0"
    active = expected_active_time(seeded.events, 100_000).groupby("annotator_id")["active_ms"].sum() / 3_600_000
    assert table["active_hours"].sort_index().to_numpy() == pytest.approx(active.sort_index().to_numpy(), abs=1e-9)
    skips = seeded.events[seeded.events["event_type"] == "annotation_skipped"].groupby("annotator_id").size()
    expected_skip_rate = (skips / skips.add(expected, fill_value=0)).fillna(0)
    got_skip_rate = table["skip_rate"].fillna(0)
    assert got_skip_rate.sort_index().to_numpy() == pytest.approx(
        expected_skip_rate.reindex(got_skip_rate.index).fillna(0).sort_index().to_numpy()
    )
    rounds = expected_review_rounds(seeded.events)
    first_pass = (rounds["first_pass_accepted"] / rounds["reviews"]).reindex(table.index)
    assert table["first_pass_acceptance"].to_numpy() == pytest.approx(first_pass.to_numpy(), nan_ok=True)
    assert at.get("download_button")[0].proto.label.startswith("Download CSV")


def test_annotator_filter_narrows_the_table(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch, page="views/annotators.py", annotator=["ann-01", "ann-02"])
    assert sorted(at.dataframe[0].value["annotator_id"]) == ["ann-01", "ann-02"]


def test_pipeline_shows_dead_letters_by_reason(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch, page="views/pipeline.py")
    assert metric(at, "Dead letters") == f"{sum(seeded.refused.values()):,}"
    (latest,) = [frame.value for frame in at.dataframe if "rule" in frame.value.columns]
    assert 0 < len(latest) <= 20
    assert set(latest["rule"]) <= set(seeded.refused)


def test_pipeline_shows_each_source_system_and_how_long_ago_it_last_sent(
    clickhouse_service: ClickHouseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Label Studio sends every minute, CVAT stopped 50 minutes ago, some events name no source; all in range."""
    settings, _ = create_database(clickhouse_service, seed_events=0)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    sent = [("label-studio", now - timedelta(minutes=m)) for m in range(1, 91)]
    sent += [("cvat", now - timedelta(minutes=m)) for m in range(50, 120, 5)]
    sent += [(None, now - timedelta(minutes=m)) for m in (100, 200)]
    documents = [
        {
            "event_id": f"e{n}",
            "event_type": "task_created",
            "schema_version": 1,
            "occurred_at": at.isoformat(),
            "project_id": "retail",
            "task_id": f"t{n}",
            **({"source_system": source} if source else {}),
        }
        for n, (source, at) in enumerate(sent)
    ]
    try:
        load([json.dumps(document).encode() for document in documents], lambda: connect(settings))
        at = app(settings, monkeypatch, page="views/pipeline.py")
        (sources,) = [frame.value for frame in at.dataframe if "source_system" in frame.value.columns]
        sources = sources.set_index("source_system")
        assert sources["events"].to_dict() == {"label-studio": 90, "cvat": 14, "unspecified": 2}
        assert list(sources.index) == ["label-studio", "cvat", "unspecified"]  # the newest first
        assert sources.loc["cvat", "last_event_at"] == pd.Timestamp(now - timedelta(minutes=50)).tz_localize(None)
        assert sources.loc["cvat", "last_event_age"].endswith(" min")
        assert int(sources.loc["cvat", "last_event_age"].removesuffix(" min")) in (50, 51)  # as of the page's now
        (chart,) = [c for c in at.get("plotly_chart") if "by source" in c.proto.spec]
        assert {trace["name"] for trace in json.loads(chart.proto.spec)["data"]} == set(sources.index)
    finally:
        connect(clickhouse_service.settings, database="default").command(f"DROP DATABASE {settings.database} SYNC")


def test_project_view_renders_with_agreement(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch, page="views/project.py")
    agreement = at.dataframe[0].value
    assert set(agreement["project_id"]) <= set(seeded.events["project_id"])
    assert (agreement["tasks"] > 0).all()
    events = seeded.events
    gold = events[(events["event_type"] == "task_created") & (events["is_gold"] == True)]  # noqa: E712
    submissions = events[events["event_type"] == "annotation_submitted"]
    answers = submissions.merge(gold[["task_id", "gold_label"]], on="task_id", suffixes=("", "_task"))
    accuracy = (answers["label"] == answers["gold_label_task"]).mean()
    assert metric(at, "Gold accuracy") == f"{accuracy:.1%}"


def test_a_link_to_a_project_without_data_is_warned_about(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(seeded.settings, monkeypatch, project=["nope", "retail-products"])
    (warning,) = at.sidebar.warning
    assert "No data for project ` nope `" in warning.value and "data: ` retail-products `" in warning.value
    assert "` retail-products ` from the link" not in warning.value
    assert at.query_params["project"] == ["nope", "retail-products"]  # kept: it may start sending later


def test_a_selection_without_data_says_not_enough_data(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    for page in ("views/overview.py", "views/project.py", "views/annotators.py"):
        at = app(seeded.settings, monkeypatch, page=page, project="no-such-project")
        assert any("not enough data" in info.value for info in at.info), page


def test_an_empty_database_explains_how_to_start(
    clickhouse_service: ClickHouseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = create_database(clickhouse_service, seed_events=0)
    at = app(settings, monkeypatch)
    assert "No events yet" in at.info[0].value
    assert "labelpulse generate" in at.info[0].value


def test_unreachable_clickhouse_shows_a_banner_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(ClickHouseSettings(port=free_port()), monkeypatch)
    assert "ClickHouse is not answering" in at.error[0].value


def test_a_malformed_link_is_reported_and_the_view_still_renders(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(seeded.settings, monkeypatch, range="fortnight", refresh="-5", source="telepathy")
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "range='fortnight'" in warnings and "refresh='-5'" in warnings and "telepathy" in warnings
    assert metric(at, "Tasks completed") == f"{count_of(seeded.events, 'task_completed'):,}"


def test_a_database_without_the_schema_says_to_migrate(
    clickhouse_service: ClickHouseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replace(clickhouse_service.settings, database=f"bare_{uuid.uuid4().hex[:10]}")
    connect(clickhouse_service.settings, database="default").command(f"CREATE DATABASE {settings.database}")
    at = app(settings, monkeypatch)
    assert "labelpulse migrate" in at.error[0].value


# ---------------------------------------------------------------- alerts


@pytest.fixture(scope="module")
def alerted(clickhouse_service: ClickHouseService) -> Iterator[ClickHouseSettings]:
    """A small database whose alert history holds one resolved, one firing and one pending alert."""
    settings, _ = create_database(clickhouse_service, seed_events=300)
    now = datetime.now(UTC)
    rows = []

    def episode(rule: str, labels: dict[str, str], *steps: tuple[str, str, int]) -> None:
        fingerprint = uuid.uuid4().hex[:16]
        for before, after, minutes_ago in steps:
            at = now - timedelta(minutes=minutes_ago)
            since = now - timedelta(minutes=steps[0][2])
            texts = [f"{rule} summary", f"{rule} description", f"https://runbooks.example/{rule.lower()}"]
            rows.append([at, rule, fingerprint, labels, after, before, 0.5, since, *texts])

    episode("ThroughputDrop", {"severity": "page", "project": "retail-products"},
            ("inactive", "pending", 40), ("pending", "firing", 35), ("firing", "resolved", 20))  # fmt: skip
    episode("DeadLetterRateHigh", {"severity": "page"}, ("inactive", "pending", 10), ("pending", "firing", 5))
    episode("AnnotatorClickingThrough", {"severity": "ticket", "project": "street-scenes", "annotator": "ann-01"},
            ("inactive", "pending", 1))  # fmt: skip
    columns = ["at", "rule", "fingerprint", "labels", "state", "previous_state", "value", "active_since", "summary",
               "description", "runbook_url"]  # fmt: skip
    client = connect(settings)
    client.insert("alert_history", rows, column_names=columns)
    yield settings
    connect(clickhouse_service.settings, database="default").command(f"DROP DATABASE {settings.database} SYNC")


def test_alerts_view_shows_what_fires_now_with_runbooks_and_the_history(
    alerted: ClickHouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(alerted, monkeypatch, page="views/alerts.py")
    assert (metric(at, "Firing"), metric(at, "Pending")) == ("1", "1")
    now = at.dataframe[0].value
    assert list(now["alert"]) == ["DeadLetterRateHigh", "AnnotatorClickingThrough"]  # firing first
    assert list(now["runbook"]) == ["https://runbooks.example/deadletterratehigh",
                                    "https://runbooks.example/annotatorclickingthrough"]  # fmt: skip
    assert now["for"].iloc[0] == "10 min" and "annotator=ann-01" in now["labels"].iloc[1]
    history = at.dataframe[1].value
    assert len(history) == 6 and history["at"].is_monotonic_decreasing
    (timeline,) = at.get("plotly_chart")
    assert "ThroughputDrop" in timeline.proto.spec and "DeadLetterRateHigh" in timeline.proto.spec


def test_a_project_filter_keeps_that_projects_and_the_pipelines_alerts(
    alerted: ClickHouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(alerted, monkeypatch, page="views/alerts.py", project="street-scenes")
    assert set(at.dataframe[1].value["rule"]) == {"DeadLetterRateHigh", "AnnotatorClickingThrough"}


def test_firing_alerts_are_marked_on_the_charts_they_concern(
    alerted: ClickHouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def marks(at: AppTest) -> list[str]:
        layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
        return [annotation["text"] for annotation in layout.get("annotations", [])]

    assert marks(app(alerted, monkeypatch)) == ["🔔 ThroughputDrop"]  # the pipeline's alert is not a project's
    assert marks(app(alerted, monkeypatch, page="views/pipeline.py")) == ["🔔 DeadLetterRateHigh"]


def test_alerts_view_without_any_alert_says_where_alerts_come_from(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(seeded.settings, monkeypatch, page="views/alerts.py")
    assert (metric(at, "Firing"), metric(at, "Pending")) == ("0", "0")
    assert any("labelpulse alerts" in caption.value for caption in at.caption)


def test_alerts_view_lists_the_rules_being_watched_with_state_last_evaluation_and_value(
    clickhouse_service: ClickHouseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every loaded rule, evaluated or not yet, with its state, when it last ran and its value."""
    settings, values = create_database(clickhouse_service, seed_events=300)  # just stored: nothing is stale
    with evaluator_metrics(settings, skip_groups=("annotators",)) as url:
        at = app(settings, monkeypatch, page="views/alerts.py", alerts_metrics_url=url)
    (rules,) = [frame.value.set_index("rule") for frame in at.dataframe if "evaluated" in frame.value.columns]
    loaded = load_rules(DEFAULT_RULES_DIR).rules
    assert sorted(rules.index) == sorted(rule.alert for rule in loaded)
    skipped = [rule.alert for rule in loaded if rule.group == "annotators"]
    assert set(rules.loc[skipped, "state"]) == {"not evaluated yet"} and set(rules.loc[skipped, "evaluated"]) == {
        "never"
    }
    evaluated = rules.drop(index=skipped)
    assert evaluated["evaluated"].str.fullmatch(r"\d+ s ago").all()
    assert set(evaluated["state"]) <= {"inactive", "pending", "firing"}
    assert rules.loc["DataStale", "state"] == "inactive" and pd.isna(rules.loc["DataStale", "value"])
    refused = sum(expected_from(values)[1].values()) / len(values)  # the seed's garbage: over the 5 % allowed
    assert rules.loc["DeadLetterRateHigh", "state"] == "pending"  # for its `for` (5 min)
    assert rules.loc["DeadLetterRateHigh", "value"] == pytest.approx(refused, rel=0.1)
    assert any(f"{len(loaded)} rules loaded" in caption.value for caption in at.caption)


def test_alerts_view_says_nothing_is_watched_when_the_evaluator_does_not_answer(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(seeded.settings, monkeypatch, page="views/alerts.py")
    assert any("Nothing is being watched from here" in w.value and "labelpulse alerts" in w.value for w in at.warning)


def test_values_from_a_link_are_shown_as_text_not_markdown(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    value = HOSTILE_LINK_VALUE
    at = app(seeded.settings, monkeypatch, range=value, source=value, project=value)
    shown = [warning.value for warning in at.sidebar.warning]  # range and source make no sense
    at.switch_page("views/project.py").run()
    shown += [header.value for header in at.header]  # the project stays chosen
    assert len(shown) == 4, shown  # range, source and the project without data; the project stays chosen
    for text in shown:
        spans = [match.group(2) for match in re.finditer(r"(`+) (.+?) \1", text)]
        assert any(HOSTILE_LINK_VALUE in span for span in spans), text  # a code span shows it as it is
        outside = re.sub(r"(`+) (.+?) \1", "", text)
        assert not any(mark in outside for mark in ("[", "!", "<", "$", ":red", "*", "www")), outside
