"""LatencySketch: the relative-error guarantee, exact merges, bounded memory, serialization."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.apm import LatencySketch, SketchDecodeError
from cognitionos.errors import ConfigurationError

QUANTILES = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]


def exact_quantile(values: list[float], q: float) -> float:
    """The lower quantile the sketch promises to approximate: sorted[floor(q * (n - 1))]."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def within(approx: float, exact: float, accuracy: float) -> bool:
    if exact == 0:
        return approx == 0
    return abs(approx - exact) <= accuracy * abs(exact) * (1 + 1e-9)


magnitudes = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)
signed = st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(signed, min_size=1, max_size=300),
    st.sampled_from([0.005, 0.01, 0.02, 0.05]),
)
def test_every_quantile_is_within_the_relative_accuracy(values, accuracy):
    sk = LatencySketch(relative_accuracy=accuracy)
    for v in values:
        sk.add(v)
    for q in QUANTILES:
        assert within(sk.quantile(q), exact_quantile(values, q), accuracy), q
    assert sk.count == len(values)
    assert sk.min == min(values)
    assert sk.max == max(values)
    assert math.isclose(sk.sum, math.fsum(values), rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(signed, min_size=1, max_size=300))
def test_add_many_equals_adding_one_by_one(values):
    one = LatencySketch()
    for v in values:
        one.add(v)
    many = LatencySketch()
    many.add_many(values)
    assert one == many


def _boundaries(accuracy: float) -> list[float]:
    """Values at and one ulp around bucket edges gamma**k, where a log's last bit decides."""
    gamma = (1 + accuracy) / (1 - accuracy)
    edges = [gamma**k for k in range(-400, 400, 7)]
    around = [math.nextafter(e, d) for e in edges for d in (0.0, math.inf)]
    return edges + around + [-v for v in edges[:40]] + [0.0, 1e-320, -1e-320]


def _reference_buckets(values, accuracy):
    """Buckets by the DDSketch definition, one value at a time: k = ceil(log_gamma(|x|))."""
    gamma = (1 + accuracy) / (1 - accuracy)
    multiplier = 1 / math.log(gamma)
    smallest = LatencySketch(accuracy)._min_indexable
    pos, neg, zero = {}, {}, 0
    for v in values:
        if v > smallest:
            k = math.ceil(math.log(v) * multiplier)
            pos[k] = pos.get(k, 0) + 1
        elif v < -smallest:
            k = math.ceil(math.log(-v) * multiplier)
            neg[k] = neg.get(k, 0) + 1
        else:
            zero += 1
    return pos, neg, zero


@settings(max_examples=60, deadline=None)
@given(
    st.lists(signed, min_size=1, max_size=400),
    st.sampled_from([0.0001, 0.01, 0.05]),
    st.sampled_from(["add", "add_many list", "add_many array", "add, forced numpy"]),
)
def test_every_insert_path_keys_values_as_the_definition(drawn, accuracy, path):
    # the batch paths key with numpy, whose log may differ from math.log in the last bit;
    # the bucket edges gamma**k and their ulp neighbours are where that would show
    import numpy as np

    from cognitionos.apm import _sketch

    values = drawn + _boundaries(accuracy)
    sk = LatencySketch(accuracy)
    saved = _sketch.NUMPY_BATCH
    try:
        if path == "add":
            for v in values:
                sk.add(v)
        elif path == "add_many list":
            sk.add_many(values)
        elif path == "add_many array":
            sk.add_many(np.array(values))
        else:
            _sketch.NUMPY_BATCH = 1  # every buffered value folds through numpy
            for v in values:
                sk.add(v)
    finally:
        _sketch.NUMPY_BATCH = saved
    assert sk.buckets() == _reference_buckets(values, accuracy)
    assert sk.count == len(values)
    assert sk.min == min(values) and sk.max == max(values)
    assert math.isclose(sk.sum, math.fsum(values), rel_tol=1e-9, abs_tol=1e-6)


def test_the_numpy_batch_path_refuses_what_add_refuses():
    import numpy as np

    for bad in (
        [0.1] * 600 + [math.nan],
        np.array([0.1, math.inf]),
        ["x"] * 600,
        [0.1] * 600 + [10**400],
    ):
        sk = LatencySketch()
        with pytest.raises(ConfigurationError, match="finite"):
            sk.add_many(bad)
        assert sk.count == 0  # nothing half-recorded


@settings(max_examples=100, deadline=None)
@given(
    st.lists(signed, max_size=100),
    st.lists(signed, max_size=100),
    st.lists(signed, max_size=100),
)
def test_merge_is_associative_commutative_and_equals_the_union(a, b, c):
    def sketch(values):
        sk = LatencySketch()
        sk.add_many(values)
        return sk

    left = sketch(a)
    left.merge(sketch(b))
    left.merge(sketch(c))
    bc = sketch(b)
    bc.merge(sketch(c))
    right = sketch(a)
    right.merge(bc)
    swapped = sketch(c)
    swapped.merge(sketch(a))
    swapped.merge(sketch(b))
    union = sketch(a + b + c)
    assert left == right == swapped == union
    for q in (0.5, 0.99):
        if a or b or c:
            assert left.quantile(q) == union.quantile(q)


