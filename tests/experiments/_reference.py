"""An independent, deliberately naive reference for per-arm sufficient statistics.

It replays a list of exposures and events in order, keeps every event of each unit, and only
at the end computes each unit's value from its full list, then sums over units. No deltas,
no running totals: a different computation from the engine's incremental one.
"""

from __future__ import annotations

import math
from typing import Any


def _cap(v: float, lo: float | None, hi: float | None) -> float:
    if lo is not None:
        v = max(v, lo)
    if hi is not None:
        v = min(v, hi)
    return v


def reference_sums(
    log: list[tuple[Any, ...]], metrics: dict[str, dict[str, Any]]
) -> dict[tuple[str, str], dict[str, float]]:
    """``log`` items: ("x", unit, arm) or ("m", unit, event_id, metric, value, den, cov)."""
    arm_of: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    values: dict[tuple[str, str], list[tuple[float, float]]] = {}
    covariate: dict[tuple[str, str], float] = {}
    for item in log:
        if item[0] == "x":
            arm_of.setdefault(item[1], item[2])
            continue
        _, unit, eid, metric, value, den, cov = item
        if (unit, eid) in seen:
            continue
        seen.add((unit, eid))
        if unit not in arm_of:
            continue
        values.setdefault((unit, metric), []).append((value, den))
        if cov is not None:
            covariate[(unit, metric)] = cov
    out: dict[tuple[str, str], dict[str, float]] = {}
    for metric, spec in metrics.items():
        for unit, arm in arm_of.items():
            rows = values.get((unit, metric), [])
            total = math.fsum(v for v, _ in rows)
            if spec.get("kind") == "binomial":
                y = 1.0 if total > 0 else 0.0
            else:
                y = _cap(total, spec.get("cap_lower"), spec.get("cap_upper"))
            d = 0.0
            if spec.get("kind") == "ratio":
                d = _cap(
                    math.fsum(dd for _, dd in rows),
                    spec.get("denominator_cap_lower"),
                    spec.get("denominator_cap_upper"),
                )
            x = covariate.get((unit, metric), 0.0)
            acc = out.setdefault(
                (arm, metric),
                {
                    "n": 0,
                    "sum": 0.0,
                    "sum_sq": 0.0,
                    "pre_sum": 0.0,
                    "pre_sum_sq": 0.0,
                    "cross_sum": 0.0,
                    "denom_sum": 0.0,
                    "denom_sum_sq": 0.0,
                    "num_denom_sum": 0.0,
                },
            )
            acc["n"] += 1
            acc["sum"] += y
            acc["sum_sq"] += y**2
            acc["pre_sum"] += x
            acc["pre_sum_sq"] += x**2
            acc["cross_sum"] += x * y
            acc["denom_sum"] += d
            acc["denom_sum_sq"] += d**2
            acc["num_denom_sum"] += y * d
    return out


def assert_matches(summaries: list[Any], expected: dict[tuple[str, str], dict[str, float]]):
    """Every summary equals the reference (n exactly, sums to 1e-9 relative)."""
    for s in summaries:
        ref = expected.get((s.arm, s.metric))
        if ref is None:
            assert s.n == 0 and s.sum == 0 and s.sum_sq == 0, s
            continue
        assert s.n == ref["n"], (s, ref)
        for field in (
            "sum",
            "sum_sq",
            "pre_sum",
            "pre_sum_sq",
            "cross_sum",
            "denom_sum",
            "denom_sum_sq",
            "num_denom_sum",
        ):
            got, want = getattr(s, field), ref[field]
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-7), (s, field, got, want)
