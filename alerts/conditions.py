"""The condition of each kind of rule: for which label sets it holds at `now`, and with what value.

alerts.rules lists each kind's params; here is one query per kind.

`evaluate(client, kind, params, now)` asks ClickHouse for the few numbers a kind needs as of
`now` (never anything after it, so a backtest can replay history) and returns the label sets
for which the rule's condition holds, each with its value. Counts come from the rollups, where
a kind needs order or exact per-item values (runs of answers, handle times) from the raw tables
the rollups are built from; every value travels as a bound parameter.

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
    pipeline_freshness     nothing has become queryable for `max_age` (newest received_at), during
                           `working_hours` on `weekdays`. Value: seconds since.
    pipeline_dead_letter_rate  dead letters / all messages received in `window` is over
                           `max_ratio`, with at least `min_dead_letters`. Value: the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from alerts.rules import Rule
from alerts.schedule import Schedule
from alerts.state import fingerprint
from schema.stats import wilson_interval

LOOKBACK_FOR_SILENCE = timedelta(days=7)  # no_events / pipeline_freshness: who counts as expected to speak


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


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def throughput_drop(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    window_to = _minute(now)
    window_from = _minute(window_to - params["window"])
    window_h = (window_to - window_from).total_seconds() / 3600
    week = timedelta(days=7)
    rows = _rows(
        client,
        """
        SELECT
            project_id AS project,
            sumIf(annotations_submitted, minute >= {window_from:DateTime('UTC')}) AS current,
            sumIf(
                annotations_submitted
                    * pow(0.5, dateDiff('second', minute, {window_from:DateTime('UTC')}) / {half_life_s:Float64}),
                minute < {window_from:DateTime('UTC')} AND minute >= {lookback_from:DateTime('UTC')}
            ) AS weighted,
            sumIf(annotations_submitted, minute >= {week_from:DateTime('UTC')} AND minute < {week_to:DateTime('UTC')})
                AS last_week
        FROM rollup_project_minute
        WHERE (minute >= {lookback_from:DateTime('UTC')} AND minute < {window_to:DateTime('UTC')})
           OR (minute >= {week_from:DateTime('UTC')} AND minute < {week_to:DateTime('UTC')})
        GROUP BY project_id
        """,
        window_from=window_from,
        window_to=window_to,
        lookback_from=window_from - params["lookback"],
        half_life_s=params["half_life"].total_seconds(),
        week_from=window_from - week,
        week_to=window_to - week,
    )
    return judge_throughput(rows, params, window_h)


def judge_throughput(rows: Rows, params: dict[str, Any], window_h: float) -> list[Found]:
    lookback_minutes = int(params["lookback"].total_seconds() // 60)
    half_life_min = params["half_life"].total_seconds() / 60
    # The EWMA's weights over every minute of the lookback (quiet minutes count as zero).
    weights = sum(0.5 ** (age / half_life_min) for age in range(1, lookback_minutes + 1))
    found = []
    for row in rows:
        if params["baseline"] == "ewma":
            baseline = 60 * row["weighted"] / weights if weights else 0.0
        else:
            baseline = row["last_week"] / window_h
        current = row["current"] / window_h
        if baseline >= params["min_baseline_per_hour"] and current < params["drop_ratio"] * baseline:
            found.append(Found({"project": row["project"]}, current))
    return found


def no_events(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    rows = _rows(
        client,
        """
        SELECT project_id AS project,
            greatest(0, dateDiff('millisecond', max(last_occurred_at), {now:DateTime64(3, 'UTC')})) / 1000 AS age
        FROM rollup_project_minute
        WHERE minute >= {since:DateTime('UTC')} AND minute <= {now:DateTime64(3, 'UTC')}
        GROUP BY project_id
        """,
        since=_minute(now - LOOKBACK_FOR_SILENCE),
        now=now,
    )
    if not Schedule.of(params).contains(now):
        return []
    window_s = params["window"].total_seconds()
    return [Found({"project": r["project"]}, r["age"]) for r in rows if r["age"] >= window_s]


QUALITY_SOURCES = {
    "first_pass_acceptance": ("rollup_review_rounds_hour", "first_pass_accepted", "reviews"),
    "gold_accuracy": ("rollup_gold_hour", "gold_correct", "gold_answers"),
}


def quality_drop(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    table, successes, trials = QUALITY_SOURCES[params["metric"]]
    rows = _rows(
        client,
        f"""
        SELECT project_id AS project, sum({successes}) AS successes, sum({trials}) AS trials
        FROM {table}
        WHERE hour >= {{since:DateTime('UTC')}} AND hour <= {{now:DateTime64(3, 'UTC')}}
        GROUP BY project_id
        """,
        since=_hour(now - params["window"]),
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
        """
        SELECT a.project_id AS project, a.annotator_id AS annotator, a.median_ms AS median_ms
        FROM
        (
            SELECT project_id, annotator_id, quantileExact(0.5)(handle_time_ms) AS median_ms, count() AS n
            FROM handle_times
            WHERE submitted_at >= {window_from:DateTime64(3, 'UTC')} AND submitted_at < {now:DateTime64(3, 'UTC')}
            GROUP BY project_id, annotator_id
        ) AS a
        INNER JOIN
        (
            SELECT project_id, quantileExact({percentile:Float64})(handle_time_ms) AS fast_ms, count() AS n
            FROM handle_times
            WHERE submitted_at >= {baseline_from:DateTime64(3, 'UTC')}
              AND submitted_at < {window_from:DateTime64(3, 'UTC')}
            GROUP BY project_id
        ) AS b ON a.project_id = b.project_id
        WHERE a.n >= {min_n:UInt32} AND b.n >= {min_n:UInt32} AND a.median_ms < {ratio:Float64} * b.fast_ms
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
        """
        SELECT project_id AS project, annotator_id AS annotator,
            sum(gold_correct) AS successes, sum(gold_answers) AS trials
        FROM rollup_gold_hour
        WHERE hour >= {since:DateTime('UTC')} AND hour <= {now:DateTime64(3, 'UTC')}
        GROUP BY project_id, annotator_id
        ORDER BY project, annotator
        """,
        since=_hour(now - params["window"]),
        now=now,
    )
    return _wilson_under(rows, params["min_n"], params["floor"], True, ("project", "annotator"))


