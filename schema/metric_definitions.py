"""The one definition of each metric LabelPulse shows, alerts on or exports (PRODUCT.md, "Metrics").

A metric is SQL over a rollup, summed so that any window and any grouping adds up, with its Python twin for
sums already fetched and, where Prometheus computes it too, its PromQL twin over the business gauges beside
it. Every way out builds on these and spells no metric itself: the queries of the dashboard and the gRPC API
(schema.queries, assembled in schema.summaries), the alert conditions (alerts.conditions), the business gauges
(alerts.collector exports GAUGES), the Prometheus rules rendered from the alert rules (alerts.prometheus) and
the analyst views (schema.tables).
tests/test_metric_consumers.py computes each metric through all of them on the same events, against pandas.

Columns are named with their rollup (`rollup_gold_hour.gold_answers`): a query may call a sum after the
column it sums (`sum(reviews) AS reviews`), and ClickHouse would read a later bare `reviews` as that sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

# The rollups the metrics are read from (schema.tables; tests/test_metric_definitions.py checks the names).
PROJECT_MINUTE = "rollup_project_minute"
SOURCE_MINUTE = "rollup_source_minute"
ANNOTATOR_HOUR = "rollup_annotator_hour"
LABEL_HOUR = "rollup_label_hour"
REVIEW_HOUR = "rollup_review_hour"
REVIEW_ROUNDS_HOUR = "rollup_review_rounds_hour"
GOLD_HOUR = "rollup_gold_hour"
ACTIVE_HOUR = "rollup_active_hour"

# ---------------------------------------------------------------- windows
# Which rows of a rollup answer "from `start` until `end`" (SQL bounds, usually bound parameters).


def in_minutes(start: str, end: str) -> str:
    """Rows of a minute rollup for [start, end): the minutes that begin in it."""
    return f"minute >= {start} AND minute < {end}"


def in_hours(start: str, end: str) -> str:
    """Rows of an hour rollup for [start, end), from the hour holding `start`: a window never silently drops
    its first partial hour."""
    return f"hour >= toStartOfHour({start}) AND hour < {end}"


# ---------------------------------------------------------------- building blocks


@dataclass(frozen=True)
class Count:
    """How many: one column of a rollup summed over the rows asked for (only those meeting `condition`)."""

    rollup: str
    column: str
    condition: str = ""

    def sql(self, where: str = "") -> str:
        """The sum over the query's rows, or over those of them also meeting `where` (windows in one scan)."""
        conditions = " AND ".join(f"({condition})" for condition in (self.condition, where) if condition)
        column = f"{self.rollup}.{self.column}"
        return f"sumIf({column}, {conditions})" if conditions else f"sum({column})"


@dataclass(frozen=True)
class Total:
    """Counts of one rollup added up (e.g. submitted + skipped: the items worked on)."""

    parts: tuple[Count, ...]

    @property
    def rollup(self) -> str:
        return self.parts[0].rollup

    def sql(self, where: str = "") -> str:
        return "(" + " + ".join(part.sql(where) for part in self.parts) + ")"


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator of sums already fetched, or None with nothing to divide by (never NaN)."""
    return None if not denominator else numerator / denominator


@dataclass(frozen=True)
class Proportion:
    """successes ÷ trials over the same rows: sums first, then divide; NULL (None) without trials. `gauges`
    name the business gauges holding both over the last day, for PromQL."""

    successes: Count | Total
    trials: Count | Total
    gauges: tuple[str, str] | None = None

    @property
    def rollup(self) -> str:
        return self.trials.rollup

    def sql(self, where: str = "") -> str:
        trials = self.trials.sql(where)
        return f"if({trials} = 0, NULL, {self.successes.sql(where)} / {trials})"

    def promql(self) -> str:
        assert self.gauges, "this proportion has no business gauges"
        return f"{gauge(self.gauges[0])} / ({gauge(self.gauges[1])} > 0)"  # no sample without trials, as NULL


def per_hour(count: float, window: timedelta) -> float:
    """A count over a window as a rate per hour."""
    return count / (window.total_seconds() / 3600)


def exact_quantile(value_counts: str, level: float) -> str:
    """SQL for the `level` quantile of a value -> count map (VALUE_COUNTS merged with sumMap), exact and
    linear between the closest ranks, as numpy, pandas and quantileExactInclusive define it; NULL when
    there is no value. The one definition every handle-time quantile uses; exact_quantile_of is the same
    quantile of a column of rows."""
    return (
        f"if(empty(mapFilter((v, c) -> c > 0, {value_counts})), NULL, "
        f"arrayReduce('quantileExactInclusive({level})', "
        f"arrayFlatten(mapValues(mapApply((v, c) -> (v, arrayWithConstant(greatest(c, 0), v)), {value_counts})))))"
    )


def exact_quantile_of(column: str, level: str) -> str:
    """exact_quantile of the values of a column over the query's rows (`level` may be a bound parameter)."""
    return f"quantileExactInclusive({level})({column})"


