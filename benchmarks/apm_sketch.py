"""Latency sketch insert and quantile cost: LatencySketch vs ``ddsketch`` vs ``hdrhistogram``.

Run:  python benchmarks/apm_sketch.py [--values 200000] [--rounds 7]

Equal work: the same lognormal latencies (seconds, median ~50 ms, heavy right tail) go
into each structure, one call per value:
- cognitionos ``LatencySketch(0.01).add(v)`` and, as its batch path, ``add_many(values)``;
- ``ddsketch.DDSketch(relative_accuracy=0.01).add(v)`` (log mapping, unbounded dense store);
- ``HdrHistogram(1, 3_600_000_000, 2).record_value(us)`` with values pre-converted to whole
  microseconds outside the timing (2 significant digits = 1 % resolution).
Then p50/p90/p99/p99.9 are read from each and compared with the exact quantiles.

Medians over ``--rounds``; ratios are peer / ours (higher is better for us).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from cognitionos.apm import LatencySketch

QS = (0.5, 0.9, 0.99, 0.999)


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    samples = []
    result = None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(1)
    values = [rng.lognormvariate(math.log(0.05), 1.0) for _ in range(args.values)]
    micros = [max(1, round(v * 1e6)) for v in values]
    ordered = sorted(values)
    exact = {q: ordered[math.floor(q * (len(values) - 1))] for q in QS}
    n = len(values)

    def ours_loop() -> LatencySketch:
        sk = LatencySketch(0.01)
        add = sk.add
        for v in values:
            add(v)
        return sk

    def ours_batch() -> LatencySketch:
        sk = LatencySketch(0.01)
        sk.add_many(values)
        return sk

    sides: dict[str, tuple[Callable[[], Any], Callable[[Any, float], float]]] = {
        "cognitionos add": (ours_loop, lambda sk, q: sk.quantile(q)),
        "cognitionos add_many": (ours_batch, lambda sk, q: sk.quantile(q)),
    }
    try:
        from ddsketch import DDSketch

        def dd_loop() -> Any:
            sk = DDSketch(relative_accuracy=0.01)
            add = sk.add
            for v in values:
                add(v)
            return sk

        sides["ddsketch add"] = (dd_loop, lambda sk, q: sk.get_quantile_value(q))
    except ImportError:
        print("ddsketch not installed (pip install -e '.[peers]'): skipped", file=sys.stderr)
    try:
        from hdrh.histogram import HdrHistogram

        def hdr_loop() -> Any:
            h = HdrHistogram(1, 3_600_000_000, 2)
            record = h.record_value
            for us in micros:
                record(us)
            return h

        sides["hdrhistogram record_value"] = (
            hdr_loop,
            lambda h, q: h.get_value_at_percentile(q * 100) / 1e6,
        )
    except ImportError:
        print("hdrhistogram not installed (pip install -e '.[peers]'): skipped", file=sys.stderr)

    print(f"{n} lognormal latencies, median of {args.rounds} rounds")
    head = f"{'structure':<28} {'ns/value':>9} {'vs ours(add)':>13}"
    print(f"{head} {'quantile µs':>12} {'max rel err':>12}")
    base = None
    for label, (build, read) in sides.items():
        seconds, structure = timed(build, args.rounds)
        per_value = seconds / n * 1e9
        if base is None:
            base = per_value
        q_seconds, _ = timed(lambda s=structure, r=read: [r(s, q) for q in QS], args.rounds)
        err = max(abs(read(structure, q) - exact[q]) / exact[q] for q in QS)
        print(
            f"{label:<28} {per_value:>9.0f} {per_value / base:>12.2f}x "
            f"{q_seconds / len(QS) * 1e6:>12.1f} {err:>12.4%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
