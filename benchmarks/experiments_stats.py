"""Experiment statistics: cost per comparison against gbstats, in the same run.

Equal work: for every comparison both sides start from the same per-arm sufficient
statistics (n, sum, sum of squares, covariate sums), already in each library's own input
objects (ours ``ArmSummary``, gbstats' statistic dataclasses, built outside the timing),
and compute the effect, its standard
error, the interval and the p-value (frequentist, sequential) or the chance to win, interval
and expected loss (Bayesian Gaussian). gbstats has no batch API, so its cost is one test
object per comparison; ours is reported two ways:

- "batch": one ``analyze`` call over all comparisons (M metrics x 2 treatment arms), divided
  by the number of comparisons (the way an experiment with many metrics is analyzed);
- "single": one ``analyze`` call for one comparison (a worst case: all fixed costs).

Also the total time of 1,000 metrics x 3 arms (the < 100 ms bar), per method.

    python benchmarks/experiments_stats.py [--metrics 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from cognitionos.experiments import ArmSummary, analyze


def _arms(n_metrics: int, seed: int = 0) -> tuple[list[ArmSummary], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    ours: list[ArmSummary] = []
    raw: list[dict[str, Any]] = []
    for m in range(n_metrics):
        for arm in "ABC":
            n = int(rng.integers(1000, 50_000))
            my, mx = rng.uniform(5, 10), rng.uniform(5, 10)
            sy, sx, rho = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0.2, 0.8)
            s, ps = n * my, n * mx
            row = {
                "arm": arm, "metric": f"m{m}", "n": n, "sum": s,
                "sum_sq": sy * sy * (n - 1) + s * s / n, "pre_sum": ps,
                "pre_sum_sq": sx * sx * (n - 1) + ps * ps / n,
                "cross_sum": rho * sy * sx * (n - 1) + s * ps / n,
            }  # fmt: skip
            raw.append(row)
            ours.append(ArmSummary(**row))
    return ours, raw


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _gbstats_runner(raw: list[dict[str, Any]], kind: str) -> Callable[[], object]:
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )
    from gbstats.models.statistics import RegressionAdjustedStatistic, SampleMeanStatistic

    def stat(r: dict[str, Any]) -> Any:
        post = SampleMeanStatistic(n=r["n"], sum=r["sum"], sum_squares=r["sum_sq"])
        if kind != "cuped":
            return post
        pre = SampleMeanStatistic(n=r["n"], sum=r["pre_sum"], sum_squares=r["pre_sum_sq"])
        return RegressionAdjustedStatistic(
            n=r["n"], post_statistic=post, pre_statistic=pre,
            post_pre_sum_of_products=r["cross_sum"], theta=0,
        )  # fmt: skip

    # statistic objects are built outside the timing, as our ArmSummary objects are
    stats = [stat(r) for r in raw]
    pairs = [(stats[i], stats[i + j]) for i in range(0, len(raw), 3) for j in (1, 2)]
    configs = (SequentialConfig(), EffectBayesianConfig(), FrequentistConfig())

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in pairs:
                if kind == "sequential":
                    t: Any = SequentialTwoSidedTTest(a, b, configs[0])
                elif kind == "bayesian":
                    t = EffectBayesianABTest(a, b, configs[1])
                else:
                    t = TwoSidedTTest(a, b, configs[2])
                t.compute_result()

    return run


METHODS = {
    "t-test": {"method": "frequentist", "cuped": False},
    "sequential": {"method": "sequential", "cuped": False},
    "CUPED t-test": {"method": "frequentist", "cuped": True},
    "Bayesian (Gaussian)": {"method": "bayesian", "cuped": False},
}
GB_KIND = {
    "t-test": "ttest",
    "sequential": "sequential",
    "CUPED t-test": "cuped",
    "Bayesian (Gaussian)": "bayesian",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--gb-metrics", type=int, default=200, help="metrics run through gbstats")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    ours, raw = _arms(args.metrics)
    gb_raw = raw[: 3 * args.gb_metrics]
    gb_ours = ours[: 3 * args.gb_metrics]
    single = ours[:2]
    comparisons = 2 * args.metrics
    gb_comparisons = 2 * args.gb_metrics
    analyze(ours)  # warm the lazy imports

    print(f"{'comparison':<22}{'gbstats µs':>12}{'ours batch µs':>15}{'ours single µs':>16}"
          f"{'ratio batch':>13}{'ratio single':>14}")  # fmt: skip
    for label, kw in METHODS.items():
        # relative difference is gbstats' default; correction off (gbstats has none)
        opts = dict(kw, difference="relative", correction="none", binomial_exact=False)
        gb_run = _gbstats_runner(gb_raw, GB_KIND[label])
        t_gb = _median_time(gb_run, max(3, args.repeat // 2)) / gb_comparisons
        t_batch = _median_time(partial(analyze, gb_ours, **opts), args.repeat) / gb_comparisons
        t_single = _median_time(partial(analyze, single, **opts), args.repeat * 5)
        print(
            f"{label:<22}{t_gb * 1e6:>12.1f}{t_batch * 1e6:>15.2f}{t_single * 1e6:>16.1f}"
            f"{t_gb / t_batch:>12.0f}x{t_gb / t_single:>13.1f}x"
        )

    print(f"\n{args.metrics} metrics x 3 arms ({comparisons} comparisons), full analyze():")
    for label, kw in METHODS.items():
        t = _median_time(partial(analyze, ours, **kw), args.repeat)
        print(f"  {label:<22}{t * 1e3:8.1f} ms")
    conv = [
        ArmSummary(s.arm, s.metric, n=s.n, sum=round(s.n * 0.1), sum_sq=round(s.n * 0.1),
                   kind="binomial")
        for s in ours
    ]  # fmt: skip
    t = _median_time(partial(analyze, conv, method="bayesian"), args.repeat)
    print(f"  {'exact Beta-Binomial':<22}{t * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
