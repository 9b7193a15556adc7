"""What the dashboard's views and the gRPC API ask ClickHouse: SQL and parameters, no I/O.

Every query reads rollups (or the workers' small derived tables), never raw events over a
range, and every value from the user travels as a bound parameter. Metrics and the rows a range
covers are as schema.metric_definitions defines them, for the dashboard as for every other way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schema import metric_definitions as metric
from schema.metric_definitions import exact_quantile, in_hours, in_minutes

START, END = "{start:DateTime64(3, 'UTC')}", "{end:DateTime64(3, 'UTC')}"
IN_MINUTES, IN_HOURS = in_minutes(START, END), in_hours(START, END)  # the rows of the range in a rollup


@dataclass(frozen=True)
class Filters:
    """What the user chose: a time range [start, end) in UTC and optional subsets (empty = all)."""

    start: datetime
    end: datetime
    projects: tuple[str, ...] = ()
    annotators: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Filters:
        """The same filters over the period just before: what KPI deltas compare with."""
        return Filters(self.start - self.span, self.start, self.projects, self.annotators, self.labels, self.sources)


@dataclass(frozen=True)
class Query:
    sql: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """Hashable identity, for caching."""
        return self.sql, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in self.parameters.items()))


def _between(column: str) -> str:
    return f"{column} >= {START} AND {column} < {END}"


def _where(filters: Filters, rows: str, *, annotator: bool = False, label: bool = False) -> tuple[str, dict]:
    """`rows` (IN_MINUTES, IN_HOURS, _between(column)) and the chosen subsets, with their parameters."""
    clauses = [rows]
    parameters: dict[str, Any] = {"start": filters.start, "end": filters.end}
    if filters.projects:
        clauses.append("project_id IN {projects:Array(String)}")
        parameters["projects"] = list(filters.projects)
    if annotator and filters.annotators:
        clauses.append("annotator_id IN {annotators:Array(String)}")
        parameters["annotators"] = list(filters.annotators)
    if label and filters.labels:
        clauses.append("label IN {labels:Array(String)}")
        parameters["labels"] = list(filters.labels)
    if label and filters.sources:
        clauses.append("source IN {sources:Array(String)}")
        parameters["sources"] = list(filters.sources)
    return " AND ".join(clauses), parameters


def _only_projects(filters: Filters, parameters: dict[str, Any], keyword: str) -> str:
    """`<keyword> project_id IN {projects}` when projects are chosen (binding them), else nothing."""
    if not filters.projects:
        return ""
    parameters["projects"] = list(filters.projects)
    return f"{keyword} project_id IN {{projects:Array(String)}}"


def _over_window(view: str, filters: Filters, order_by: str) -> Query:
    """A parameterized agreement view (agreement_summary, pair_kappa) over the range."""
    parameters: dict[str, Any] = {"from": filters.start, "to": filters.end}
    projects = _only_projects(filters, parameters, "WHERE")
    return Query(
        f"SELECT * FROM {view}(from={{from:DateTime64(3, 'UTC')}}, to={{to:DateTime64(3, 'UTC')}}) "
        f"{projects} ORDER BY {order_by}",
        parameters,
    )


# Bucket widths for time series, in seconds, and what a chart calls them.
BUCKETS = {60: "minute", 300: "5 min", 900: "15 min", 3600: "hour", 6 * 3600: "6 h", 86_400: "day", 7 * 86_400: "week"}


def bucket_seconds(span: timedelta) -> int:
    """A bucket width giving a readable number of points (at most ~200) for the range."""
    return next((seconds for seconds in BUCKETS if span.total_seconds() / seconds <= 200), max(BUCKETS))


# ---------------------------------------------------------------- overview and pipeline


def data_as_of() -> Query:
    """When the newest event happened and when a worker stored it; NULLs on an empty database."""
    return Query(
        "SELECT if(count() = 0, NULL, max(last_occurred_at)) AS newest_occurred_at, "
        "if(count() = 0, NULL, max(last_received_at)) AS newest_received_at FROM rollup_project_minute"
    )


def project_names() -> Query:
    return Query("SELECT DISTINCT project_id FROM rollup_project_minute ORDER BY project_id")


def annotator_names(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS)
    return Query(f"SELECT DISTINCT annotator_id FROM rollup_annotator_hour WHERE {where} ORDER BY 1", parameters)


def label_names(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS)
    return Query(f"SELECT DISTINCT label FROM rollup_label_hour WHERE {where} ORDER BY 1 LIMIT 500", parameters)


def project_totals(filters: Filters) -> Query:
    """Per project over the range: volumes and active annotators."""
    where, parameters = _where(filters, IN_MINUTES)
    return Query(
        f"""
