"""LatencySketch against the PyPI ``ddsketch`` package on the same data (the ``peers`` extra)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.apm import LatencySketch

ddsketch = pytest.importorskip("ddsketch")

pytestmark = pytest.mark.peers

QUANTILES = [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
magnitudes = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
values_st = st.lists(
    st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0)), min_size=1, max_size=300
)


def exact(values, q):
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@settings(max_examples=200, deadline=None)
@given(values_st, st.sampled_from([0.01, 0.02, 0.05]))
def test_same_data_same_guarantee_as_ddsketch(values, accuracy):
    ours = LatencySketch(relative_accuracy=accuracy)
    theirs = ddsketch.DDSketch(relative_accuracy=accuracy)
    for v in values:
        ours.add(v)
        theirs.add(v)
    assert ours.count == theirs.count
    assert math.isclose(ours.sum, theirs.sum, rel_tol=1e-9, abs_tol=1e-9)
    for q in QUANTILES:
        a, b, truth = ours.quantile(q), theirs.get_quantile_value(q), exact(values, q)
        # both use the rank floor(q * (n - 1)) and log-gamma buckets: both answers fall in
        # the exact value's bucket, so each is within the accuracy of the truth and of
        # each other (ours is also clamped to the exact min/max, which only helps)
        tol = accuracy * abs(truth) * (1 + 1e-9)
        assert abs(a - truth) <= tol, (q, a, truth)
        assert abs(b - truth) <= tol, (q, b, truth)
        assert abs(a - b) <= 2 * tol


@settings(max_examples=100, deadline=None)
@given(values_st, values_st)
def test_merges_agree_with_ddsketch_merges(left, right):
    ours_l, ours_r = LatencySketch(), LatencySketch()
    theirs_l, theirs_r = ddsketch.DDSketch(0.01), ddsketch.DDSketch(0.01)
    ours_l.add_many(left)
    ours_r.add_many(right)
    for v in left:
        theirs_l.add(v)
    for v in right:
        theirs_r.add(v)
    ours_l.merge(ours_r)
    theirs_l.merge(theirs_r)
    union = left + right
    for q in QUANTILES:
        truth = exact(union, q)
        tol = 0.01 * abs(truth) * (1 + 1e-9)
        assert abs(ours_l.quantile(q) - truth) <= tol
        assert abs(theirs_l.get_quantile_value(q) - truth) <= tol
