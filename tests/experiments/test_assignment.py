"""Assignment: one bucketing implementation shared with flags, targeting, namespaces, holdouts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.bucketing import InMemoryStickyBuckets
from cognitionos.errors import ConfigurationError
from cognitionos.experiments import AssignmentReason, ExperimentEngine
from cognitionos.flags import FlagEngine
from cognitionos.hashing import growthbook_hash

unit_ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@st.composite
def weight_lists(draw: Any) -> list[float]:
    n = draw(st.integers(2, 5))
    raw = [draw(st.integers(1, 100)) for _ in range(n)]
    total = sum(raw)
    return [r / total for r in raw]


def _definition(
    weights: list[float], coverage: float, version: int, namespace: Any, condition: Any
) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "key": "parity-exp",
        "arms": [{"key": f"arm{i}", "weight": w, "value": i} for i, w in enumerate(weights)],
        "coverage": coverage,
        "hash_version": version,
        "status": "running",
    }
    if namespace is not None:
        exp["namespace"] = {"name": "ns", "start": namespace[0], "end": namespace[1]}
    if condition is not None:
        exp["condition"] = condition
    return exp


def _growthbook(exp: dict[str, Any]) -> dict[str, Any]:
    """The same experiment in GrowthBook's inline-experiment shape, as FlagEngine.run takes it."""
    out: dict[str, Any] = {
        "key": exp["key"],
        "variations": [a["value"] for a in exp["arms"]],
        "weights": [a["weight"] for a in exp["arms"]],
        "coverage": exp["coverage"],
        "hashVersion": exp["hash_version"],
        "hashAttribute": "id",
    }
    if "namespace" in exp:
        ns = exp["namespace"]
        out["namespace"] = [ns["name"], ns["start"], ns["end"]]
    if "condition" in exp:
        out["condition"] = exp["condition"]
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    weights=weight_lists(),
    coverage=st.sampled_from([1.0, 0.8, 0.35]),
    version=st.sampled_from([1, 2]),
    namespace=st.sampled_from([None, (0.0, 0.5), (0.25, 0.9)]),
    condition=st.sampled_from([None, {"country": {"$in": ["NL", "BE"]}}]),
    users=st.lists(unit_ids, min_size=1, max_size=25, unique=True),
    countries=st.lists(st.sampled_from(["NL", "BE", "US"]), min_size=25, max_size=25),
)
def test_experiment_engine_and_flag_engine_run_give_every_user_the_same_variant(
    weights, coverage, version, namespace, condition, users, countries
):
    exp = _definition(weights, coverage, version, namespace, condition)
    with ExperimentEngine() as engine:
        engine.create(exp)
        flags = FlagEngine()
        for user, country in zip(users, countries, strict=False):
            mine = engine.assign("parity-exp", user, {"country": country})
            theirs = flags.run(_growthbook(exp), {"id": user, "country": country})
            assert mine.in_experiment == theirs.in_experiment, (user, mine, theirs)
            assert mine.variant == f"arm{theirs.variation_id}", (user, mine, theirs)
            assert mine.value == theirs.value


def test_bucket_boundaries_follow_the_published_hash():
    """Hand check: growthbook_hash("exp", "u", 2) decides the arm with ranges [0, .5), [.5, 1)."""
    with ExperimentEngine() as engine:
        engine.create({"key": "exp", "arms": [{"key": "a"}, {"key": "b"}], "status": "running"})
        for user in ("u1", "u2", "u3", "u4", "u5", "u6"):
            n = growthbook_hash("exp", user, 2)
            assert n is not None
            got = engine.assign("exp", user)
            assert got.hash_value == n
            assert got.variant == ("a" if n < 0.5 else "b")


def test_reasons_outside_the_experiment():
    with ExperimentEngine() as engine:
        engine.create(
            {
                "key": "t",
                "arms": [{"key": "control"}, {"key": "new"}],
                "condition": {"plan": "pro"},
            }
        )
        assert engine.assign("t", "u1", {"plan": "pro"}).reason is AssignmentReason.NOT_RUNNING
        engine.start("t")
        free = engine.assign("t", "u1", {"plan": "free"})
        assert (free.variant, free.in_experiment, free.reason) == (
            "control",
            False,
            AssignmentReason.TARGETING,
        )
        assert engine.assign("t", "u1", {"plan": "pro"}).in_experiment
        assert engine.assign("t", "", {"plan": "pro"}).reason is AssignmentReason.NO_UNIT_ID
        unknown = engine.assign("nope", "u1")
        assert (unknown.variant, unknown.reason) == (None, AssignmentReason.UNKNOWN_EXPERIMENT)
        # hostile attributes never raise
        assert not engine.assign("t", "u1", {"plan": object()}).in_experiment
        engine.stop("t")
        assert engine.assign("t", "u1", {"plan": "pro"}).reason is AssignmentReason.NOT_RUNNING


def test_namespaces_keep_experiments_mutually_exclusive():
    with ExperimentEngine() as engine:
        for key, (start, end) in (("left", (0.0, 0.5)), ("right", (0.5, 1.0))):
            engine.create(
                {
                    "key": key,
                    "arms": [{"key": "a"}, {"key": "b"}],
                    "namespace": {"name": "checkout", "start": start, "end": end},
                    "status": "running",
                }
            )
        in_left = in_right = 0
        for i in range(2000):
            left = engine.assign("left", f"user-{i}").in_experiment
            right = engine.assign("right", f"user-{i}").in_experiment
            assert not (left and right)
            assert left or right  # the two slices cover the namespace
            in_left += left
            in_right += right
        assert 850 < in_left < 1150 and 850 < in_right < 1150


