"""Experiment statistics: cost per comparison against gbstats, in the same run.

Equal work: for every comparison both sides start from the same per-arm sufficient
statistics (n, sum, sum of squares, covariate sums), already in each library's own input
objects (ours ``ArmSummary``, gbstats' statistic dataclasses, built outside the timing),
and compute the effect, its standard
error, the interval and the p-value (frequentist, sequential) or the chance to win, interval
and expected loss (Bayesian Gaussian). gbstats has no batch API, so its cost is one test
object per comparison; ours is reported three ways:

- "batch": one ``analyze`` call over the same comparisons gbstats ran (``--gb-metrics``
  metrics x 2 treatment arms), divided by the number of comparisons;
- "full": one ``analyze`` call over all ``--metrics`` metrics x 2 treatment arms (the
  experiment size of the < 100 ms bar), divided by the number of comparisons. gbstats' cost
  per comparison does not depend on how many it runs (one object each); ours falls as the
  fixed numpy cost spreads. Both columns are printed so neither hides the other;
- "single": one ``analyze`` call for one comparison (a worst case: all fixed costs).

Rounds alternate between gbstats and ours (``--repeat`` rounds, medians), so a change in the
machine's load hits both sides.

Also the total time of 1,000 metrics x 3 arms (the < 100 ms bar), per method.

    python benchmarks/experiments_stats.py [--metrics 1000] [--repeat 15]
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
    """Summaries of a randomized experiment: per metric one population (mean, spread,
    pre/post correlation), arms that differ by a small lift, and pre-period covariate means
    that differ between arms only by sampling noise (as randomization leaves them; wildly
    different pre-period means would be flagged ``pre_period_imbalance`` on every cell)."""
    rng = np.random.default_rng(seed)
    ours: list[ArmSummary] = []
    raw: list[dict[str, Any]] = []
    for m in range(n_metrics):
        my, mx = rng.uniform(5, 10), rng.uniform(5, 10)
        sy, sx, rho = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0.2, 0.8)
        for arm in "ABC":
            n = int(rng.integers(1000, 50_000))
            arm_y = my * (1 + (rng.normal(0, 0.02) if arm != "A" else 0.0))
            arm_x = mx + rng.normal(0, sx / n**0.5)
            s, ps = n * arm_y, n * arm_x
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
    parser.add_argument("--repeat", type=int, default=15, help="alternating rounds")
    args = parser.parse_args()

    ours, raw = _arms(args.metrics)
    gb_raw = raw[: 3 * args.gb_metrics]
    gb_ours = ours[: 3 * args.gb_metrics]
    single = ours[:2]
    comparisons = 2 * args.metrics
    gb_comparisons = 2 * args.gb_metrics
    analyze(ours)  # warm the lazy imports

    print(f"{'comparison':<22}{'gbstats µs':>11}{'batch µs':>10}{'full µs':>9}{'single µs':>11}"
          f"{'x batch':>9}{'x full':>8}{'x single':>9}")  # fmt: skip
    for label, kw in METHODS.items():
        # relative difference is gbstats' default; correction off (gbstats has none)
        opts = dict(kw, difference="relative", correction="none", binomial_exact=False)
        gb_run = _gbstats_runner(gb_raw, GB_KIND[label])
        # rounds alternate between the two libraries, so load changes on the machine hit both
        gb_t, batch_t, full_t, single_t = [], [], [], []
        for _ in range(args.repeat):
            gb_t.append(_median_time(gb_run, 1) / gb_comparisons)
            batch_t.append(_median_time(partial(analyze, gb_ours, **opts), 1) / gb_comparisons)
            full_t.append(_median_time(partial(analyze, ours, **opts), 1) / comparisons)
            single_t.append(_median_time(partial(analyze, single, **opts), 5))
        t_gb, t_batch, t_full, t_single = map(statistics.median, (gb_t, batch_t, full_t, single_t))
        print(
            f"{label:<22}{t_gb * 1e6:>11.1f}{t_batch * 1e6:>10.2f}{t_full * 1e6:>9.2f}"
            f"{t_single * 1e6:>11.1f}{t_gb / t_batch:>8.1f}x{t_gb / t_full:>7.1f}x"
            f"{t_gb / t_single:>8.2f}x"
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