# ---------------------------------------------------------------- the business gauges
# Per project, as of each scrape: alerts.collector exports them as labelpulse_project_<name>, and the
# Prometheus rules read the metrics through them. Their windows are fixed: the last hour, the last day.

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


def gauge(name: str, selector: str = "") -> str:
    """The PromQL series of a business gauge, e.g. gauge("backlog", '{project="retail"}')."""
    if name not in GAUGES:
        raise KeyError(f"{name} is not a business gauge (one of {', '.join(GAUGES)})")
    return f"labelpulse_project_{name}{selector}"


# ---------------------------------------------------------------- throughput and backlog

ANNOTATIONS_SUBMITTED = Count(PROJECT_MINUTE, "annotations_submitted")
TASKS_CREATED = Count(PROJECT_MINUTE, "tasks_created")
TASKS_COMPLETED = Count(PROJECT_MINUTE, "tasks_completed")

# Backlog: tasks created minus tasks completed, over every minute before the moment asked about.
BACKLOG = f"toInt64({TASKS_CREATED.sql()}) - toInt64({TASKS_COMPLETED.sql()})"
BACKLOG_PROMQL = gauge("backlog")


# The current pace: counts over the last hour before the moment asked about, per hour. The ETA assumes it, the
# Overview shows it beside the range's average, and the business gauges' *_last_hour hold it.
PACE_WINDOW = timedelta(hours=1)


def eta_hours(backlog: float, completed_per_hour: float) -> float:
    """Hours to clear the backlog at the recent completion rate: 0 with nothing left, +inf with no pace."""
    if backlog <= 0:
        return 0.0
    return backlog / completed_per_hour if completed_per_hour > 0 else math.inf


def eta_hours_promql(selector: str = "") -> str:
    """eta_hours over the business gauges (the pace of the last hour); +Inf with no pace, as eta_hours."""
    return f"{gauge('backlog', selector)} / {gauge('tasks_completed_last_hour', selector)}"


# ---------------------------------------------------------------- pipeline

# Events stored, of every type: what "events in" counts (per source: SOURCE_EVENTS, which must agree).
EVENTS_STORED = Total(
    tuple(
        Count(PROJECT_MINUTE, column)
        for column in (
            "tasks_created",
            "tasks_assigned",
            "annotations_started",
            "annotations_submitted",
            "annotations_skipped",
            "reviews_completed",
            "tasks_completed",
            "annotations_updated",
            "annotations_deleted",
        )
    )
)


def ingest_lag_ms(level: float) -> str:
    """SQL: the `level` quantile of received_at - occurred_at over the rows, ms (t-digest, approximate)."""
    return f"quantileTDigestMerge({level})({PROJECT_MINUTE}.ingest_lag_ms)"


def arrivals(start: str, end: str) -> str:
    """SQL: the messages that arrived in [start, end), by when a worker received them: dead letters and events
    stored (one row; what dead_letter_ratio divides)."""
    return f"""SELECT
    (SELECT count() FROM dead_letters WHERE received_at >= {start} AND received_at < {end}) AS dead_letters,
    (SELECT count() FROM events WHERE received_at >= {start} AND received_at < {end}) AS stored"""


def dead_letter_ratio(dead_letters: int, stored: int) -> float | None:
    """The share of arriving messages that were refused: dead letters ÷ (dead letters + events stored), both
    by arrival; None when nothing arrived."""
    return ratio(dead_letters, dead_letters + stored)


def dead_letters_promql(window: str) -> str:
    """The messages the workers refused over `window` (a PromQL duration), from their counter."""
    return f"sum(increase(labelpulse_worker_dead_letters_total[{window}]))"


