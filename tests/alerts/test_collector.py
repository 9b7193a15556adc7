"""Business gauges as Prometheus scrapes them, against the real embedded ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts.collector import BusinessCollector
from labelpulse.net import free_port
from labelpulse.simulator import Plan, generate
from schema.client import ClickHouseSettings, connect
from streams.offline import load
from tests.support.references import expected_from


def scrape(collector: BusinessCollector) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels.get("project", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.clickhouse
def test_project_gauges_equal_pandas_counts(migrated: Client) -> None:
    plan = Plan(seed=9, start=datetime.now(UTC) - timedelta(minutes=50), rate=1)
    values = [message.value for message in islice(generate(plan), 1500)]
    load(values, lambda: migrated)
    events, _ = expected_from(values)
    gauges = scrape(BusinessCollector(lambda: migrated))
    assert gauges[("labelpulse_business_up", "")] == 1
    for project, group in events.groupby("project_id"):
        count = group["event_type"].value_counts()
        assert gauges[("labelpulse_project_annotations_last_hour", project)] == count.get("annotation_submitted", 0)
        backlog = count.get("task_created", 0) - count.get("task_completed", 0)
        assert gauges[("labelpulse_project_backlog", project)] == backlog
        assert gauges[("labelpulse_project_reviews_last_day", project)] == count.get("review_completed", 0)
        assert 0 <= gauges[("labelpulse_project_seconds_since_last_event", project)] < 3600
    labels = {project for name, project in gauges if name.startswith("labelpulse_project_")}
    assert labels == set(events["project_id"]), "one label value per project, nothing else"


def test_an_unreachable_clickhouse_gives_up_zero_not_a_failed_scrape() -> None:
    settings = ClickHouseSettings(port=free_port())
    gauges = scrape(BusinessCollector(lambda: connect(settings)))
    assert gauges == {("labelpulse_business_up", ""): 0}
