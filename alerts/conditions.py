"""The condition of each kind of rule: for which label sets it holds at `now`, and with what value.

alerts.rules lists each kind's params; here is one query per kind.

`evaluate(client, kind, params, now)` asks ClickHouse for the few numbers a kind needs as of
`now` (never anything after it, so a backtest can replay history) and returns the label sets
for which the rule's condition holds, each with its value. Counts come from the rollups, where
a kind needs order or exact per-item values (runs of answers, handle times) from the raw tables
the rollups are built from; every value travels as a bound parameter. Each metric, and the rows
a window covers, is the one schema.metric_definitions defines.

What each kind measures (windows end at `now`; minute rollups count only whole minutes, so a
rate is never diluted by the minute still filling):

    throughput_drop        annotations/h of each project over `window` is under `drop_ratio` ×
                           its baseline, and the baseline is at least `min_baseline_per_hour`
                           (quiet hours and new projects never fire). Baseline `ewma`: per-minute
                           rates over `lookback` before the window, weight halving every
                           `half_life`; `same_hour_last_week`: the same window 7 days earlier.
    no_events              a project seen in the last 7 days has no event for `window`, during
                           `working_hours` on `weekdays` (UTC). Value: seconds since its newest.
    quality_drop           first-pass acceptance or gold accuracy of a project over `window`, after
                           `min_n` reviews / gold answers: the Wilson 95 % `bound` is under
                           `threshold` (`upper`: fire only when surely under; `lower`: as soon as it
                           is not surely over). Value: that bound.
    annotator_fast_handle  an annotator's median handle time over `window` (after
                           `min_annotations`) is under `ratio` × the project's `percentile` over
                           `baseline` before the window. Value: the median, seconds.
    annotator_same_answer  an annotator submitted the same label `run_length` times in a row within
                           `window`. Value: the longest run.
    annotator_gold_floor   an annotator's gold accuracy over `window`, after `min_n` gold answers,
                           has its Wilson 95 % upper bound under `floor`. Value: that bound.
    backlog_eta            at the completion pace of `window`, a project listed in `deadlines`
                           clears its backlog after its deadline. Value: hours late (+Inf: no pace).
    source_quiet           a source system (events.source_system; 'unspecified' for none) that sent
                           events in the last 7 days, one of `sources` if listed, has sent none for
                           `window` (in any project), during `working_hours` on `weekdays` (UTC).
                           Label: source_system. Value: seconds since its newest event.
    pipeline_freshness     nothing has become queryable for `max_age` (newest received_at), during
                           `working_hours` on `weekdays`. Value: seconds since.
    pipeline_dead_letter_rate  dead letters / all messages received in `window` is over
                           `max_ratio`, with at least `min_dead_letters`. Value: the ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from alerts.rules import Rule
from alerts.schedule import Schedule
from alerts.state import fingerprint
from schema import metric_definitions as metric
from schema.metric_definitions import in_hours, in_minutes
from schema.stats import wilson_interval

# no_events / source_quiet / pipeline_freshness: who counts as expected to speak
LOOKBACK_FOR_SILENCE = timedelta(days=7)
# Bound parameters the queries share.
NOW, SINCE, UNTIL = "{now:DateTime64(3, 'UTC')}", "{since:DateTime64(3, 'UTC')}", "{until:DateTime('UTC')}"
WINDOW_FROM, WINDOW_TO = "{window_from:DateTime('UTC')}", "{window_to:DateTime('UTC')}"
WEEK_FROM, WEEK_TO = "{week_from:DateTime('UTC')}", "{week_to:DateTime('UTC')}"
ANNOTATIONS, GOLD = metric.ANNOTATIONS_SUBMITTED, metric.GOLD_ACCURACY


@dataclass(frozen=True)
class Found:
    """A label set for which a rule's condition holds, and the value that made it so."""

    labels: dict[str, str]
    value: float