def dead_letter_ratio_promql(window: str) -> str:
    """dead_letter_ratio over `window` (a PromQL duration), from the workers' counters."""
    dead = dead_letters_promql(window)
    stored = f"sum(increase(labelpulse_worker_events_total[{window}]))"
    return f"{dead} / ({dead} + {stored})"


def seconds_since_newest_event(now: str, rollup: str = PROJECT_MINUTE, column: str = "last_occurred_at") -> str:
    """SQL: seconds from the newest occurred_at of the rows (of a minute rollup with last_occurred_at) to `now`,
    never negative (producers' clocks run ahead). Per project its PromQL twin is the gauge seconds_since_last_event;
    over SOURCE_MINUTE it is the age of a source's last event. With `column` last_received_at: the time since the
    workers last stored an event."""
    return f"greatest(0, dateDiff('millisecond', max({rollup}.{column}), {now})) / 1000"


# ---------------------------------------------------------------- sources
# Every source system (a labeling tool's adapter, the HTTP API, an import, a producer of its own) is its own stream.

# What the events that name no source_system count as, in rollup_source_minute and everywhere it is shown (the
# workers' labelpulse_worker_events_by_source says the same).
UNSPECIFIED_SOURCE = "unspecified"
SOURCE_EVENTS = Count(SOURCE_MINUTE, "events")  # events of every type, per source


# ---------------------------------------------------------------- productivity

ANNOTATIONS_SKIPPED = Count(ANNOTATOR_HOUR, "annotations_skipped")
SKIP_RATE = Proportion(  # skipped ÷ (submitted + skipped)
    successes=ANNOTATIONS_SKIPPED,
    trials=Total((Count(ANNOTATOR_HOUR, "annotations_submitted"), ANNOTATIONS_SKIPPED)),
)
HANDLE_TIME_MS_COUNTS = f"sumMap({ANNOTATOR_HOUR}.handle_time_ms_counts)"  # handle time (ms) -> submissions
HANDLE_TIME_MEAN_MS = (
    f"if(sum({ANNOTATOR_HOUR}.handle_time_count) = 0, NULL, "
    f"sum({ANNOTATOR_HOUR}.handle_time_ms_sum) / sum({ANNOTATOR_HOUR}.handle_time_count))"
)
ACTIVE_HOURS = f"sum({ACTIVE_HOUR}.active_ms) / 3600000"

# ---------------------------------------------------------------- quality

REVIEWED = Count(REVIEW_HOUR, "reviews")
ACCEPTED, FIXED, REJECTED = (
    Count(REVIEW_HOUR, "reviews", f"{REVIEW_HOUR}.verdict = '{verdict}'")
    for verdict in ("accepted", "fixed", "rejected")
)
ACCEPTANCE_SCORE = Proportion(successes=Total((ACCEPTED, FIXED)), trials=REVIEWED)  # (accepted + fixed) ÷ reviewed
REJECTION_RATE = Proportion(successes=REJECTED, trials=REVIEWED)
# First-pass acceptance: accepted with no earlier rejection of that (task, annotator) ÷ reviewed.
FIRST_PASS_ACCEPTANCE = Proportion(
    successes=Count(REVIEW_ROUNDS_HOUR, "first_pass_accepted"),
    trials=Count(REVIEW_ROUNDS_HOUR, "reviews"),
    gauges=("first_pass_accepted_last_day", "reviews_last_day"),
)
GOLD_ACCURACY = Proportion(
    successes=Count(GOLD_HOUR, "gold_correct"),
    trials=Count(GOLD_HOUR, "gold_answers"),
    gauges=("gold_correct_last_day", "gold_answers_last_day"),
)
# The quality metrics an alert rule may watch (quality_drop's `metric`), by name.
QUALITY_METRICS = {"first_pass_acceptance": FIRST_PASS_ACCEPTANCE, "gold_accuracy": GOLD_ACCURACY}
# Gold accuracy is judged only from this many honeypot answers on (the dashboard's floor).
MIN_GOLD_ANSWERS = 10
PRELABEL_ACCEPTANCE = Proportion(  # model pre-labels kept unchanged ÷ pre-labels offered
    successes=Count(LABEL_HOUR, "prelabel_kept"),
    trials=Count(LABEL_HOUR, "prelabeled"),
)
