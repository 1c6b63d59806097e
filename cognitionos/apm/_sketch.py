"""A DDSketch-style latency sketch: relative-error quantiles, exactly mergeable, bounded memory.

Masson, Rim & Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
Relative-Error Guarantees" (VLDB 2019). A positive value ``x`` falls in bucket
``k = ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``; bucket ``k`` covers
``(gamma**(k-1), gamma**k]`` and answers ``2 * gamma**k / (gamma + 1)``, which is
within relative error ``a`` of every value in the bucket. Negative values use a
mirrored bucket map; values too close to zero to index are counted apart.

Two sketches with the same accuracy merge by adding bucket counts, so the merge of
shards equals the sketch of the union exactly. Memory is bounded by collapsing the
lowest buckets (the smallest magnitudes) when a bucket map passes ``max_buckets``:
high quantiles, the ones latency work cares about, keep their guarantee.
"""

from __future__ import annotations

import math
import numbers
import struct
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cognitionos.errors import ConfigurationError

__all__ = ["LatencySketch", "SketchDecodeError"]

_MAGIC = b"CGSK"
_VERSION = 1
# magic, version, relative accuracy, max buckets, zero count, sum, min, max, n positive, n negative
_HEADER = struct.Struct("<4sBdIQdddII")
_BIN = struct.Struct("<iQ")
# a key must stay an int32 on the wire; values this close to zero count as zero
_KEY_LIMIT = 2**31 - 1
_NO_FLOOR = -(2**62)
#: batches at least this long are keyed with numpy by :meth:`LatencySketch.add_many`
NUMPY_BATCH = 512
_INF = math.inf


class SketchDecodeError(ConfigurationError):
    """Bytes given to :meth:`LatencySketch.from_bytes` are not a valid serialized sketch."""


def _check_accuracy(relative_accuracy: object) -> float:
    if (
        isinstance(relative_accuracy, bool)
        or not isinstance(relative_accuracy, (int, float))
        or not 0.0 < float(relative_accuracy) < 1.0
    ):
        raise ConfigurationError(
            f"relative_accuracy must be a number in (0, 1), got {relative_accuracy!r}"
        )
    return float(relative_accuracy)