@pytest.mark.parametrize("dist", ["lognormal", "pareto"])
def test_heavy_tails_after_merging_sixteen_shards(dist):
    import numpy as np

    # the size: 1e6 latencies, built into 16 shards (some one value at a time)
    rng = np.random.default_rng(7)
    if dist == "lognormal":
        values = rng.lognormal(-3.0, 1.2, 1_000_000).tolist()
    else:
        values = ((rng.pareto(1.3, 1_000_000) + 1.0) * 1e-3).tolist()
    merged = LatencySketch()
    for i in range(16):
        shard = LatencySketch()
        part = values[i::16]
        if i % 4 == 0:
            for v in part[:5000]:
                shard.add(v)
            shard.add_many(part[5000:])
        else:
            shard.add_many(part)
        merged.merge(shard)
    whole = LatencySketch()
    whole.add_many(values)
    assert merged == whole
    ordered = sorted(values)
    for q in (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        assert within(merged.quantile(q), exact, 0.01), q


def test_memory_is_bounded_and_high_quantiles_survive_collapse():
    sk = LatencySketch(relative_accuracy=0.01, max_buckets=64)
    # 1e-6 .. 1e6 spans ~1400 buckets at 1 %: most must be folded into the lowest kept one
    values = [10 ** (i / 1000) for i in range(-6000, 6000)]
    sk.add_many(values[: len(values) // 2])
    for v in values[len(values) // 2 :]:
        sk.add(v)
    assert sk.bucket_count <= 64
    assert sk.count == len(values)
    for q in (0.99, 0.999, 1.0):
        assert within(sk.quantile(q), exact_quantile(values, q), 0.01), q
    # the low end was collapsed: the guarantee there is gone, but order is kept
    assert sk.quantile(0.0) <= sk.quantile(0.5) <= sk.quantile(0.99)


def test_zero_and_negative_values_sort_before_positives():
    sk = LatencySketch()
    sk.add_many([-5.0, -1.0, 0.0, 0.0, 2.0])
    assert within(sk.quantile(0.0), -5.0, 0.01)
    assert within(sk.quantile(0.25), -1.0, 0.01)
    assert sk.quantile(0.5) == 0.0
    assert sk.quantile(0.75) == 0.0
    assert within(sk.quantile(1.0), 2.0, 0.01)
    assert sk.zero_count == 2


def test_empty_sketch_answers_nan():
    sk = LatencySketch()
    assert math.isnan(sk.quantile(0.5))
    assert math.isnan(sk.min)
    assert sk.count == 0
    assert LatencySketch.from_bytes(sk.to_bytes()) == sk


@settings(max_examples=100, deadline=None)
@given(st.lists(signed, max_size=200))
def test_bytes_round_trip(values):
    sk = LatencySketch(relative_accuracy=0.02)
    sk.add_many(values)
    back = LatencySketch.from_bytes(sk.to_bytes())
    assert back == sk
    assert back.relative_accuracy == 0.02
    assert back.sum == sk.sum


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "too short"),
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b[:4] + bytes([9]) + b[5:], "version"),
        (lambda b: b + b"\x00", "length"),
        (lambda b: b[:-1], "length"),
        (lambda b: b[:5] + struct.pack("<d", 1.5) + b[13:], "invalid setting"),
        (lambda b: b[:5] + struct.pack("<d", float("nan")) + b[13:], "invalid setting"),
    ],
)
def test_corrupt_bytes_raise_the_library_error(mutate, message):
    sk = LatencySketch()
    sk.add_many([0.1, 0.2, 3.0])
    with pytest.raises(SketchDecodeError, match=message):
        LatencySketch.from_bytes(mutate(sk.to_bytes()))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_escape_as_raw_errors(data):
    try:
        LatencySketch.from_bytes(data)
    except SketchDecodeError:
        pass


def test_unordered_or_empty_bucket_in_bytes_is_refused():
    sk = LatencySketch()
    sk.add_many([1.0, 10.0])
    raw = bytearray(sk.to_bytes())
    header = len(raw) - 2 * 12
    first, second = raw[header : header + 12], raw[header + 12 :]
    with pytest.raises(SketchDecodeError, match="unordered"):
        LatencySketch.from_bytes(bytes(raw[:header] + second + first))
    zeroed = raw[:header] + first[:4] + b"\x00" * 8 + second
    with pytest.raises(SketchDecodeError):
        LatencySketch.from_bytes(bytes(zeroed))


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf"), "1.0", None, 10**400, complex(1, 1)]
)
def test_bad_values_raise_configuration_error_and_leave_the_sketch_intact(bad):
    sk = LatencySketch()
    sk.add(1.0)
    with pytest.raises(ConfigurationError, match="finite"):
        sk.add(bad)
    with pytest.raises(ConfigurationError):
        sk.add_many([2.0, bad])
    assert sk.count == 1
    assert sk.bucket_count == 1


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "0.01", True, float("nan")])
def test_bad_accuracy_is_refused(bad):
    with pytest.raises(ConfigurationError, match="relative_accuracy"):
        LatencySketch(relative_accuracy=bad)


def test_merging_different_accuracies_is_refused():
    with pytest.raises(ConfigurationError, match="relative accuracy"):
        LatencySketch(0.01).merge(LatencySketch(0.02))
    with pytest.raises(ConfigurationError):
        LatencySketch().merge("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("q", [-0.1, 1.1, float("nan"), "0.5"])
def test_bad_quantile_is_refused(q):
    sk = LatencySketch()
    sk.add(1.0)
    with pytest.raises(ConfigurationError, match="quantile"):
        sk.quantile(q)


@settings(max_examples=100, deadline=None)
@given(st.lists(signed, min_size=1, max_size=200), magnitudes)
def test_count_at_most_is_exact_up_to_the_bucket_resolution(values, bound):
    sk = LatencySketch(relative_accuracy=0.01)
    sk.add_many(values)
    got = sk.count_at_most(bound)
    # a value within 1 % of the bound may fall either side; the rest must be counted right
    surely_below = sum(1 for v in values if v <= bound * (1 - 0.011))
    possibly_below = sum(1 for v in values if v <= bound * (1 + 0.011))
    assert surely_below <= got <= possibly_below
    assert sk.count_at_most(max(values)) == len(values)