def backlog_eta(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    deadlines: dict[str, datetime] = params["deadlines"]
    if not deadlines:
        return []
    pace_from = _minute(now - params["window"])
    rows = _rows(
        client,
        """
        SELECT project_id AS project,
            toInt64(sum(tasks_created)) - toInt64(sum(tasks_completed)) AS backlog,
            sumIf(tasks_completed, minute >= {pace_from:DateTime('UTC')}) AS recently_completed
        FROM rollup_project_minute
        WHERE minute < {until:DateTime('UTC')} AND project_id IN {projects:Array(String)}
        GROUP BY project_id
        """,
        pace_from=pace_from,
        until=_minute(now),
        projects=sorted(deadlines),
    )
    window_h = (_minute(now) - pace_from).total_seconds() / 3600
    found = []
    for row in rows:
        if row["backlog"] <= 0:
            continue
        pace = row["recently_completed"] / window_h
        hours_needed = row["backlog"] / pace if pace > 0 else math.inf
        late_h = hours_needed - (deadlines[row["project"]] - now).total_seconds() / 3600
        if late_h > 0:
            found.append(Found({"project": row["project"]}, late_h))
    return found


def pipeline_freshness(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    (row,) = _rows(
        client,
        """
        SELECT greatest(0, dateDiff('millisecond', max(last_received_at), {now:DateTime64(3, 'UTC')})) / 1000 AS age,
            count() AS minutes
        FROM rollup_project_minute
        WHERE minute >= {since:DateTime('UTC')} AND minute <= {now:DateTime64(3, 'UTC')}
        """,
        since=_minute(now - LOOKBACK_FOR_SILENCE),
        now=now,
    )
    if not row["minutes"] or not Schedule.of(params).contains(now):
        return []  # nothing ever arrived (a new install), or outside the hours it matters
    return [Found({}, row["age"])] if row["age"] >= params["max_age"].total_seconds() else []


def pipeline_dead_letter_rate(client: Client, params: dict[str, Any], now: datetime) -> list[Found]:
    (row,) = _rows(
        client,
        """
        SELECT
            (SELECT count() FROM dead_letters
             WHERE received_at >= {since:DateTime64(3, 'UTC')} AND received_at < {now:DateTime64(3, 'UTC')}) AS dead,
            (SELECT count() FROM events
             WHERE received_at >= {since:DateTime64(3, 'UTC')} AND received_at < {now:DateTime64(3, 'UTC')}) AS accepted
        """,
        since=now - params["window"],
        now=now,
    )
    dead, total = row["dead"], row["dead"] + row["accepted"]
    if dead < params["min_dead_letters"] or dead / total <= params["max_ratio"]:
        return []
    return [Found({}, dead / total)]


CONDITIONS: dict[str, Condition] = {
    "throughput_drop": throughput_drop,
    "no_events": no_events,
    "quality_drop": quality_drop,
    "annotator_fast_handle": annotator_fast_handle,
    "annotator_same_answer": annotator_same_answer,
    "annotator_gold_floor": annotator_gold_floor,
    "backlog_eta": backlog_eta,
    "pipeline_freshness": pipeline_freshness,
    "pipeline_dead_letter_rate": pipeline_dead_letter_rate,
}
