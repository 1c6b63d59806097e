"""Differential tests: whole GrowthBook features through our engine and through ``growthbook``.

``test_peers.py`` compares conditions and hashing one by one; here generated
features (force rules behind conditions and coverage, experiment rules with
weights, coverage and both hash versions) are evaluated by
``FlagEngine.from_growthbook`` and by ``GrowthBook.eval_feature`` for generated
users. Value, variation and the reason class (GrowthBook's ``source``) must agree.
Conditions stay inside the semantics both share (``test_peers._shared``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flags import _vendor

growthbook = pytest.importorskip("growthbook", reason="growthbook not installed")

from cognitionos.flags import FlagEngine, Reason  # noqa: E402
from tests.flags.test_peers import _shared, attribute_sets, conditions  # noqa: E402

pytestmark = pytest.mark.peers

VENDOR = "growthbook"
EXAMPLES = 400

#: our reason -> GrowthBook's result source
_SOURCE = {
    Reason.DEFAULT: "defaultValue",
    Reason.STATIC: "defaultValue",
    Reason.TARGETING_MATCH: "force",
    Reason.SPLIT: "experiment",
}


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    yield
    _vendor.write_tally()


@st.composite
def rules(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A rule and the conditions it uses (to check they stay in the shared semantics)."""
    rule: dict[str, Any] = {}
    used: list[dict[str, Any]] = []
    if draw(st.booleans()):
        cond = draw(conditions())
        rule["condition"] = cond
        used.append(cond)
    if draw(st.booleans()):
        rule["force"] = draw(st.integers(0, 9))
        if draw(st.booleans()):
            rule["coverage"] = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]))
    else:
        n = draw(st.integers(2, 3))
        rule["key"] = draw(st.sampled_from(["exp-a", "exp-b"]))
        rule["variations"] = list(range(100, 100 + n))
        weights = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
        rule["weights"] = [w / sum(weights) for w in weights]
        rule["coverage"] = draw(st.sampled_from([0.3, 0.8, 1.0]))
        rule["hashVersion"] = draw(st.sampled_from([1, 2]))
    return rule, used


@st.composite
def features(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pairs = draw(st.lists(rules(), max_size=3))
    feature: dict[str, Any] = {"defaultValue": draw(st.integers(-1, 1))}
    if pairs:
        feature["rules"] = [r for r, _ in pairs]
    return feature, [c for _, used in pairs for c in used]


def _ours(engine: FlagEngine, attrs: dict[str, Any]) -> tuple[Any, ...]:
    ev = engine.evaluate("f", attrs)
    variation = ev.experiment.variation_id if ev.experiment is not None else None
    return (ev.value, _SOURCE.get(ev.reason, ev.reason.value), variation)


def _theirs(feature: dict[str, Any], attrs: dict[str, Any]) -> tuple[Any, ...]:
    gb = growthbook.GrowthBook(features={"f": feature}, attributes=attrs)
    try:
        res = gb.eval_feature("f")
    finally:
        gb.destroy()
    variation = res.experimentResult.variationId if res.experimentResult is not None else None
    if res.source != "experiment":
        variation = None
    return (res.value, res.source, variation)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    spec=features(),
    attrs=attribute_sets(),
    user=st.sampled_from([f"user-{i}" for i in range(30)] + [""]),
)
def test_generated_features_match_growthbook(
    spec: tuple[dict[str, Any], list[dict[str, Any]]], attrs: dict[str, Any], user: str
) -> None:
    feature, used = spec
    attrs = {**attrs, "id": user}
    if not all(_shared(c, attrs) for c in used):
        _vendor.skip_documented(VENDOR)
        return
    engine = FlagEngine.from_growthbook({"features": {"f": feature}})
    _vendor.check(VENDOR, _ours(engine, attrs), _theirs(feature, attrs), (feature, attrs))