SELECT
    project_id,
    {metric.ANNOTATIONS_SUBMITTED.sql()} AS annotations,
    sum(annotations_skipped) AS skips,
    {metric.TASKS_CREATED.sql()} AS tasks_created,
    {metric.TASKS_COMPLETED.sql()} AS tasks_completed,
    sum(reviews_completed) AS reviews,
    uniqMerge(annotators) AS annotators
FROM rollup_project_minute
WHERE {where}
GROUP BY project_id
ORDER BY project_id""",
        parameters,
    )


def backlog(filters: Filters, rate_window: timedelta = metric.PACE_WINDOW) -> Query:
    """Per project: the backlog at the end of the range, and completions and annotations in the last
    `rate_window` before it — the current pace (the ETA assumes the completions')."""
    parameters: dict[str, Any] = {"end": filters.end, "rate_from": filters.end - rate_window}
    project = _only_projects(filters, parameters, "AND")
    recently = in_minutes("{rate_from:DateTime64(3, 'UTC')}", END)
    return Query(
        f"""
SELECT
    project_id,
    {metric.BACKLOG} AS backlog,
    {metric.TASKS_COMPLETED.sql(recently)} AS completed_recently,
    {metric.ANNOTATIONS_SUBMITTED.sql(recently)} AS annotations_recently
FROM rollup_project_minute
WHERE minute < {END} {project}
GROUP BY project_id
ORDER BY project_id""",
        parameters,
    )


def throughput(filters: Filters, bucket: int | None = None) -> Query:
    """Per project and bucket (seconds, whole minutes; by default as bucket_seconds picks it): annotations,
    completed tasks, reviews."""
    where, parameters = _where(filters, IN_MINUTES)
    parameters["bucket"] = bucket or bucket_seconds(filters.span)
    return Query(
        f"""
SELECT
    toStartOfInterval(minute, toIntervalSecond({{bucket:UInt32}})) AS bucket,
    project_id,
    {metric.ANNOTATIONS_SUBMITTED.sql()} AS annotations,
    {metric.TASKS_COMPLETED.sql()} AS tasks_completed,
    sum(reviews_completed) AS reviews
FROM rollup_project_minute
WHERE {where}
GROUP BY bucket, project_id
ORDER BY bucket, project_id""",
        parameters,
    )


def throughput_by_annotator(filters: Filters, bucket: int = 3600) -> Query:
    """Per project and bucket (whole hours): annotations submitted by the chosen annotators."""
    return _hourly_annotations("rollup_annotator_hour", "annotations_submitted", filters, bucket, annotator=True)


def throughput_by_label(filters: Filters, bucket: int = 3600) -> Query:
    """Per project and bucket (whole hours): annotations of the chosen label classes and sources."""
    return _hourly_annotations("rollup_label_hour", "annotations", filters, bucket, label=True)


def _hourly_annotations(rollup: str, column: str, filters: Filters, bucket: int, **narrowed_by: bool) -> Query:
    where, parameters = _where(filters, IN_HOURS, **narrowed_by)
    parameters["bucket"] = bucket
    return Query(
        f"""
SELECT toStartOfInterval(hour, toIntervalSecond({{bucket:UInt32}})) AS bucket, project_id,
       sum({column}) AS annotations
FROM {rollup}
WHERE {where}
GROUP BY bucket, project_id
ORDER BY bucket, project_id""",
        parameters,
    )


_REVIEW_OUTCOMES = f"""
    {metric.REVIEWED.sql()} AS reviewed,
    {metric.ACCEPTED.sql()} AS accepted,
    {metric.FIXED.sql()} AS fixed,
    {metric.REJECTED.sql()} AS rejected,
    {metric.ACCEPTANCE_SCORE.sql()} AS acceptance_score,
    {metric.REJECTION_RATE.sql()} AS rejection_rate"""


def review_totals(filters: Filters, by: str = "project_id") -> Query:
    """Review verdicts over the range, per project (or per reviewed annotator)."""
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT {by}, {_REVIEW_OUTCOMES}
FROM rollup_review_hour
WHERE {where}
GROUP BY {by}
ORDER BY {by}""",
        parameters,
    )


def first_pass_totals(filters: Filters, by: str = "project_id") -> Query:
    """Reviews, first-pass acceptances (accepted, never rejected before) and rework, per project or annotator.
    first_pass_reviews: the reviews first-pass acceptance is judged on (none that came too late)."""
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    first_pass = metric.FIRST_PASS_ACCEPTANCE
    return Query(
        f"""
SELECT {by}, {first_pass.trials.sql()} AS first_pass_reviews, {first_pass.successes.sql()} AS first_pass_accepted,
       {first_pass.sql()} AS first_pass_acceptance, sum(rework_reviews) AS rework_reviews
FROM rollup_review_rounds_hour
WHERE {where}
GROUP BY {by}
ORDER BY {by}""",
        parameters,
    )


def gold_totals(filters: Filters, by: str = "project_id") -> Query:
    """Answers on gold tasks, how many were right, and gold accuracy (judge it from MIN_GOLD_ANSWERS on)."""
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    gold = metric.GOLD_ACCURACY
    return Query(
        f"""
SELECT {by}, {gold.trials.sql()} AS gold_answers, {gold.successes.sql()} AS gold_correct,
       {gold.sql()} AS gold_accuracy
FROM rollup_gold_hour
WHERE {where}
GROUP BY {by}
ORDER BY {by}""",
        parameters,
    )


def agreement(filters: Filters) -> Query:
    return _over_window("agreement_summary", filters, "project_id")


# ---------------------------------------------------------------- project


def label_throughput(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, label=True)
    return Query(
        f"""
SELECT label, source, sum(annotations) AS annotations,
       sum(prelabeled) AS prelabeled, sum(prelabel_kept) AS prelabel_kept
FROM rollup_label_hour
WHERE {where}
GROUP BY label, source
ORDER BY annotations DESC, label, source
LIMIT 200""",
        parameters,
    )


def handle_time_over_time(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT
    hour,
    {exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.5)} / 1000 AS p50_s,
    {exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.9)} / 1000 AS p90_s,
    sum(handle_time_count) AS timed
FROM rollup_annotator_hour
WHERE {where}
GROUP BY hour
HAVING timed > 0
ORDER BY hour""",
        parameters,
    )


