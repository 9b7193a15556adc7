"""What the Overview and the Annotators view show, assembled from schema.queries: shared by the dashboard
and the gRPC API, so both show the same numbers. `fetch` runs a query (scoped by its caller) into a DataFrame."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from schema import queries
from schema.metric_definitions import MIN_GOLD_ANSWERS, PACE_WINDOW, eta_hours, per_hour, ratio
from schema.stats import wilson_interval

Fetch = Callable[[queries.Query], pd.DataFrame]
MISSING = "–"  # a value that cannot be computed yet; where it is shown, its column says when and why

_SUMMARY_COUNTS = [
    "annotations",
    "skips",
    "tasks_created",
    "tasks_completed",
    "reviews",
    "annotators",
    "backlog",
    "completed_recently",
    "annotations_recently",
    "reviewed",
    "accepted",
    "fixed",
    "rejected",
    "gold_answers",
    "gold_correct",
]


def project_summary_reads(filters: queries.Filters) -> dict[str, queries.Query]:
    """What project_summary reads, by name: independent queries, so a caller may run them side by side (the
    gRPC API does) and hand the results to summary_of."""
    return {
        "totals": queries.project_totals(filters),
        "backlog": queries.backlog(filters),
        "reviews": queries.review_totals(filters),
        "gold": queries.gold_totals(filters),
        "first_pass": queries.first_pass_totals(filters),
        "agreement": queries.agreement(filters),
    }


def project_summary(filters: queries.Filters, fetch: Fetch) -> pd.DataFrame:
    """One row per project: volumes, backlog, quality — the Overview's side-by-side table and its tiles' inputs."""
    return summary_of(filters, {name: fetch(query) for name, query in project_summary_reads(filters).items()})


def summary_of(filters: queries.Filters, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """project_summary from the results of project_summary_reads(filters), by the same names."""
    reviews = frames["reviews"].rename(columns={"acceptance_score": "acceptance"})
    agreement = frames["agreement"][["project_id", "percent_agreement", "krippendorff_alpha", "tasks"]]
    summary = frames["totals"].merge(frames["backlog"], on="project_id", how="outer")
    summary = summary.merge(reviews, on="project_id", how="left").merge(frames["gold"], on="project_id", how="left")
    summary = summary.merge(frames["first_pass"], on="project_id", how="left")
    summary = summary.merge(agreement.rename(columns={"tasks": "overlap_tasks"}), on="project_id", how="left")
    summary[_SUMMARY_COUNTS] = summary[_SUMMARY_COUNTS].fillna(0).astype("int64")
    summary["annotations_per_hour"] = summary["annotations"].map(lambda n: per_hour(n, filters.span))
    summary["gold_accuracy"] = summary["gold_accuracy"].where(summary["gold_answers"] >= MIN_GOLD_ANSWERS)
    return summary.sort_values("project_id", ignore_index=True)


@dataclass(frozen=True)
class Tiles:
    """The Overview's tiles over the projects of a project_summary; None where there is nothing to show."""

    pace_per_hour: float  # annotations per hour in the last PACE_WINDOW of the range: the current pace
    annotations_per_hour: float  # over the whole range, quiet hours included
    tasks_completed: int
    backlog: int
    eta_hours: float | None  # None: never at the last hour's completion rate
    first_pass_acceptance: float | None
    gold_accuracy: float | None  # None below MIN_GOLD_ANSWERS answers
    krippendorff_alpha: float | None  # averaged over projects


def tiles(summary: pd.DataFrame, filters: queries.Filters) -> Tiles:
    def total(column: str) -> float:
        return float(summary[column].sum()) if not summary.empty else 0.0

    backlog = int(total("backlog"))
    eta = eta_hours(backlog, per_hour(total("completed_recently"), PACE_WINDOW))  # a count over the pace window
    alpha = summary["krippendorff_alpha"].dropna() if not summary.empty else pd.Series(dtype=float)
    return Tiles(
        pace_per_hour=per_hour(total("annotations_recently"), PACE_WINDOW),
        annotations_per_hour=per_hour(total("annotations"), filters.span),
        tasks_completed=int(total("tasks_completed")),
        backlog=backlog,
        eta_hours=None if eta == float("inf") else eta,
        first_pass_acceptance=ratio(total("first_pass_accepted"), total("first_pass_reviews")),
        gold_accuracy=ratio(total("gold_correct"), total("gold_answers"))
        if total("gold_answers") >= MIN_GOLD_ANSWERS
        else None,
        krippendorff_alpha=float(alpha.mean()) if len(alpha) else None,
    )


# The Annotators view's columns, in order (the dashboard shows and exports exactly these).
SCORECARD_COLUMNS = [
    "annotator_id",
    "annotations",
    "active_hours",
    "per_active_hour",
    "model_assisted_share",
    "handle_p50_s",
    "handle_p90_s",
    "skip_rate",
    "first_pass_acceptance",
    "acceptance",
    "gold_accuracy",
    "gold_ci",
    "gold_answers",
    "peer_agreement",
    "flags",
]


