"""Small statistics every component agrees on (the dashboard shows them, alert rules judge by them), each with
its PromQL twin beside it."""

from __future__ import annotations

import math

Z = 1.96  # 95 %


def wilson_interval(successes: int, trials: int, z: float = Z) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_bound_promql(successes: str, trials: str, upper: bool) -> str:
    """PromQL for one bound of wilson_interval (z = Z) of two series; no sample without trials."""
    p, n = f"({successes} / {trials})", trials
    half = f"{Z} * sqrt({p} * (1 - {p}) / {n} + {Z * Z / 4:.6g} / ({n} ^ 2))"
    return f"(({p} + {Z * Z / 2:.6g} / {n}) {'+' if upper else '-'} {half}) / (1 + {Z * Z:.6g} / {n})"