def burndown(filters: Filters) -> Query:
    """Backlog at the end of each bucket of the range (tasks created minus completed so far)."""
    parameters: dict[str, Any] = {"start": filters.start, "end": filters.end, "bucket": bucket_seconds(filters.span)}
    project = _only_projects(filters, parameters, "AND")
    return Query(
        f"""
SELECT bucket, sum(net) OVER (ORDER BY bucket) AS backlog
FROM (
    SELECT
        greatest(toStartOfInterval(minute, toIntervalSecond({{bucket:UInt32}})),
                 toStartOfInterval(toDateTime({{start:DateTime64(3, 'UTC')}}), toIntervalSecond({{bucket:UInt32}})))
            AS bucket,
        {metric.BACKLOG} AS net
    FROM rollup_project_minute
    WHERE minute < {{end:DateTime64(3, 'UTC')}} {project}
    GROUP BY bucket
)
ORDER BY bucket""",
        parameters,
    )


def quality_over_time(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT hour, {_REVIEW_OUTCOMES}
FROM rollup_review_hour
WHERE {where}
GROUP BY hour
ORDER BY hour""",
        parameters,
    )


def first_pass_over_time(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    first_pass = metric.FIRST_PASS_ACCEPTANCE
    return Query(
        f"""
SELECT hour, {first_pass.sql()} AS first_pass_acceptance
FROM rollup_review_rounds_hour
WHERE {where}
GROUP BY hour
HAVING {first_pass.trials.sql()} > 0
ORDER BY hour""",
        parameters,
    )


def rejection_reasons(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT if(reason = '', '(no reason given)', reason) AS reason, sum(reviews) AS rejections
FROM rollup_review_hour
WHERE {where} AND verdict = 'rejected'
GROUP BY reason
ORDER BY rejections DESC
LIMIT 20""",
        parameters,
    )