def test_holdout_keeps_its_fraction_out_and_is_the_same_units_across_experiments():
    hold = {"key": "q4", "fraction": 0.1}
    with ExperimentEngine() as engine:
        for key in ("x", "y"):
            engine.create(
                {
                    "key": key,
                    "arms": [{"key": "a"}, {"key": "b"}],
                    "holdout": hold,
                    "status": "running",
                }
            )
        held = [
            i for i in range(5000) if engine.assign("x", f"u{i}").reason is AssignmentReason.HOLDOUT
        ]
        # binomial(5000, 0.1): mean 500, sd 21.2; 5 sd either way
        assert 394 < len(held) < 606
        for i in held:
            assert engine.assign("y", f"u{i}").reason is AssignmentReason.HOLDOUT
            expected = growthbook_hash("__holdout_q4", f"u{i}", 1)
            assert expected is not None and expected < 0.1


def test_weights_split_traffic_in_proportion():
    with ExperimentEngine() as engine:
        engine.create(
            {
                "key": "w",
                "arms": [{"key": "a", "weight": 0.2}, {"key": "b", "weight": 0.8}],
                "status": "running",
            }
        )
        counts = {"a": 0, "b": 0}
        for i in range(10_000):
            counts[str(engine.assign("w", f"u{i}").variant)] += 1
        # binomial(10000, 0.2): sd 40
        assert 1800 < counts["a"] < 2200


def test_sticky_buckets_keep_units_in_their_arm_when_weights_change():
    sticky = InMemoryStickyBuckets()
    with ExperimentEngine(sticky=sticky) as engine:
        engine.create(
            {
                "key": "s",
                "arms": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
                "status": "running",
            }
        )
        before = {f"u{i}": engine.assign("s", f"u{i}").variant for i in range(300)}
        engine.update("s", {"arms": [{"key": "a", "weight": 0.05}, {"key": "b", "weight": 0.95}]})
        after = {u: engine.assign("s", u) for u in before}
        assert all(after[u].variant == before[u] for u in before)
        assert all(a.reason is AssignmentReason.STICKY for a in after.values())
        # without the sticky service many units would have moved to b
        with ExperimentEngine(store=engine.store) as plain:
            moved = sum(plain.assign("s", u).variant != before[u] for u in before)
        assert moved > 50


@pytest.mark.parametrize(
    ("definition", "needle"),
    [
        ({"key": "x", "arms": [{"key": "a"}]}, "arms"),
        ({"key": "x", "arms": [{"key": "a"}, {"key": "a"}]}, "unique"),
        ({"key": "x", "arms": [{"key": "a", "weight": 0.9}, {"key": "b", "weight": 0.9}]}, "sum"),
        ({"key": "x", "arms": [{"key": "a", "weight": 1}, {"key": "b"}]}, "every arm"),
        ({"key": "x y", "arms": [{"key": "a"}, {"key": "b"}]}, "experiment key"),
        ({"key": "x", "arms": [{"key": "a"}, {"key": "b"}], "coverage": 2}, "coverage"),
        (
            {"key": "x", "arms": [{"key": "a"}, {"key": "b"}], "condition": {"a": {"$nope": 1}}},
            "$nope",
        ),
        (
            {
                "key": "x",
                "arms": [{"key": "a"}, {"key": "b"}],
                "metrics": [{"name": "m", "cap_upper": -1}],
            },
            "cap_upper",
        ),
        (
            {
                "key": "x",
                "arms": [{"key": "a"}, {"key": "b"}],
                "metrics": [{"name": "m", "kind": "mean"}],
            },
            "kind",
        ),
    ],
)
def test_bad_definitions_raise_configuration_errors_naming_the_field(definition, needle):
    with ExperimentEngine() as engine, pytest.raises(ConfigurationError, match=None) as info:
        engine.create(definition)
    assert needle in str(info.value)


@pytest.mark.parametrize("condition", [None, {"country": "NL"}])
def test_ship_turns_the_winner_into_a_flag_rollout(tmp_path, condition):
    url = f"sqlite:///{tmp_path / 'ship.db'}"
    definition: dict[str, Any] = {
        "key": "cta",
        "arms": [{"key": "grey", "value": "#999"}, {"key": "green", "value": "#0a0"}],
        "status": "running",
    }
    if condition is not None:
        definition["condition"] = condition
    with ExperimentEngine(store=url) as engine:
        engine.create(definition)
        with pytest.raises(ConfigurationError, match="no arm 'blue'"):
            engine.ship("cta", "blue")
        flag = engine.ship("cta", "green")
        assert flag.key == "cta"
        exp = engine.get("cta")
        assert (str(exp.status), exp.shipped) == ("stopped", "green")
        shipped = engine.assign("cta", "u1", {"country": "NL"})
        assert (shipped.variant, shipped.reason) == ("green", AssignmentReason.SHIPPED)
    with FlagEngine(store=url) as flags:
        assert flags.evaluate("cta", {"id": "u1", "country": "NL"}).value == "#0a0"
        other = flags.evaluate("cta", {"id": "u1", "country": "US"}).value
        assert other == ("#0a0" if condition is None else "#999")
