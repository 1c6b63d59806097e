"""GrowthBook SDK conformance suite (spec 0.8.0), every case of the required sections."""

from __future__ import annotations

from typing import Any

import pytest

from cognitionos.bucketing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    in_namespace,
    query_string_override,
)
from cognitionos.errors import ConfigurationError
from cognitionos.flags import FlagEngine, InMemoryStickyBuckets
from cognitionos.flags._conditions import compile_condition
from cognitionos.hashing import growthbook_hash

from ._gb import cases, experiment_result_dict, options_from, source_of

# Conditions that are malformed by our strict loader (the spec evaluates them to false)
STRICT_REJECTS = {
    "$in - not array",
    "$nin - not array",
    "$ini - not array",
    "$nini - not array",
    "unknown operator - pass",
    "$regex invalid - pass",
    "$regex invalid - fail",
}


@pytest.mark.parametrize("case", cases("hash"))
def test_hash(case: list[Any]) -> None:
    seed, value, version, expected = case
    assert growthbook_hash(seed, value, version) == expected


@pytest.mark.parametrize("case", cases("getBucketRange"))
def test_get_bucket_range(case: list[Any]) -> None:
    _, (n, coverage, weights), expected = case
    got = bucket_ranges(n, coverage, weights)
    assert len(got) == len(expected)
    for (a, b), (x, y) in zip(got, expected, strict=True):
        assert a == pytest.approx(x, abs=1e-9)
        assert b == pytest.approx(y, abs=1e-9)


@pytest.mark.parametrize("case", cases("chooseVariation"))
def test_choose_variation(case: list[Any]) -> None:
    _, n, ranges, expected = case
    assert choose_variation(n, ranges) == expected


@pytest.mark.parametrize("case", cases("getEqualWeights"))
def test_get_equal_weights(case: list[Any]) -> None:
    n, expected = case
    assert equal_weights(n) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("case", cases("inNamespace"))
def test_in_namespace(case: list[Any]) -> None:
    _, user_id, namespace, expected = case
    assert in_namespace(user_id, namespace) is expected


@pytest.mark.parametrize("case", cases("getQueryStringOverride"))
def test_get_query_string_override(case: list[Any]) -> None:
    _, key, url, n, expected = case
    assert query_string_override(key, url, n) == expected


@pytest.mark.parametrize("case", cases("evalCondition"))
def test_eval_condition(case: list[Any]) -> None:
    name, condition, attributes, expected = case[:4]
    groups = case[4] if len(case) > 4 else {}
    lenient = compile_condition(condition, saved_groups=groups, strict=False)
    assert lenient(attributes) is expected
    if name in STRICT_REJECTS:
        with pytest.raises(ConfigurationError):
            compile_condition(condition, saved_groups=groups)
    else:
        assert compile_condition(condition, saved_groups=groups)(attributes) is expected


def _engine(ctx: dict[str, Any]) -> FlagEngine:
    return FlagEngine.from_growthbook(
        {
            "features": ctx.get("features") or {},
            "savedGroups": ctx.get("savedGroups") or {},
            "contextualBandits": ctx.get("contextualBandits") or {},
        }
    )


def _check_feature(
    engine: FlagEngine,
    ctx: dict[str, Any],
    key: str,
    expected: dict[str, Any],
    sticky: InMemoryStickyBuckets | None = None,
) -> None:
    ev = engine.evaluate(key, ctx.get("attributes") or {}, None, options=options_from(ctx, sticky))
    assert ev.value == expected["value"]
    assert type(ev.value) is type(expected["value"])
    assert ev.on is expected["on"]
    assert (not ev.on) is expected["off"]
    assert source_of(ev) == expected["source"]
    assert (ev.rule_id or "") == expected.get("ruleId", "")
    if "experimentResult" in expected:
        assert ev.experiment is not None
        assert experiment_result_dict(ev.experiment) == expected["experimentResult"]
        assert ev.experiment.experiment_key == expected["experiment"]["key"]
        cb = expected["experiment"].get("contextualBandit")
        if cb is not None:
            assert ev.experiment.variation_weights == tuple(cb["variationWeights"])
    else:
        assert ev.experiment is None


@pytest.mark.parametrize("case", cases("feature"))
def test_feature(case: list[Any]) -> None:
    _, ctx, key, expected = case
    _check_feature(_engine(ctx), ctx, key, expected)


@pytest.mark.parametrize("case", cases("contextualBandit"))
def test_contextual_bandit(case: list[Any]) -> None:
    _, ctx, key, expected = case
    _check_feature(_engine(ctx), ctx, key, expected)


@pytest.mark.parametrize("case", cases("run"))
def test_run(case: list[Any]) -> None:
    _, ctx, experiment, value, in_experiment, hash_used = case
    res = _engine(ctx).run(experiment, ctx.get("attributes") or {}, options=options_from(ctx))
    assert res.value == value
    assert res.in_experiment is in_experiment
    assert res.hash_used is hash_used


@pytest.mark.parametrize("case", cases("stickyBucket"))
def test_sticky_bucket(case: list[Any]) -> None:
    _, ctx, docs, key, expected_result, expected_docs = case
    sticky = InMemoryStickyBuckets.from_documents(docs)
    ev = _engine(ctx).evaluate(
        key, ctx.get("attributes") or {}, None, options=options_from(ctx, sticky)
    )
    if expected_result is None:
        assert ev.experiment is None
    else:
        assert ev.experiment is not None
        assert experiment_result_dict(ev.experiment) == expected_result
    # the spec reports the documents of this user only (the ones its context loads)
    attributes = ctx.get("attributes") or {}
    mine = {
        k: d
        for k, d in sticky.docs.items()
        if str(attributes.get(d["attributeName"])) == d["attributeValue"]
    }
    assert mine == expected_docs
