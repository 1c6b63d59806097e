"""Sticky bucketing: remember which variation a user got so later weight changes do not move them.

Assignments are kept per *identity* (attribute name + value) as a mapping
``"<experiment key>__<bucket version>" -> "<variation key>"``, the document
shape GrowthBook SDKs share, so assignments can be exchanged with them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryStickyBuckets", "StickyBucketService"]


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