def annotator_scorecard(filters: queries.Filters, fetch: Fetch) -> pd.DataFrame:
    """One row per annotator, exactly SCORECARD_COLUMNS, most annotations first."""
    output = fetch(queries.annotator_output(filters))
    if output.empty:
        return pd.DataFrame(columns=SCORECARD_COLUMNS)
    table = output.merge(fetch(queries.annotator_active_time(filters)), on="annotator_id", how="left")
    reviews = fetch(queries.review_totals(filters, by="annotator_id")).rename(
        columns={"acceptance_score": "acceptance"}
    )
    table = table.merge(reviews, on="annotator_id", how="left")
    table = table.merge(fetch(queries.gold_totals(filters, by="annotator_id")), on="annotator_id", how="left")
    table = table.merge(fetch(queries.first_pass_totals(filters, by="annotator_id")), on="annotator_id", how="left")
    table = table.merge(fetch(queries.annotator_peer_agreement(filters)), on="annotator_id", how="left")
    for column in ("active_hours", "reviewed", "accepted", "fixed", "gold_answers", "gold_correct"):
        table[column] = table[column].fillna(0)
    table["per_active_hour"] = (table["annotations"] / table["active_hours"]).where(table["active_hours"] > 0)
    table["model_assisted_share"] = (table["model_assisted"] / table["annotations"]).where(table["annotations"] > 0)
    table["gold_accuracy"] = table["gold_accuracy"].where(table["gold_answers"] >= MIN_GOLD_ANSWERS)
    table["gold_ci"] = [
        f"{_interval(wilson_interval(int(c), int(n)))} · N {int(n)}"
        if n >= MIN_GOLD_ANSWERS
        else f"{MISSING} · N {int(n)}"
        for c, n in zip(table["gold_correct"], table["gold_answers"], strict=True)
    ]
    table["gold_answers"] = table["gold_answers"].astype("int64")
    table["flags"] = flag_outliers(table)
    numeric = [name for name in SCORECARD_COLUMNS if name not in ("annotator_id", "gold_ci", "flags")]
    table[numeric] = table[numeric].apply(pd.to_numeric)  # NULLs become NaN: shown empty, not "None"
    return table[SCORECARD_COLUMNS].sort_values("annotations", ascending=False, ignore_index=True)


def _interval(bounds: tuple[float, float] | None) -> str:
    return MISSING if bounds is None else f"{bounds[0]:.0%} – {bounds[1]:.0%}"


# Outlier flags judge only annotators with this many annotations in the range (fewer say little), flag a gold
# accuracy whose Wilson upper bound is under FLAG_GOLD_FLOOR, and a skip rate only above FLAG_SKIP_FLOOR.
FLAG_MIN_ANNOTATIONS = 20
FLAG_GOLD_FLOOR = 0.7
FLAG_SKIP_FLOOR = 0.2


def flag_outliers(
    table: pd.DataFrame, gold_floor: float = FLAG_GOLD_FLOOR, min_annotations: int = FLAG_MIN_ANNOTATIONS
) -> pd.Series:
    """A reason text per annotator row ('' when nothing stands out).

    Judged only on annotators with at least `min_annotations` in the range, against the
    group's own median: speed far above or below peers (annotations per active hour beyond
    3 median absolute deviations), handle time p50 under a third of the group's median (likely
    clicking through), skip rate over twice the group's and above FLAG_SKIP_FLOOR, and a gold accuracy
    whose Wilson upper bound is below `gold_floor` after MIN_GOLD_ANSWERS answers.
    """
    reasons = pd.Series("", index=table.index, dtype=object)
    judged = table["annotations"] >= min_annotations

    def add(mask: pd.Series, text: str) -> None:
        mask = mask.fillna(False) & judged
        reasons[mask] = reasons[mask].map(lambda existing: f"{existing}; {text}" if existing else text)

    speed = table["per_active_hour"]
    median = speed[judged].median()
    mad = (speed[judged] - median).abs().median()
    if pd.notna(median) and pd.notna(mad) and mad > 0:
        add(speed > median + 3 * mad, f"much faster than peers (median {median:.0f}/active h)")
        add(speed < median - 3 * mad, f"much slower than peers (median {median:.0f}/active h)")
    handle = table["handle_p50_s"]
    handle_median = handle[judged].median()
    if pd.notna(handle_median) and handle_median > 0:
        add(handle < handle_median / 3, f"handle time under a third of peers' ({handle_median:.0f} s)")
    skip_median = table["skip_rate"][judged].median()
    if pd.notna(skip_median):
        add(
            (table["skip_rate"] > 2 * skip_median) & (table["skip_rate"] > FLAG_SKIP_FLOOR),
            f"skips often (peers {skip_median:.0%})",
        )
    upper = table.apply(
        lambda row: (
            (wilson_interval(int(row["gold_correct"]), int(row["gold_answers"])) or (None, None))[1]
            if row["gold_answers"] >= MIN_GOLD_ANSWERS
            else None
        ),
        axis=1,
    )
    add(pd.to_numeric(upper, errors="coerce") < gold_floor, f"gold accuracy below {gold_floor:.0%} (95 % CI)")
    return reasons
