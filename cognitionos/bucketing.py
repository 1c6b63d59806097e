"""Bucketing shared by flags and experiments: hash -> variation, namespaces, sticky buckets.

One implementation for every engine that splits users, so a flag rollout and an
experiment with the same key, seed, weights and coverage put each user in the same
variation. GrowthBook's exact semantics (SDK spec 0.8.0)::

    ranges = bucket_ranges(2, coverage=0.5)        # [(0, 0.25), (0.5, 0.75)]
    choose_variation(0.6, ranges)                  # 1

Sticky bucketing remembers which variation a user got so later weight changes do not
move them. Assignments are kept per *identity* (attribute name + value) as a mapping
``"<experiment key>__<bucket version>" -> "<variation key>"``, the document shape
GrowthBook SDKs share, so assignments can be exchanged with them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from cognitionos.hashing import growthbook_hash

__all__ = [
    "InMemoryStickyBuckets",
    "StickyBucketService",
    "bucket_ranges",
    "choose_variation",
    "equal_weights",
    "in_namespace",
    "query_string_override",
]


def equal_weights(n: int) -> list[float]:
    """``n`` equal weights summing to 1 (empty for ``n < 1``)."""
    if n < 1:
        return []
    return [1 / n] * n


def _usable(weights: Sequence[float] | None, n: int) -> bool:
    if weights is None or len(weights) != n:
        return False
    try:
        if not all(isinstance(w, (int, float)) and math.isfinite(w) for w in weights):
            return False
        total = math.fsum(weights)
    except (TypeError, OverflowError):
        return False
    return 0.99 <= total <= 1.01


def bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """Half-open ``[start, end)`` bucket of each variation.

    Coverage is clamped to ``[0, 1]``; weights that do not have one entry per
    variation or do not sum to 1 (±0.01) are replaced by equal weights.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    ws = list(weights) if weights is not None and _usable(weights, n) else equal_weights(n)
    out: list[tuple[float, float]] = []
    cumulative = 0.0
    for w in ws:
        start = cumulative
        cumulative += w
        out.append((start, start + coverage * w))
    return out


def choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """Index of the range containing ``n``, or -1 when it falls in none (outside coverage)."""
    for i, r in enumerate(ranges):
        if r[0] <= n < r[1]:
            return i
    return -1


def in_namespace(hash_value: str, namespace: Sequence[object]) -> bool:
    """Whether the user falls in the ``[start, end)`` slice of namespace ``(name, start, end)``."""
    name, start, end = namespace
    n = growthbook_hash(f"__{name}", hash_value, 1)
    if n is None:
        return False
    return float(start) <= n < float(end)  # type: ignore[arg-type]


def query_string_override(key: str, url: str, n: int) -> int | None:
    """Variation forced by ``?<key>=<index>`` in ``url``, if that index is a valid variation."""
    if not url:
        return None
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    if not query:
        return None
    values = parse_qs(query).get(key)
    if not values:
        return None
    raw = values[0]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return None
    index = int(raw)
    return index if 0 <= index < n else None


@runtime_checkable
class StickyBucketService(Protocol):
    """Where sticky assignments live. Pass one as ``EvaluationOptions(sticky_buckets=...)``."""

    def get_assignments(
        self, attribute_name: str, attribute_value: str
    ) -> Mapping[str, str] | None:
        """Assignments recorded for this identity, or ``None``."""
        ...

    def save_assignments(
        self, attribute_name: str, attribute_value: str, assignments: Mapping[str, str]
    ) -> None:
        """Replace the assignments recorded for this identity."""
        ...


class InMemoryStickyBuckets:
    """A thread-safe in-process :class:`StickyBucketService`.

    ::

        sticky = InMemoryStickyBuckets()
        engine.evaluate("exp", attrs, options=EvaluationOptions(sticky_buckets=sticky))
        sticky.docs  # {"id||u1": {"attributeName": "id", ...}}
    """

    __slots__ = ("_docs", "_lock")

    def __init__(self, docs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._docs: dict[str, dict[str, Any]] = {}
        for doc in (docs or {}).values():
            self.save_assignments(
                str(doc["attributeName"]),
                str(doc["attributeValue"]),
                dict(doc.get("assignments", {})),
            )

    @classmethod
    def from_documents(cls, docs: list[Mapping[str, Any]]) -> InMemoryStickyBuckets:
        """Build from GrowthBook sticky-bucket documents.

        Each document has ``attributeName``, ``attributeValue`` and ``assignments``.
        """
        return cls({f"{d['attributeName']}||{d['attributeValue']}": d for d in docs})

    def get_assignments(
        self, attribute_name: str, attribute_value: str
    ) -> Mapping[str, str] | None:
        """Assignments recorded for this identity, or ``None``."""
        doc = self._docs.get(f"{attribute_name}||{attribute_value}")
        return None if doc is None else dict(doc["assignments"])

    def save_assignments(
        self, attribute_name: str, attribute_value: str, assignments: Mapping[str, str]
    ) -> None:
        """Replace the assignments recorded for this identity."""
        doc = {
            "attributeName": attribute_name,
            "attributeValue": attribute_value,
            "assignments": dict(assignments),
        }
        with self._lock:
            self._docs[f"{attribute_name}||{attribute_value}"] = doc

    @property
    def docs(self) -> dict[str, dict[str, Any]]:
        """A copy of every document, keyed ``"<attribute>||<value>"``."""
        with self._lock:
            return {k: {**v, "assignments": dict(v["assignments"])} for k, v in self._docs.items()}