def pair_kappa(filters: Filters) -> Query:
    return _over_window("pair_kappa", filters, "project_id, annotator_a, annotator_b")


def confusion_pairs(filters: Filters) -> Query:
    """The label pairs annotators most often disagree on (each unordered pair once), from first answers."""
    where, parameters = _where(filters, _between("labeled_at"))
    return Query(
        f"""
SELECT least(label_a, label_b) AS label_1, greatest(label_a, label_b) AS label_2, sum(sign) AS disagreements
FROM pair_agreement_changes
WHERE {where} AND label_a != label_b
GROUP BY label_1, label_2
HAVING disagreements > 0
ORDER BY disagreements DESC, label_1, label_2
LIMIT 10""",
        parameters,
    )


# ---------------------------------------------------------------- annotators


def annotator_output(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT
    annotator_id,
    sum(annotations_submitted) AS annotations,
    sum(annotations_manual) AS manual,
    sum(annotations_model_assisted) AS model_assisted,
    sum(annotations_skipped) AS skips,
    {metric.SKIP_RATE.sql()} AS skip_rate,
    {exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.5)} / 1000 AS handle_p50_s,
    {exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.9)} / 1000 AS handle_p90_s,
    min(first_event_at) AS first_event_at,
    max(last_event_at) AS last_event_at
FROM rollup_annotator_hour
WHERE {where}
GROUP BY annotator_id
ORDER BY annotator_id""",
        parameters,
    )


def annotator_active_time(filters: Filters) -> Query:
    where, parameters = _where(filters, IN_HOURS, annotator=True)
    return Query(
        f"""
SELECT annotator_id, {metric.ACTIVE_HOURS} AS active_hours, sum(sessions) AS sessions
FROM rollup_active_hour
WHERE {where}
GROUP BY annotator_id
ORDER BY annotator_id""",
        parameters,
    )


def annotator_peer_agreement(filters: Filters) -> Query:
    """Per annotator: share of their first answers on overlapping tasks that equal a peer's on the same task."""
    where, parameters = _where(filters, _between("labeled_at"))
    return Query(
        f"""
SELECT annotator_id, sum(sign * (label_a = label_b)) / sum(sign) AS peer_agreement, sum(sign) AS peer_pairs
FROM pair_agreement_changes
ARRAY JOIN [annotator_a, annotator_b] AS annotator_id
WHERE {where}
GROUP BY annotator_id
HAVING peer_pairs > 0
ORDER BY annotator_id""",
        parameters,
    )


