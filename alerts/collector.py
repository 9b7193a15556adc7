"""Business gauges for Prometheus, read from ClickHouse's rollups at scrape time.

Register `BusinessCollector` in the registry a process serves (the alert evaluator does), and
every scrape asks ClickHouse afresh — nothing is cached between scrapes, so Prometheus sees what
the dashboard sees. Labels are per project only: never annotator or task ids (unbounded).
If ClickHouse does not answer, the scrape still succeeds with `labelpulse_business_up 0`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schema import metric_definitions as metric
from schema.client import ClickHouseUnavailable
from schema.metric_definitions import GAUGES, gauge

FIRST_PASS, GOLD = metric.FIRST_PASS_ACCEPTANCE, metric.GOLD_ACCURACY

log = logging.getLogger("labelpulse.collector")

# Bound parameters: the scrape's moment and the starts of its windows.
NOW = "{now:DateTime64(3, 'UTC')}"
LAST_HOUR = metric.in_minutes("{hour_ago:DateTime64(3, 'UTC')}", NOW)
LAST_DAY = metric.in_hours("{day_ago:DateTime64(3, 'UTC')}", NOW)


def windows(now: datetime) -> dict[str, datetime]:
    """PROJECT_SQL's bound parameters for a scrape at `now`."""
    return {"now": now, "hour_ago": now - timedelta(hours=1), "day_ago": now - timedelta(days=1)}


# One row per project; every column after project_id is the gauge of that name (schema.metric_definitions.GAUGES).
PROJECT_SQL = f"""
SELECT
    p.project_id AS project_id,
    p.annotations_last_hour AS annotations_last_hour,
    p.tasks_completed_last_hour AS tasks_completed_last_hour,
    p.backlog AS backlog,
    p.seconds_since_last_event AS seconds_since_last_event,
    r.reviews AS reviews_last_day,
    r.first_pass_accepted AS first_pass_accepted_last_day,
    g.gold_answers AS gold_answers_last_day,
    g.gold_correct AS gold_correct_last_day
FROM
(
    SELECT
        project_id,
        {metric.ANNOTATIONS_SUBMITTED.sql(LAST_HOUR)} AS annotations_last_hour,
        {metric.TASKS_COMPLETED.sql(LAST_HOUR)} AS tasks_completed_last_hour,
        {metric.BACKLOG} AS backlog,
        {metric.seconds_since_newest_event(NOW)} AS seconds_since_last_event
    FROM rollup_project_minute
    WHERE minute < {NOW}
    GROUP BY project_id
) AS p
LEFT JOIN
(
    SELECT project_id, {FIRST_PASS.trials.sql()} AS reviews, {FIRST_PASS.successes.sql()} AS first_pass_accepted
    FROM rollup_review_rounds_hour
    WHERE {LAST_DAY}
    GROUP BY project_id
) AS r USING (project_id)
LEFT JOIN
(
    SELECT project_id, {GOLD.trials.sql()} AS gold_answers, {GOLD.successes.sql()} AS gold_correct
    FROM rollup_gold_hour
    WHERE {LAST_DAY}
    GROUP BY project_id
) AS g USING (project_id)
ORDER BY project_id
"""


class BusinessCollector(Collector):
    def __init__(
        self, client_factory: Callable[[], Client], clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client_factory = client_factory
        self._clock = clock  # what "now" is at a scrape (tests set it)
        self._client: Client | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected fresh on each scrape: nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.perf_counter()
        up = GaugeMetricFamily("labelpulse_business_up", "1 if ClickHouse answered this scrape's queries")
        try:
            if self._client is None:
                self._client = self._client_factory()
            now = self._clock()
            result = self._client.query(PROJECT_SQL, parameters=windows(now))
        except (ClickHouseError, ClickHouseUnavailable) as exc:
            log.warning("business gauges unavailable: %s", str(exc).splitlines()[0][:200])
            self._client = None
            up.add_metric([], 0)
            yield up
            return
        families = {
            column: GaugeMetricFamily(gauge(column), text, labels=["project"]) for column, text in GAUGES.items()
        }
        for row in result.named_results():
            for column, family in families.items():
                value = row[column]
                if value is not None:
                    family.add_metric([row["project_id"]], float(value))
        yield from families.values()
        up.add_metric([], 1)
        yield up
        duration = GaugeMetricFamily(
            "labelpulse_business_scrape_duration_seconds", "Time the business gauges took to read"
        )
        duration.add_metric([], time.perf_counter() - started)
        yield duration