Rows = list[dict[str, Any]]
Condition = Callable[[Client, dict[str, Any], datetime], list[Found]]


def evaluate(client: Client, kind: str, params: dict[str, Any], now: datetime) -> list[Found]:
    return CONDITIONS[kind](client, params, now)


def holding(client: Client, rule: Rule, now: datetime) -> dict[str, tuple[dict[str, str], float]]:
    """The instances of `rule` whose condition holds at `now`, by fingerprint: what alerts.state.step takes.
    An instance's labels are the rule's own (severity, ...) and those its kind found (project, ...)."""
    active = {}
    for found in evaluate(client, rule.kind, rule.params, now):
        labels = {**rule.labels, **found.labels}
        active[fingerprint(rule.alert, labels)] = (labels, found.value)
    return active


def _rows(client: Client, sql: str, **parameters: Any) -> Rows:
    return list(client.query(sql, parameters=parameters).named_results())


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def throughput_drop(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    window_to = _minute(now)
    window_from = _minute(window_to - params["window"])
    return judge_throughput(throughput(client, params, window_from, window_to), params, window_to - window_from)


def throughput(client: Client, params: dict[str, Any], window_from: datetime, window_to: datetime) -> Rows:
    """Per project: annotations in the window (current), their EWMA-weighted sum over the lookback before it
    (weighted), and in the same window a week earlier (last_week)."""
    week = timedelta(days=7)
    return _rows(
        client,
        f"""
        SELECT
            project_id AS project,
            {ANNOTATIONS.sql(in_minutes(WINDOW_FROM, WINDOW_TO))} AS current,
            sumIf(
                annotations_submitted
                    * pow(0.5, dateDiff('second', minute, {WINDOW_FROM}) / {{half_life_s:Float64}}),
                {in_minutes("{lookback_from:DateTime('UTC')}", WINDOW_FROM)}
            ) AS weighted,
            {ANNOTATIONS.sql(in_minutes(WEEK_FROM, WEEK_TO))} AS last_week
        FROM rollup_project_minute
        WHERE ({in_minutes("{lookback_from:DateTime('UTC')}", WINDOW_TO)}) OR ({in_minutes(WEEK_FROM, WEEK_TO)})
        GROUP BY project_id
        """,
        window_from=window_from,
        window_to=window_to,
        lookback_from=window_from - params["lookback"],
        half_life_s=params["half_life"].total_seconds(),
        week_from=window_from - week,
        week_to=window_to - week,
    )


def judge_throughput(rows: Rows, params: dict[str, Any], window: timedelta) -> list[Found]:
    lookback_minutes = int(params["lookback"].total_seconds() // 60)
    half_life_min = params["half_life"].total_seconds() / 60
    # The EWMA's weights over every minute of the lookback (quiet minutes count as zero).
    weights = sum(0.5 ** (age / half_life_min) for age in range(1, lookback_minutes + 1))
    found = []
    for row in rows:
        if params["baseline"] == "ewma":
            baseline = 60 * row["weighted"] / weights if weights else 0.0
        else:
            baseline = metric.per_hour(row["last_week"], window)
        current = metric.per_hour(row["current"], window)
        if baseline >= params["min_baseline_per_hour"] and current < params["drop_ratio"] * baseline:
            found.append(Found({"project": row["project"]}, current))
    return found


def no_events(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    rows = _rows(
        client,
        f"""
        SELECT project_id AS project, {metric.seconds_since_newest_event(NOW)} AS age
        FROM rollup_project_minute
        WHERE {in_minutes("{since:DateTime('UTC')}", NOW)}
        GROUP BY project_id
        """,
        since=_minute(now - LOOKBACK_FOR_SILENCE),
        now=now,
    )
    if not Schedule.of(params).contains(now):
        return []
    window_s = params["window"].total_seconds()
    return [Found({"project": r["project"]}, r["age"]) for r in rows if r["age"] >= window_s]


def source_quiet(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    if not Schedule.of(params).contains(now):
        return []
    rows = _rows(
        client,
        f"""
        SELECT source_system, {metric.seconds_since_newest_event(NOW, metric.SOURCE_MINUTE)} AS age
        FROM {metric.SOURCE_MINUTE}
        WHERE {in_minutes("{since:DateTime('UTC')}", NOW)}
          AND (empty({{sources:Array(String)}}) OR has({{sources:Array(String)}}, source_system))
        GROUP BY source_system
        ORDER BY source_system
        """,
        since=_minute(now - LOOKBACK_FOR_SILENCE),
        now=now,
        sources=list(params["sources"]),
    )
    window_s = params["window"].total_seconds()
    return [Found({"source_system": r["source_system"]}, r["age"]) for r in rows if r["age"] >= window_s]


def quality_drop(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    proportion = metric.QUALITY_METRICS[params["metric"]]
    rows = _rows(
        client,
        f"""
        SELECT project_id AS project, {proportion.successes.sql()} AS successes, {proportion.trials.sql()} AS trials
        FROM {proportion.rollup}
        WHERE {in_hours(SINCE, NOW)}
        GROUP BY project_id
        """,
        since=now - params["window"],
        now=now,
    )
    upper = params["bound"] == "upper"
    return _wilson_under(rows, params["min_n"], params["threshold"], upper, ("project",))


def _wilson_under(rows: Rows, min_n: int, threshold: float, upper: bool, keys: tuple[str, ...]) -> list[Found]:
    found = []
    for row in rows:
        interval = wilson_interval(int(row["successes"]), int(row["trials"]))
        if interval is None or row["trials"] < min_n:
            continue
        bound = interval[1] if upper else interval[0]
        if bound < threshold:
            found.append(Found({key: row[key] for key in keys}, bound))
    return found


def annotator_fast_handle(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    window_from = now - params["window"]
    rows = _rows(
        client,
        f"""
        SELECT a.project_id AS project, a.annotator_id AS annotator, a.median_ms AS median_ms
        FROM
        (
            SELECT project_id, annotator_id, {metric.exact_quantile_of("handle_time_ms", "0.5")} AS median_ms,
                count() AS n
            FROM handle_times
            WHERE submitted_at >= {{window_from:DateTime64(3, 'UTC')}} AND submitted_at < {NOW}
            GROUP BY project_id, annotator_id
        ) AS a
        INNER JOIN
        (
            SELECT project_id, {metric.exact_quantile_of("handle_time_ms", "{percentile:Float64}")} AS fast_ms,
                count() AS n
            FROM handle_times
            WHERE submitted_at >= {{baseline_from:DateTime64(3, 'UTC')}}
              AND submitted_at < {{window_from:DateTime64(3, 'UTC')}}
            GROUP BY project_id
        ) AS b ON a.project_id = b.project_id
        WHERE a.n >= {{min_n:UInt32}} AND b.n >= {{min_n:UInt32}} AND a.median_ms < {{ratio:Float64}} * b.fast_ms
        ORDER BY project, annotator
        """,
        window_from=window_from,
        now=now,
        baseline_from=window_from - params["baseline"],
        percentile=params["percentile"],
        ratio=params["ratio"],
        min_n=params["min_annotations"],
    )
    return [Found({"project": r["project"], "annotator": r["annotator"]}, r["median_ms"] / 1000) for r in rows]


def annotator_same_answer(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    rows = _rows(
        client,
        """
        SELECT project_id AS project, annotator_id AS annotator,
            arrayMap(pair -> pair.2, arraySort(groupArray((occurred_at, label)))) AS answers,
            arrayMax(arrayMap(run -> length(run), arraySplit(
                (answer, i) -> i > 1 AND answer != answers[i - 1], answers, arrayEnumerate(answers)))) AS longest
        FROM events
        WHERE event_type = 'annotation_submitted'
          AND occurred_at >= {window_from:DateTime64(3, 'UTC')} AND occurred_at < {now:DateTime64(3, 'UTC')}
        GROUP BY project_id, annotator_id
        HAVING longest >= {run_length:UInt32}
        ORDER BY project, annotator
        """,
        window_from=now - params["window"],
        now=now,
        run_length=params["run_length"],
    )
    return [Found({"project": r["project"], "annotator": r["annotator"]}, float(r["longest"])) for r in rows]


def annotator_gold_floor(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    rows = _rows(
        client,
        f"""
        SELECT project_id AS project, annotator_id AS annotator,
            {GOLD.successes.sql()} AS successes, {GOLD.trials.sql()} AS trials
        FROM rollup_gold_hour
        WHERE {in_hours(SINCE, NOW)}
        GROUP BY project_id, annotator_id
        ORDER BY project, annotator
        """,
        since=now - params["window"],
        now=now,
    )
    return _wilson_under(rows, params["min_n"], params["floor"], True, ("project", "annotator"))


def backlog_eta(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    deadlines: dict[str, datetime] = params["deadlines"]
    if not deadlines:
        return []
    pace_from = _minute(now - params["window"])
    found = []
    for row in backlog_and_pace(client, sorted(deadlines), pace_from, _minute(now)):
        if row["backlog"] <= 0:
            continue  # nothing left: never late
        pace = metric.per_hour(row["recently_completed"], _minute(now) - pace_from)
        hours_needed = metric.eta_hours(row["backlog"], pace)
        late_h = hours_needed - (deadlines[row["project"]] - now).total_seconds() / 3600
        if late_h > 0:
            found.append(Found({"project": row["project"]}, late_h))
    return found


def backlog_and_pace(client: Client, projects: list[str], pace_from: datetime, until: datetime) -> Rows:
    """Per project: the backlog at `until`, and the tasks completed from `pace_from` to then."""
    return _rows(
        client,
        f"""
        SELECT project_id AS project, {metric.BACKLOG} AS backlog,
            {metric.TASKS_COMPLETED.sql(in_minutes("{pace_from:DateTime('UTC')}", UNTIL))} AS recently_completed
        FROM rollup_project_minute
        WHERE minute < {UNTIL} AND project_id IN {{projects:Array(String)}}
        GROUP BY project_id
        """,
        pace_from=pace_from,
        until=until,
        projects=projects,
    )


def pipeline_freshness(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    (row,) = _rows(
        client,
        f"""
        SELECT {metric.seconds_since_newest_event(NOW, column="last_received_at")} AS age, count() AS minutes
        FROM {metric.PROJECT_MINUTE}
        WHERE minute >= {{since:DateTime('UTC')}} AND minute <= {NOW}
        """,
        since=_minute(now - LOOKBACK_FOR_SILENCE),
        now=now,
    )
    if not row["minutes"] or not Schedule.of(params).contains(now):
        return []  # nothing ever arrived (a new install), or outside the hours it matters
    return [Found({}, row["age"])] if row["age"] >= params["max_age"].total_seconds() else []


def pipeline_dead_letter_rate(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    (row,) = _rows(client, metric.arrivals(SINCE, NOW), since=now - params["window"], now=now)
    dead_share = metric.dead_letter_ratio(row["dead_letters"], row["stored"])
    if row["dead_letters"] < params["min_dead_letters"] or dead_share is None or dead_share <= params["max_ratio"]:
        return []
    return [Found({}, dead_share)]


CONDITIONS: dict[str, Condition] = {
    "throughput_drop": throughput_drop,
    "no_events": no_events,
    "quality_drop": quality_drop,
    "annotator_fast_handle": annotator_fast_handle,
    "annotator_same_answer": annotator_same_answer,
    "annotator_gold_floor": annotator_gold_floor,
    "backlog_eta": backlog_eta,
    "source_quiet": source_quiet,
    "pipeline_freshness": pipeline_freshness,
    "pipeline_dead_letter_rate": pipeline_dead_letter_rate,
}