def annotator_hours(filters: Filters, annotator_id: str) -> Query:
    """One annotator hour by hour: output, handle time, active time."""
    where, parameters = _where(filters, IN_HOURS)
    parameters["annotator"] = annotator_id
    return Query(
        f"""
SELECT
    o.hour AS hour,
    o.annotations AS annotations,
    o.handle_p50_s AS handle_p50_s,
    a.active_hours AS active_hours
FROM (
    SELECT hour, sum(annotations_submitted) AS annotations,
           {exact_quantile(metric.HANDLE_TIME_MS_COUNTS, 0.5)} / 1000 AS handle_p50_s
    FROM rollup_annotator_hour
    WHERE {where} AND annotator_id = {{annotator:String}}
    GROUP BY hour
) AS o
LEFT JOIN (
    SELECT hour, {metric.ACTIVE_HOURS} AS active_hours
    FROM rollup_active_hour
    WHERE {where} AND annotator_id = {{annotator:String}}
    GROUP BY hour
) AS a USING (hour)
ORDER BY hour""",
        parameters,
    )


# ---------------------------------------------------------------- pipeline


# The seconds of a bucket inside the range: a range ending now cuts its last bucket short (and one starting
# between bucket boundaries its first), and a rate over the whole bucket would read low there.
SECONDS_IN_RANGE = (
    f"greatest(1, dateDiff('second', greatest(bucket, {START}), "
    f"least(bucket + toIntervalSecond({{bucket:UInt32}}), {END})))"
)


def ingest_over_time(filters: Filters) -> Query:
    """Events per second by bucket (by occurred_at) and ingest lag quantiles."""
    where, parameters = _where(filters, IN_MINUTES)
    parameters["bucket"] = bucket_seconds(filters.span)
    return Query(
        f"""
SELECT
    toStartOfInterval(minute, toIntervalSecond({{bucket:UInt32}})) AS bucket,
    {SECONDS_IN_RANGE} AS in_range_s,
    {metric.EVENTS_STORED.sql()} / in_range_s AS events_per_s,
    {metric.ingest_lag_ms(0.5)} / 1000 AS lag_p50_s,
    {metric.ingest_lag_ms(0.95)} / 1000 AS lag_p95_s,
    sum(late_events) AS late_events
FROM rollup_project_minute
WHERE {where}
GROUP BY bucket
ORDER BY bucket""",
        parameters,
    )


def events_by_source_system(filters: Filters) -> Query:
    """Events per bucket (by occurred_at) and source system ('unspecified': events that name none)."""
    where, parameters = _where(filters, IN_MINUTES)
    parameters["bucket"] = bucket_seconds(filters.span)
    return Query(
        f"""
SELECT
    toStartOfInterval(minute, toIntervalSecond({{bucket:UInt32}})) AS bucket,
    source_system,
    {metric.SOURCE_EVENTS.sql()} AS events,
    {SECONDS_IN_RANGE} AS in_range_s,
    events / in_range_s AS events_per_s
FROM {metric.SOURCE_MINUTE}
WHERE {where}
GROUP BY bucket, source_system
ORDER BY bucket, source_system""",
        parameters,
    )


def source_systems(filters: Filters) -> Query:
    """Every source system that ever sent events before the range's end: its events in the range, its newest
    event, and that event's age as of the range's end (of now, while the range runs on). A source quiet all
    range long is listed too, with 0 events: that is when it matters."""
    where, parameters = _where(filters, f"minute < {END}")
    age_at = f"least(now64(3), {END})"
    return Query(
        f"""
SELECT
    source_system,
    {metric.SOURCE_EVENTS.sql(IN_MINUTES)} AS events,
    max({metric.SOURCE_MINUTE}.last_occurred_at) AS last_event_at,
    {metric.seconds_since_newest_event(age_at, metric.SOURCE_MINUTE)} AS last_event_age_s
FROM {metric.SOURCE_MINUTE}
WHERE {where}
GROUP BY source_system
ORDER BY last_event_at DESC, source_system""",
        parameters,
    )