class LatencySketch:
    """A mergeable quantile sketch whose answers are within ``relative_accuracy`` of the truth.

    ``quantile(q)`` answers within relative error ``relative_accuracy`` of the exact lower
    quantile ``sorted(values)[floor(q * (n - 1))]`` as long as the buckets holding it were
    not collapsed (with the default 2048 buckets at 1 %, that is a range of 1e35 between
    the smallest and largest magnitude)::

        sk = LatencySketch(relative_accuracy=0.01)
        sk.add(0.0123); sk.add_many([0.01, 0.5, 2.0])
        sk.quantile(0.99); sk.merge(other); LatencySketch.from_bytes(sk.to_bytes())
    """

    __slots__ = (
        "_buf",
        "_count",
        "_gamma",
        "_max",
        "_max_buckets",
        "_min",
        "_min_indexable",
        "_multiplier",
        "_neg",
        "_neg_floor",
        "_pos",
        "_pos_floor",
        "_sum",
        "_zero",
        "relative_accuracy",
    )

    def __init__(self, relative_accuracy: float = 0.01, *, max_buckets: int = 2048) -> None:
        self.relative_accuracy = _check_accuracy(relative_accuracy)
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 8:
            raise ConfigurationError(f"max_buckets must be an int >= 8, got {max_buckets!r}")
        self._max_buckets = max_buckets
        a = self.relative_accuracy
        self._gamma = (1.0 + a) / (1.0 - a)
        self._multiplier = 1.0 / math.log(self._gamma)
        # the smallest magnitude whose key still fits an int32 (and is a normal float)
        self._min_indexable = max(
            sys.float_info.min * self._gamma, math.exp((-_KEY_LIMIT + 1) / self._multiplier)
        )
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self._pos_floor = _NO_FLOOR
        self._neg_floor = _NO_FLOOR
        self._zero = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        # values added one by one wait here and are folded in batches (see add)
        self._buf: list[float] = []

    # -- recording ---------------------------------------------------------------------------

    def add(self, value: float) -> None:
        """Record one value (seconds, milliseconds: any unit, used consistently).

        The value is checked now (a non-finite value or a non-number raises
        :class:`ConfigurationError`) and kept in a small buffer; every
        :data:`NUMPY_BATCH` values, and before anything reads the sketch, the buffer is
        folded in with :meth:`add_many`'s batch path, which gives the same buckets as
        keying each value on its own (tested at every bucket edge). Not thread-safe; share a
        sketch between threads under a lock, as :class:`LatencyRecorder` does.
        """
        if type(value) is float and -_INF < value < _INF:
            buf = self._buf
            buf.append(value)
            if len(buf) >= NUMPY_BATCH:
                self._settle()
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigurationError(f"sketch values must be finite numbers, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigurationError(
                f"sketch values must be finite numbers, got {value!r}"
            ) from None
        if not -_INF < number < _INF:
            raise ConfigurationError(f"sketch values must be finite numbers, got {value!r}")
        self._buf.append(number)
        if len(self._buf) >= NUMPY_BATCH:
            self._settle()

    def _settle(self) -> None:
        """Fold the buffered single values in (called before every read)."""
        buf = self._buf
        if buf:
            self._buf = []
            if len(buf) >= NUMPY_BATCH:
                self._add_array(buf)
            else:
                self._add_list(buf)

    def add_many(self, values: Iterable[float]) -> None:
        """Record many values at once (the fast path: keys are computed in C-level maps).

        Batches of :data:`NUMPY_BATCH` values or more (and numpy arrays) are keyed with
        numpy; the result is the same sketch as adding the values one by one.
        """
        self._settle()
        if type(values).__module__ == "numpy" or (
            isinstance(values, (list, tuple)) and len(values) >= NUMPY_BATCH
        ):
            self._add_array(values)
            return
        self._add_list(values if isinstance(values, (list, tuple)) else list(values))

    def _add_list(self, data: list[float] | tuple[float, ...]) -> None:
        if not data:
            return
        try:
            lo = min(data)
            hi = max(data)
            total = float(sum(data))
        except (TypeError, OverflowError) as exc:  # a str; an int too large for a float
            raise ConfigurationError("sketch values must be finite numbers") from exc
        if not (math.isfinite(lo) and math.isfinite(hi)) or math.isnan(total):
            raise ConfigurationError("sketch values must be finite numbers (no NaN or inf)")
        threshold = self._min_indexable
        if lo > threshold:
            positives: list[float] | tuple[float, ...] = data
            negatives: list[float] = []
            zeros = 0
        else:
            positives = [v for v in data if v > threshold]
            negatives = [-v for v in data if v < -threshold]
            zeros = len(data) - len(positives) - len(negatives)
        mul = self._multiplier.__mul__
        if positives:
            keys = Counter(map(math.ceil, map(mul, map(math.log, positives))))
            self._absorb(self._pos, keys, positive=True)
        if negatives:
            keys = Counter(map(math.ceil, map(mul, map(math.log, negatives))))
            self._absorb(self._neg, keys, positive=False)
        self._zero += zeros
        self._count += len(data)
        self._sum += total
        if lo < self._min:
            self._min = float(lo)
        if hi > self._max:
            self._max = float(hi)

    def _add_array(self, values: Iterable[float]) -> None:
        import numpy as np

        try:
            arr = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigurationError("sketch values must be finite numbers") from exc
        if arr.size == 0:
            return
        if not np.isfinite(arr).all():
            raise ConfigurationError("sketch values must be finite numbers (no NaN or inf)")
        threshold = self._min_indexable
        positives = arr[arr > threshold]
        negatives = -arr[arr < -threshold]
        if positives.size:
            self._absorb(self._pos, self._array_keys(np, positives), positive=True)
        if negatives.size:
            self._absorb(self._neg, self._array_keys(np, negatives), positive=False)
        self._zero += int(arr.size - positives.size - negatives.size)
        self._count += int(arr.size)
        # the same sequential sum as the list path (numpy's pairwise sum rounds differently)
        self._sum += float(sum(values if isinstance(values, (list, tuple)) else arr.tolist()))
        lo, hi = float(arr.min()), float(arr.max())
        if lo < self._min:
            self._min = lo
        if hi > self._max:
            self._max = hi

    def _array_keys(self, np: Any, magnitudes: Any) -> dict[int, int]:
        """Bucket key -> count for positive magnitudes, equal to ``add``'s keys."""
        scaled = np.log(magnitudes) * self._multiplier
        keys = np.ceil(scaled)
        # numpy's log may differ from math.log in the last bit: only a value whose scaled
        # log is within 1e-6 of an integer can change bucket, so those few are keyed again
        # exactly as add() keys them
        near = np.flatnonzero(np.abs(scaled - np.rint(scaled)) < 1e-6)
        if near.size:
            mul = self._multiplier
            keys[near] = [math.ceil(math.log(v) * mul) for v in magnitudes[near].tolist()]
        ints = keys.astype(np.int64)
        lo, hi = int(ints.min()), int(ints.max())
        if hi - lo <= 4 * ints.size + 4096:
            counts = np.bincount(ints - lo)
            present = np.flatnonzero(counts)
            return dict(zip((present + lo).tolist(), counts[present].tolist(), strict=True))
        uniq, counts = np.unique(ints, return_counts=True)
        return dict(zip(uniq.tolist(), counts.tolist(), strict=True))

    def _absorb(
        self, bins: dict[int, int], keys: Counter[int] | dict[int, int], *, positive: bool
    ) -> None:
        floor = self._pos_floor if positive else self._neg_floor
        for k, n in keys.items():
            if k < floor:
                k = floor
            bins[k] = bins.get(k, 0) + n
        if len(bins) > self._max_buckets:
            floor = self._collapse(bins)
            if positive:
                self._pos_floor = floor
            else:
                self._neg_floor = floor

    def _collapse(self, bins: dict[int, int]) -> int:
        # keep the highest 7/8 of the cap and fold the rest into the lowest kept key, so a
        # stream of new low keys collapses once per cap/8 keys, not once per value
        keep = self._max_buckets - self._max_buckets // 8
        keys = sorted(bins)
        floor = keys[len(keys) - keep]
        folded = 0
        for k in keys[: len(keys) - keep]:
            folded += bins.pop(k)
        bins[floor] += folded
        return floor

    # -- combining ---------------------------------------------------------------------------

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s values to this sketch (exact: bucket counts add up)."""
        if not isinstance(other, LatencySketch):
            raise ConfigurationError(f"can only merge a LatencySketch, got {type(other).__name__}")
        if other.relative_accuracy != self.relative_accuracy:
            raise ConfigurationError(
                "cannot merge sketches of different relative accuracy "
                f"({self.relative_accuracy} and {other.relative_accuracy})"
            )
        self._settle()
        other._settle()
        if other._count == 0:
            return
        self._absorb(self._pos, other._pos, positive=True)
        self._absorb(self._neg, other._neg, positive=False)
        self._pos_floor = max(self._pos_floor, other._pos_floor)
        self._neg_floor = max(self._neg_floor, other._neg_floor)
        self._refold()
        self._zero += other._zero
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def _refold(self) -> None:
        # a floor learned from the other side must apply to keys already held here
        for bins, floor in ((self._pos, self._pos_floor), (self._neg, self._neg_floor)):
            if floor == _NO_FLOOR:
                continue
            low = [k for k in bins if k < floor]
            if low:
                bins[floor] = bins.get(floor, 0) + sum(bins.pop(k) for k in low)

    def copy(self) -> LatencySketch:
        """An independent copy."""
        twin = LatencySketch(self.relative_accuracy, max_buckets=self._max_buckets)
        twin.merge(self)
        twin._pos_floor = self._pos_floor
        twin._neg_floor = self._neg_floor
        return twin

    # -- reading -----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return self._count + len(self._buf)

    @property
    def sum(self) -> float:
        """The sum of the recorded values."""
        self._settle()
        return self._sum

    @property
    def min(self) -> float:
        """The smallest recorded value (exact); NaN when empty."""
        self._settle()
        return self._min if self._count else math.nan

    @property
    def max(self) -> float:
        """The largest recorded value (exact); NaN when empty."""
        self._settle()
        return self._max if self._count else math.nan

    @property
    def zero_count(self) -> int:
        """Values too close to zero to index (and zeros)."""
        self._settle()
        return self._zero

    @property
    def bucket_count(self) -> int:
        """Non-empty buckets held (memory is proportional to this)."""
        self._settle()
        return len(self._pos) + len(self._neg)

    def _value(self, key: int) -> float:
        return float(2.0 * self._gamma ** float(key) / (self._gamma + 1.0))

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1); NaN when the sketch is empty."""
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise ConfigurationError(f"quantile must be a number in [0, 1], got {q!r}")
        self._settle()
        if self._count == 0:
            return math.nan
        rank = math.floor(q * (self._count - 1))
        seen = 0
        value: float | None = None
        neg_total = sum(self._neg.values())
        if rank < neg_total:
            for k in sorted(self._neg, reverse=True):
                seen += self._neg[k]
                if seen > rank:
                    value = -self._value(k)
                    break
        elif rank < neg_total + self._zero:
            value = 0.0
        else:
            seen = neg_total + self._zero
            for k in sorted(self._pos):
                seen += self._pos[k]
                if seen > rank:
                    value = self._value(k)
                    break
        if value is None:  # pragma: no cover - counts always sum to count
            value = self._max
        # the exact quantile lies in [min, max]: clamping only moves toward it
        return min(max(value, self._min), self._max)

    def count_at_most(self, bound: float) -> int:
        """How many values are <= ``bound``, at bucket resolution (for Prometheus ``le``).

        A bucket counts when its answer value (the one :meth:`quantile` returns) is
        <= ``bound``, so the result is exact for bounds off the bucket edges by more than
        the relative accuracy.
        """
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or bound != bound:
            raise ConfigurationError(f"bound must be a number, got {bound!r}")
        self._settle()
        if bound >= self._max:
            return self._count
        total = 0
        for k, n in self._neg.items():
            if -self._value(k) <= bound:
                total += n
        if bound >= 0:
            total += self._zero
            for k, n in self._pos.items():
                if self._value(k) <= bound:
                    total += n
        return total

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        """Several quantiles at once."""
        return [self.quantile(q) for q in qs]

    def buckets(self) -> tuple[dict[int, int], dict[int, int], int]:
        """Copies of (positive bucket counts, negative bucket counts, zero count) by key."""
        self._settle()
        return dict(self._pos), dict(self._neg), self._zero

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        self._settle()
        other._settle()
        if self._count == 0 or other._count == 0:
            return self._count == other._count and self.relative_accuracy == other.relative_accuracy
        return (
            self.relative_accuracy == other.relative_accuracy
            and self._pos == other._pos
            and self._neg == other._neg
            and self._zero == other._zero
            and self._count == other._count
            and self._min == other._min
            and self._max == other._max
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._settle()
        return (
            f"LatencySketch(relative_accuracy={self.relative_accuracy}, count={self._count}, "
            f"buckets={self.bucket_count})"
        )

    # -- serialization -----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """A compact, versioned binary form (little-endian; see :meth:`from_bytes`)."""
        self._settle()
        parts = [
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                self.relative_accuracy,
                self._max_buckets,
                self._zero,
                self._sum,
                self._min if self._count else 0.0,
                self._max if self._count else 0.0,
                len(self._pos),
                len(self._neg),
            )
        ]
        parts.extend(_BIN.pack(k, n) for k, n in sorted(self._pos.items()))
        parts.extend(_BIN.pack(k, n) for k, n in sorted(self._neg.items()))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> LatencySketch:
        """Rebuild a sketch from :meth:`to_bytes`; raises :class:`SketchDecodeError` if invalid."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise SketchDecodeError(f"sketch bytes must be bytes, got {type(data).__name__}")
        raw = bytes(data)
        if len(raw) < _HEADER.size:
            raise SketchDecodeError(f"sketch bytes too short ({len(raw)} bytes)")
        magic, version, accuracy, cap, zero, total, lo, hi, npos, nneg = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise SketchDecodeError(f"sketch bytes have a wrong magic {magic!r}")
        if version != _VERSION:
            raise SketchDecodeError(f"unsupported sketch format version {version}")
        if len(raw) != _HEADER.size + (npos + nneg) * _BIN.size:
            raise SketchDecodeError(
                f"sketch bytes length {len(raw)} does not match {npos}+{nneg} buckets"
            )
        try:
            sketch = cls(accuracy, max_buckets=cap)
        except ConfigurationError as exc:
            raise SketchDecodeError(f"sketch bytes carry an invalid setting: {exc}") from exc
        offset = _HEADER.size
        for bins, n in ((sketch._pos, npos), (sketch._neg, nneg)):
            previous = None
            for _ in range(n):
                k, c = _BIN.unpack_from(raw, offset)
                offset += _BIN.size
                if c == 0 or (previous is not None and k <= previous):
                    raise SketchDecodeError("sketch bytes hold an empty or unordered bucket")
                bins[k] = c
                previous = k
        if npos > cap or nneg > cap:
            raise SketchDecodeError(f"sketch bytes hold more buckets than their cap {cap}")
        count = zero + sum(sketch._pos.values()) + sum(sketch._neg.values())
        if not all(math.isfinite(x) for x in (total, lo, hi)) or (count and lo > hi):
            raise SketchDecodeError("sketch bytes hold a non-finite or inverted sum/min/max")
        sketch._zero = zero
        sketch._count = count
        sketch._sum = total
        if count:
            sketch._min = lo
            sketch._max = hi
        return sketch
