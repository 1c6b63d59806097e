"""Experiment ingestion: metric events/s into each backend (medians), against a plain baseline.

What each side computes (equal work per event): de-duplicate by (unit, event id), look up the
unit's arm, update the unit's running total and fold the change of its contribution into the
arm's sum and sum of squares. The baseline does exactly that with dicts and a set, no engine,
no validation, no event log; ``ExperimentEngine`` also validates each event and appends the
counted ones to the store's event log.

    python benchmarks/experiments_ingest.py --events 100000 --rounds 3 \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from cognitionos.experiments import ExperimentEngine

UNITS = 10_000


def _events(n: int, tag: str) -> list[tuple[str, str, float, str]]:
    return [(f"u{(i * 7919) % UNITS}", "revenue", float(i % 13), f"{tag}-{i}") for i in range(n)]


def baseline(events: list[tuple[str, str, float, str]]) -> tuple[float, float]:
    """Plain-Python reference: (wall, CPU) seconds to fold ``events`` into per-arm sums."""
    arm_of = {f"u{i}": ("a" if i % 2 else "b") for i in range(UNITS)}
    seen: set[tuple[str, str]] = set()
    totals: dict[str, float] = {}
    sums: dict[str, list[float]] = {"a": [0.0, 0.0], "b": [0.0, 0.0]}
    t0, c0 = time.perf_counter(), time.process_time()
    for unit, _metric, value, eid in events:
        if (unit, eid) in seen:
            continue
        seen.add((unit, eid))
        arm = arm_of.get(unit)
        if arm is None:
            continue
        old = totals.get(unit, 0.0)
        new = old + value
        totals[unit] = new
        acc = sums[arm]
        acc[0] += new - old
        acc[1] += new * new - old * old
    return time.perf_counter() - t0, time.process_time() - c0


def engine_run(
    url: str, events: list[tuple[str, str, float, str]], batch: int
) -> tuple[float, float]:
    """(wall, CPU) seconds for ExperimentEngine.track_many to ingest ``events`` in batches."""
    key = f"bench-{uuid.uuid4().hex[:8]}"
    with ExperimentEngine(store=url) as engine:
        engine.create(
            {
                "key": key,
                "arms": [{"key": "a"}, {"key": "b"}],
                "metrics": [{"name": "revenue"}],
                "status": "running",
            }
        )
        engine.track_exposures(key, [(f"u{i}", "a" if i % 2 else "b") for i in range(UNITS)])
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(events), batch):
            engine.track_many(key, events[i : i + batch])
        elapsed = time.perf_counter() - t0, time.process_time() - c0
        check = sum(s.n for s in engine.summary(key))
        assert check == UNITS, check
        engine.delete(key)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--postgres", default=None, help="PostgreSQL URL (skipped when absent)")
    ap.add_argument("--redis", default=None, help="Redis URL (skipped when absent)")
    ap.add_argument("--sql-events", type=int, default=20_000, help="events per round for SQL/Redis")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp())
    backends: list[tuple[str, str, int]] = [
        ("memory", "memory://", args.events),
        ("sqlite", f"sqlite:///{tmp / 'bench.db'}", args.sql_events),
    ]
    if args.postgres:
        backends.append(("postgresql", args.postgres, args.sql_events))
    if args.redis:
        backends.append(("redis", args.redis, args.sql_events))

    results: dict[str, tuple[float, float]] = {}
    runs = [baseline(_events(args.events, f"b{r}")) for r in range(args.rounds)]
    results["baseline (dicts)"] = (
        args.events / statistics.median(w for w, _ in runs),
        args.events / statistics.median(c for _, c in runs),
    )
    for name, url, n in backends:
        runs = [engine_run(url, _events(n, f"{name}{r}"), args.batch) for r in range(args.rounds)]
        results[name] = (
            n / statistics.median(w for w, _ in runs),
            n / statistics.median(c for _, c in runs),
        )
    print(
        f"events per round: memory/baseline {args.events}, SQL/Redis {args.sql_events}; "
        f"batch {args.batch}; {args.rounds} rounds; medians. Wall clock counts the server's "
        "time; CPU is this process only (the machine is shared: CPU shows the code's cost)"
    )
    base_wall = results["baseline (dicts)"][0]
    print(f"{'backend':<18} {'events/s wall':>14} {'vs baseline':>12} {'events/s CPU':>14}")
    for name, (wall, cpu) in results.items():
        print(f"{name:<18} {wall:>14,.0f} {wall / base_wall:>11.2f}x {cpu:>14,.0f}")
    single = ExperimentEngine()
    single.create(
        {
            "key": "one",
            "arms": [{"key": "a"}, {"key": "b"}],
            "metrics": [{"name": "m"}],
            "status": "running",
        }
    )
    single.track_exposures("one", [(f"u{i}", "a") for i in range(100)])
    t0 = time.perf_counter()
    for i in range(20_000):
        single.track("one", f"u{i % 100}", "m", 1.0, f"s{i}")
    per = (time.perf_counter() - t0) / 20_000
    print(f"single track() into memory: {per * 1e6:.1f} µs/event ({1 / per:,.0f} events/s)")


if __name__ == "__main__":
    main()
