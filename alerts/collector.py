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

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schema.client import ClickHouseUnavailable

log = logging.getLogger("labelpulse.collector")

# One row per project; every column after project_id becomes a gauge (name: help text).
PROJECT_SQL = """
SELECT
    p.project_id AS project_id,
    p.annotations_last_hour AS annotations_last_hour,
    p.tasks_completed_last_hour AS tasks_completed_last_hour,
    p.backlog AS backlog,
    dateDiff('millisecond', p.newest_occurred_at, now64(3)) / 1000 AS seconds_since_last_event,
    r.reviews AS reviews_last_day,
    r.first_pass_accepted AS first_pass_accepted_last_day,
    g.gold_answers AS gold_answers_last_day,
    g.gold_correct AS gold_correct_last_day
FROM
(
    SELECT
        project_id,
        sumIf(annotations_submitted, minute >= now() - INTERVAL 1 HOUR) AS annotations_last_hour,
        sumIf(tasks_completed, minute >= now() - INTERVAL 1 HOUR) AS tasks_completed_last_hour,
        toInt64(sum(tasks_created)) - toInt64(sum(tasks_completed)) AS backlog,
        max(last_occurred_at) AS newest_occurred_at
    FROM rollup_project_minute
    GROUP BY project_id
) AS p
LEFT JOIN
(
    SELECT project_id, sum(reviews) AS reviews, sum(first_pass_accepted) AS first_pass_accepted
    FROM rollup_review_rounds_hour
    WHERE hour >= now() - INTERVAL 1 DAY
    GROUP BY project_id
) AS r USING (project_id)
LEFT JOIN
(
    SELECT project_id, sum(gold_answers) AS gold_answers, sum(gold_correct) AS gold_correct
    FROM rollup_gold_hour
    WHERE hour >= now() - INTERVAL 1 DAY
    GROUP BY project_id
) AS g USING (project_id)
ORDER BY project_id
"""

GAUGES = {
    "annotations_last_hour": "Annotations submitted in the last hour",
    "tasks_completed_last_hour": "Tasks completed in the last hour",
    "backlog": "Tasks created minus tasks completed, all time",
    "seconds_since_last_event": "Seconds since the newest stored event happened",
    "reviews_last_day": "Reviews in the last 24 hours",
    "first_pass_accepted_last_day": "Reviews in the last 24 hours accepting work never rejected before",
    "gold_answers_last_day": "Answers on gold (honeypot) tasks in the last 24 hours",
    "gold_correct_last_day": "Correct answers on gold tasks in the last 24 hours",
}


class BusinessCollector(Collector):
    def __init__(self, client_factory: Callable[[], Client]) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected fresh on each scrape: nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.perf_counter()
        up = GaugeMetricFamily("labelpulse_business_up", "1 if ClickHouse answered this scrape's queries")
        try:
            if self._client is None:
                self._client = self._client_factory()
            result = self._client.query(PROJECT_SQL)
        except (ClickHouseError, ClickHouseUnavailable) as exc:
            log.warning("business gauges unavailable: %s", str(exc).splitlines()[0][:200])
            self._client = None
            up.add_metric([], 0)
            yield up
            return
        families = {
            column: GaugeMetricFamily(f"labelpulse_project_{column}", text, labels=["project"])
            for column, text in GAUGES.items()
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
