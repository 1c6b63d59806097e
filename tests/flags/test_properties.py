"""Properties of bucketing and evaluation that must hold for every input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.flags import (
    ErrorCode,
    EvaluationOptions,
    FlagDefinition,
    FlagEngine,
    FlagSet,
    InMemoryStickyBuckets,
    Prerequisite,
    Reason,
    Rule,
    Variation,
)
from cognitionos.flags._core import compile_snapshot, find_prerequisite_cycle
from cognitionos.hashing import growthbook_hash, murmur3_32

# chi-square critical values at p = 0.001 for 99 and 9 degrees of freedom
CHI2_CRIT_99 = 148.23
CHI2_CRIT_9 = 27.88

ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24).filter(
    lambda s: s != "random"
)
seeds = st.text(min_size=0, max_size=12)


def _chi_square(buckets: list[int], bins: int) -> float:
    counts = [0] * bins
    for b in buckets:
        counts[b] += 1
    expected = len(buckets) / bins
    return sum((c - expected) ** 2 / expected for c in counts)


@pytest.mark.slow
@pytest.mark.parametrize("version", [2, "unleash"])
def test_bucket_uniformity_chi_square_over_a_million_ids(version: Any) -> None:
    n = 1_000_000
    if version == "unleash":
        buckets = [murmur3_32(f"flag:user-{i}") % 100 for i in range(n)]
    else:
        # version 2 yields k/10000; integer arithmetic avoids float binning artefacts
        buckets = [
            round((growthbook_hash("flag-seed", f"user-{i}", version) or 0.0) * 10000) // 100
            for i in range(n)
        ]
    assert _chi_square(buckets, 100) < CHI2_CRIT_99


@pytest.mark.slow
def test_hash_version_1_is_uniform_at_decile_resolution() -> None:
    # GrowthBook's v1 (fnv1a % 1000) is biased at percent resolution (chi2 ~ 420
    # over 100 bins on a million ids), which is why v2 exists; deciles are even.
    n = 1_000_000
    buckets = [
        round((growthbook_hash("flag-seed", f"user-{i}", 1) or 0.0) * 1000) // 100 for i in range(n)
    ]
    assert _chi_square(buckets, 10) < CHI2_CRIT_9


def _rollout_engine(coverage: float, seed: str, version: int) -> FlagEngine:
    rule = Rule(value=True, coverage=coverage, seed=seed, hash_version=version)
    return FlagEngine([FlagDefinition(key="f", default_value=False, rules=[rule])])


@settings(max_examples=60, deadline=None)
@given(
    user=ids,
    seed=seeds,
    low=st.floats(0, 1),
    high=st.floats(0, 1),
    version=st.sampled_from([1, 2]),
)
def test_raising_a_rollout_keeps_everyone_already_in(
    user: str, seed: str, low: float, high: float, version: int
) -> None:
    low, high = min(low, high), max(low, high)
    before = _rollout_engine(low, seed, version).evaluate("f", {"id": user}, False).value
    after = _rollout_engine(high, seed, version).evaluate("f", {"id": user}, False).value
    assert not before or after


@settings(max_examples=40, deadline=None)
@given(
    user=ids,
    low=st.floats(0.01, 1),
    high=st.floats(0.01, 1),
    weights=st.lists(st.floats(0.05, 1), min_size=2, max_size=4),
)
def test_raising_experiment_coverage_keeps_assigned_variation(
    user: str, low: float, high: float, weights: list[float]
) -> None:
    low, high = min(low, high), max(low, high)
    total = sum(weights)
    norm = [w / total for w in weights]

    def engine(coverage: float) -> FlagEngine:
        rule = Rule(
            variations=[Variation(value=i, weight=w) for i, w in enumerate(norm)],
            coverage=coverage,
            hash_version=2,
        )
        return FlagEngine([FlagDefinition(key="e", default_value=-1, rules=[rule])])

    before = engine(low).evaluate("e", {"id": user}).value
    after = engine(high).evaluate("e", {"id": user}).value
    if before != -1:
        assert after == before


# derandomize: a statistical check fails by chance with probability p per example; a fixed set
# of examples makes a failure reproducible instead of an occasional red run.
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    pair=st.lists(st.text(min_size=1, max_size=10), min_size=2, max_size=2, unique=True),
    version=st.sampled_from([2, "unleash"]),
)
def test_flags_with_different_seeds_bucket_independently(pair: list[str], version: Any) -> None:
    n = 20_000
    a = _Bucketing(pair[0], version)
    b = _Bucketing(pair[1], version)
    both = only_a = only_b = 0
    for i in range(n):
        uid = f"u{i}"
        ia, ib = a.inside(uid, 0.5), b.inside(uid, 0.5)
        both += ia and ib
        only_a += ia and not ib
        only_b += ib and not ia
    # 2x2 contingency against independence at 50%/50%: each cell ~ n/4
    expected = n / 4
    neither = n - both - only_a - only_b
    chi2 = sum((c - expected) ** 2 / expected for c in (both, only_a, only_b, neither))
    # 3 degrees of freedom; p = 1e-6, so chance alone almost never fails one of 8 examples
    # (p = 0.001 failed about one full run in a hundred), while correlated seeds (chi2 in the
    # thousands) still fail
    assert chi2 < 30.66


class _Bucketing:
    def __init__(self, seed: str, version: Any) -> None:
        self.seed = seed
        self.version = version

    def inside(self, uid: str, coverage: float) -> bool:
        if self.version == "unleash":
            return murmur3_32(f"{self.seed}:{uid}") % 100 < coverage * 100
        n = growthbook_hash(self.seed, uid, self.version)
        assert n is not None
        return n < coverage


@settings(max_examples=30, deadline=None)
@given(
    old=st.lists(st.floats(0.05, 1), min_size=2, max_size=3),
    new=st.lists(st.floats(0.05, 1), min_size=2, max_size=3),
)
def test_sticky_assignments_survive_weight_changes(old: list[float], new: list[float]) -> None:
    size = min(len(old), len(new))
    old, new = old[:size], new[:size]

    def engine(weights: list[float]) -> FlagEngine:
        total = sum(weights)
        rule = Rule(
            experiment_key="exp",
            variations=[
                Variation(value=f"v{i}", key=f"v{i}", weight=w / total)
                for i, w in enumerate(weights)
            ],
            hash_version=2,
        )
        return FlagEngine([FlagDefinition(key="f", default_value="none", rules=[rule])])

    sticky = InMemoryStickyBuckets()
    opts = EvaluationOptions(sticky_buckets=sticky)
    users = [{"id": f"user-{i}"} for i in range(200)]
    first = [engine(old).evaluate("f", u, options=opts).value for u in users]
    later_engine = engine(new)
    later = [later_engine.evaluate("f", u, options=opts).value for u in users]
    assert later == first
    # every result after the change came from the sticky store
    assert all(
        later_engine.evaluate("f", u, options=opts).experiment.sticky_bucket_used  # type: ignore[union-attr]
        for u in users[:20]
    )


@st.composite
def prerequisite_graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 7))
    keys = [f"f{i}" for i in range(n)]
    return {
        k: draw(st.lists(st.sampled_from([*keys, "missing"]), max_size=3, unique=True))
        for k in keys
    }


def _reaches_itself(graph: dict[str, list[str]]) -> set[str]:
    """Keys on a cycle, by transitive closure (independent of the engine's DFS)."""
    reach = {k: {d for d in deps if d in graph} for k, deps in graph.items()}
    changed = True
    while changed:
        changed = False
        for k in reach:
            extra = set().union(*(reach[d] for d in reach[k])) - reach[k] if reach[k] else set()
            if extra:
                reach[k] |= extra
                changed = True
    return {k for k in reach if k in reach[k]}


@settings(max_examples=80, deadline=None)
@given(graph=prerequisite_graphs(), user=ids)
def test_prerequisite_cycles_terminate_and_are_detected(
    graph: dict[str, list[str]], user: str
) -> None:
    flags = [
        FlagDefinition(
            key=k,
            default_value=True,
            prerequisites=[Prerequisite(flag=d, condition={"value": True}) for d in deps],
        )
        for k, deps in graph.items()
    ]
    on_cycle = _reaches_itself(graph)
    has_cycle = bool(on_cycle)
    assert (find_prerequisite_cycle(flags) is not None) is has_cycle
    if has_cycle:
        with pytest.raises(ConfigurationError, match="cycle"):
            compile_snapshot(FlagSet(flags=flags))
    engine = FlagEngine(FlagSet(flags=flags), allow_cycles=True)
    results = {k: engine.evaluate(k, {"id": user}, default="d") for k in graph}
    for k in on_cycle:
        # a flag on a cycle never serves a value: the cycle is reported, or an
        # earlier prerequisite in its list already failed
        assert results[k].value == "d"
        assert results[k].reason in (Reason.ERROR, Reason.PREREQUISITE_FAILED)
    if has_cycle and not any("missing" in deps for deps in graph.values()):
        assert any(r.error_code is ErrorCode.CYCLIC_PREREQUISITE for r in results.values())


@settings(max_examples=100, deadline=None)
@given(
    attrs=st.dictionaries(
        st.sampled_from(["id", "country", "plan", "n", "tags"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            ),
            max_leaves=6,
        ),
    )
)
def test_evaluation_never_raises_for_any_attributes(attrs: dict[str, Any]) -> None:
    flags = [
        FlagDefinition(
            key="f",
            default_value=0,
            rules=[
                Rule(condition={"country": {"$regex": "^N"}, "n": {"$gt": 3}}, value=1),
                Rule(condition={"tags": {"$elemMatch": {"$in": ["a"]}}}, value=2, coverage=0.5),
                Rule(variations=[Variation(value=3), Variation(value=4)], hash_version=2),
            ],
        )
    ]
    ev = FlagEngine(flags).evaluate("f", attrs, default=-1)
    assert ev.value in (-1, 0, 1, 2, 3, 4)
