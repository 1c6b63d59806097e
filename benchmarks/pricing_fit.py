"""CLV fit time against PyPI ``lifetimes`` in the same run, on the CDNOW / donations data.

Equal work: both sides fit the same arrays by maximum likelihood and compute standard errors
where the peer does (lifetimes: BG/NBD, Gamma-Gamma and BG/BB from its Hessian; ours: every
model, several starting points, Newton polishing). Both log-likelihoods are printed side by
side (evaluated with our likelihood at each side's parameters, so they are comparable).
Also times scoring 1,000,000 customers (conditional expected purchases + P(alive)).

    python benchmarks/pricing_fit.py --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cognitionos.pricing import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
)
from cognitionos.testing import shared_data


def _columns(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _time(fn, repeat: int) -> tuple[float, object]:
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import lifetimes
        except ImportError:
            lifetimes = None
            print("lifetimes not installed (pip install -e '.[peers]'): ours only")

    cd = _columns(shared_data("stats/lifetimes/cdnow_customers_summary.csv"))
    money = _columns(shared_data("stats/lifetimes/cdnow_customers_summary_with_transactions.csv"))
    don = _columns(shared_data("stats/lifetimes/donations.csv"))
    x, tx, T = cd["frequency"], cd["recency"], cd["T"]
    rep = money["x"] > 0
    gx, gm = money["x"][rep], money["zbar"][rep]
    f, r, n, w = don["frequency"], don["recency"], don["periods"], don["weights"]

    cases = [
        (
            "BG/NBD  CDNOW",
            lambda: BetaGeoModel().fit(x, tx, T),
            (lambda: lifetimes.BetaGeoFitter().fit(x, tx, T)) if lifetimes else None,
            lambda p: BetaGeoModel._ll_rows(np.array([p]), x, tx, T).sum(),
            ("r", "alpha", "a", "b"),
        ),
        (
            "Pareto  CDNOW",
            lambda: ParetoNBDModel().fit(x, tx, T),
            (lambda: lifetimes.ParetoNBDFitter().fit(x, tx, T)) if lifetimes else None,
            lambda p: ParetoNBDModel._ll_rows(np.array([p]), x, tx, T).sum(),
            ("r", "alpha", "s", "beta"),
        ),
        (
            "GammaG  CDNOW",
            lambda: GammaGammaModel().fit(gx, gm),
            (lambda: lifetimes.GammaGammaFitter().fit(gx, gm)) if lifetimes else None,
            lambda p: GammaGammaModel._ll_rows(np.array([p]), gx, gm).sum(),
            ("p", "q", "v"),
        ),
        (
            "BG/BB   donat.",
            lambda: BetaGeoBetaBinomModel().fit(f, r, n, weights=w),
            (lambda: lifetimes.BetaGeoBetaBinomFitter().fit(f, r, n, weights=w))
            if lifetimes
            else None,
            lambda p: float((BetaGeoBetaBinomModel._ll_rows(np.array([p]), f, r, n) @ w)[0]),
            ("alpha", "beta", "gamma", "delta"),
        ),
    ]
    print(f"median of {args.repeat} fits, seconds (lower is better)")
    head = f"{'model':<15} {'ours':>8} {'lifetimes':>10} {'speedup':>8}"
    print(f"{head}   {'LL ours':>12} {'LL lifetimes':>13}")
    for label, ours, theirs, ll, names in cases:
        t_ours, m = _time(ours, args.repeat)
        ll_ours = ll([m.params[k] for k in names])
        if theirs is None:
            print(f"{label:<15} {t_ours:>8.3f}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_theirs, fitted = _time(theirs, args.repeat)
        ll_theirs = ll([float(fitted.params_[k]) for k in names])
        print(
            f"{label:<15} {t_ours:>8.3f} {t_theirs:>10.3f} {t_theirs / t_ours:>7.1f}x   "
            f"{ll_ours:>12.4f} {ll_theirs:>13.4f}"
        )

    m = BetaGeoModel().fit(x, tx, T)
    rng = np.random.default_rng(0)
    size = args.customers
    bt = rng.uniform(1, 52, size)
    bx = rng.integers(0, 20, size).astype(float)
    btx = np.where(bx > 0, rng.uniform(0.01, 1, size) * bt, 0.0)
    t_score, _ = _time(
        lambda: (
            m.conditional_expected_purchases(10, bx, btx, bt),
            m.probability_alive(bx, btx, bt),
        ),
        max(1, args.repeat // 2),
    )
    line = f"score {size:,} customers (E[purchases next 10] + P(alive)), BG/NBD: {t_score:.3f} s"
    if lifetimes:
        fitter = lifetimes.BetaGeoFitter()
        fitter.params_ = __import__("pandas").Series(m.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_peer, _ = _time(
                lambda: (
                    fitter.conditional_expected_number_of_purchases_up_to_time(10, bx, btx, bt),
                    fitter.conditional_probability_alive(bx, btx, bt),
                ),
                max(1, args.repeat // 2),
            )
        line += f"; lifetimes {t_peer:.3f} s ({t_peer / t_score:.1f}x)"
    print(line)


if __name__ == "__main__":
    main()
