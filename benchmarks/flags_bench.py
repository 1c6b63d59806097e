"""Flag evaluation throughput: cognitionos.flags against PyPI ``growthbook`` in the same run.

Run:  python benchmarks/flags_bench.py [--quick]

Scenarios (the same GrowthBook payload is given to both engines):

1. targeted rollout - a 2-attribute condition plus a 30% rollout hashed on the
   user id (hash version 2); every user matches the condition, so every call
   evaluates both conditions and hashes.
2. pure rollout - a 50% rollout, no condition: one hash per call.
3. evaluate_all - 100 mixed flags (static, targeted, rollouts, experiments) for
   one user; reported as p50/p99 latency per call.

GrowthBook is driven through its public API the cheapest way: one instance,
``set_attributes`` then ``eval_feature`` per user. Numbers are medians of
several repetitions; the ratio is ours / growthbook (higher is better for us).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from cognitionos.flags import FlagEngine

TARGETED = {
    "defaultValue": False,
    "rules": [
        {
            "id": "nl-pro",
            "condition": {"country": {"$in": ["NL", "BE", "DE"]}, "plan": "pro"},
            "force": True,
            "coverage": 0.3,
            "hashAttribute": "id",
            "hashVersion": 2,
        }
    ],
}
ROLLOUT = {
    "defaultValue": False,
    "rules": [{"force": True, "coverage": 0.5, "hashAttribute": "id", "hashVersion": 2}],
}


def mixed_features(n: int = 100) -> dict[str, Any]:
    """``n`` flags cycling through the common kinds of flag."""
    out: dict[str, Any] = {}
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out[f"static-{i}"] = {"defaultValue": i % 2 == 0}
        elif kind == 1:
            out[f"targeted-{i}"] = TARGETED
        elif kind == 2:
            out[f"rollout-{i}"] = {
                "defaultValue": "off",
                "rules": [{"force": "on", "coverage": 0.2, "seed": f"s{i}", "hashVersion": 2}],
            }
        elif kind == 3:
            out[f"experiment-{i}"] = {
                "defaultValue": "control",
                "rules": [
                    {
                        "key": f"exp-{i}",
                        "variations": ["control", "a", "b"],
                        "weights": [0.34, 0.33, 0.33],
                        "coverage": 0.8,
                        "hashVersion": 2,
                        "meta": [{"key": "control"}, {"key": "a"}, {"key": "b"}],
                    }
                ],
            }
        else:
            out[f"segment-{i}"] = {
                "defaultValue": 0,
                "rules": [
                    {"condition": {"plan": {"$in": ["free"]}}, "force": 1},
                    {"condition": {"version": {"$vgte": "2.0.0"}}, "force": 2},
                ],
            }
    return out


def users(n: int) -> list[dict[str, Any]]:
    countries = ["NL", "BE", "DE"]
    return [
        {"id": f"user-{i}", "country": countries[i % 3], "plan": "pro", "version": "2.1.0"}
        for i in range(n)
    ]


def throughput(
    fn: Callable[[dict[str, Any]], Any], people: list[dict[str, Any]], reps: int
) -> float:
    """Median evaluations per second over ``reps`` passes through ``people``."""
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for u in people:
            fn(u)
        rates.append(len(people) / (time.perf_counter() - t0))
    return statistics.median(rates)


def latency(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``n`` calls."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    n_users = 5_000 if args.quick else 20_000
    reps = 3 if args.quick else 7
    people = users(n_users)

    try:
        from growthbook import GrowthBook
    except ImportError:  # pragma: no cover - the peers extra is optional
        GrowthBook = None

    print(f"python {sys.version.split()[0]}, {n_users} users x {reps} repetitions (median)")
    print(f"{'scenario':<34}{'cognitionos':>14}{'growthbook':>14}{'ratio':>8}")
    for name, feature in (
        ("targeted 2-attr + 30% rollout", TARGETED),
        ("pure 50% rollout", ROLLOUT),
    ):
        payload = {"features": {"f": feature}}
        engine = FlagEngine.from_growthbook(payload)
        ev = engine.evaluate
        ours = throughput(lambda u, ev=ev: ev("f", u, False), people, reps)  # type: ignore[misc]
        theirs = None
        if GrowthBook is not None:
            gb = GrowthBook(features=payload["features"])

            def gb_eval(u: dict[str, Any], gb: Any = gb) -> Any:
                gb.set_attributes(u)
                return gb.eval_feature("f")

            # both engines must agree before their speed means anything
            for u in people[:500]:
                assert gb_eval(u).value == ev("f", u, False).value, u
            theirs = throughput(gb_eval, people, reps)
        ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
        gb_text = f"{theirs:,.0f}/s" if theirs else "n/a"
        print(f"{name:<34}{ours:>12,.0f}/s{gb_text:>14}{ratio:>8}")

    features = mixed_features(100)
    engine = FlagEngine.from_growthbook({"features": features})
    user = people[7]
    p50, p99 = latency(lambda: engine.evaluate_all(user), 300 if args.quick else 2000)
    gb_text = "n/a"
    if GrowthBook is not None:
        gb = GrowthBook(features=features)

        def gb_all() -> None:
            gb.set_attributes(user)
            for k in features:
                gb.eval_feature(k)

        g50, _ = latency(gb_all, 100 if args.quick else 500)
        gb_text = f"{g50:.3f} ms"
        ratio = f"{g50 / p50:.2f}x"
    else:
        ratio = "n/a"
    print(f"{'evaluate_all 100 flags p50':<34}{p50:>11.3f} ms{gb_text:>14}{ratio:>8}")
    print(f"{'evaluate_all 100 flags p99':<34}{p99:>11.3f} ms")
    openfeature_overhead(people[:2000], reps)
    return 0


def openfeature_overhead(people: list[dict[str, Any]], reps: int) -> None:
    """OpenFeature client with our provider vs the SDK's own InMemoryProvider (static flag)."""
    try:
        from openfeature import api
        from openfeature.evaluation_context import EvaluationContext
        from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

        from cognitionos.integrations.openfeature import CognitionProvider
    except ImportError:
        print(f"{'openfeature static flag':<34}{'n/a (openfeature-sdk not installed)':>36}")
        return
    engine = FlagEngine.from_growthbook({"features": {"f": {"defaultValue": True}}})
    api.set_provider(CognitionProvider(engine), domain="ours")
    api.set_provider(InMemoryProvider({"f": InMemoryFlag("on", {"on": True})}), domain="sdk")
    ours_client, sdk_client = api.get_client("ours"), api.get_client("sdk")
    contexts = [EvaluationContext(u["id"], {"country": u["country"]}) for u in people]
    ours = throughput(lambda c: ours_client.get_boolean_value("f", False, c), contexts, reps)  # type: ignore[arg-type]
    sdk = throughput(lambda c: sdk_client.get_boolean_value("f", False, c), contexts, reps)  # type: ignore[arg-type]
    api.clear_providers()
    label = "openfeature static flag"
    print(
        f"{label:<34}{ours:>12,.0f}/s{sdk:>12,.0f}/s{ours / sdk:>7.2f}x  (peer: InMemoryProvider)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