def arrivals(filters: Filters) -> Query:
    """Messages that arrived in the range: dead letters and events stored (schema.metric_definitions.arrivals)."""
    return Query(metric.arrivals(START, END), {"start": filters.start, "end": filters.end})


def dead_letters_by_reason(filters: Filters) -> Query:
    parameters = {"start": filters.start, "end": filters.end}
    return Query(
        f"""
SELECT rule, count() AS dead_letters
FROM dead_letters
WHERE {_between("received_at")}
GROUP BY rule
ORDER BY dead_letters DESC, rule""",
        parameters,
    )


def latest_dead_letters(filters: Filters, limit: int = 20) -> Query:
    parameters = {"start": filters.start, "end": filters.end, "limit": limit}
    return Query(
        f"""
SELECT received_at, rule, field, reason, kafka_partition AS partition, kafka_offset AS offset,
       substring(toValidUTF8(raw), 1, 200) AS raw_start
FROM dead_letters
WHERE {_between("received_at")}
ORDER BY received_at DESC, kafka_partition, kafka_offset DESC
LIMIT {{limit:UInt32}}""",
        parameters,
    )


# ---------------------------------------------------------------- alerts (written by `labelpulse alerts`)


def _alert_projects(filters: Filters, parameters: dict[str, Any]) -> str:
    """Alerts of the chosen projects, and those about no project (the pipeline's)."""
    if not filters.projects:
        return ""
    parameters["projects"] = list(filters.projects)
    return "AND (labels['project'] IN {projects:Array(String)} OR labels['project'] = '')"


def alerts_now(filters: Filters) -> Query:
    """Every alert instance whose latest transition left it pending or firing."""
    parameters: dict[str, Any] = {}
    projects = _alert_projects(filters, parameters)
    return Query(
        f"""
        SELECT rule, last_labels AS labels, last_state AS state, episode_start, last_value AS value,
            last_summary AS summary, last_runbook_url AS runbook_url
        FROM
        (
            SELECT rule, fingerprint,
                argMax(labels, at) AS last_labels,
                argMax(state, at) AS last_state,
                argMax(active_since, at) AS episode_start,
                argMax(value, at) AS last_value,
                argMax(summary, at) AS last_summary,
                argMax(runbook_url, at) AS last_runbook_url
            FROM alert_history
            WHERE 1 {projects}
            GROUP BY rule, fingerprint
        )
        WHERE last_state IN ('pending', 'firing')
        ORDER BY last_state = 'firing' DESC, episode_start
        """,
        parameters,
    )


def alert_transitions(filters: Filters, lookback: timedelta = timedelta(days=7)) -> Query:
    """Transitions into firing and resolved up to the range's end, from `lookback` before its start
    (an episode that began before the range still shows in it)."""
    parameters: dict[str, Any] = {"from": filters.start - lookback, "end": filters.end}
    projects = _alert_projects(filters, parameters)
    return Query(
        f"""
        SELECT rule, fingerprint, labels, state, at, summary
        FROM alert_history
        WHERE at >= {{from:DateTime64(3, 'UTC')}} AND at < {{end:DateTime64(3, 'UTC')}}
          AND state IN ('firing', 'resolved') {projects}
        ORDER BY fingerprint, at
        """,
        parameters,
    )


def alert_log(filters: Filters, limit: int = 200) -> Query:
    parameters: dict[str, Any] = {"start": filters.start, "end": filters.end, "limit": limit}
    projects = _alert_projects(filters, parameters)
    return Query(
        f"""
        SELECT at, rule, previous_state, state, labels, value, summary, runbook_url
        FROM alert_history
        WHERE at >= {{start:DateTime64(3, 'UTC')}} AND at < {{end:DateTime64(3, 'UTC')}} {projects}
        ORDER BY at DESC
        LIMIT {{limit:UInt32}}
        """,
        parameters,
    )
