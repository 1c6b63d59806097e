"""The bytes of a leaf: canonical JSON of one audit entry.

Encoding (version 1), so that anyone can rebuild a leaf from an exported entry:

- a JSON object with exactly the keys ``v`` (1), ``tenant``, ``actor``, ``action``,
  ``target`` (strings), ``diff`` (any JSON value, ``null`` when absent) and ``at``
  (UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, always six fraction digits);
- keys sorted by code point at every depth, no whitespace (``,`` and ``:``
  separators), strings with non-ASCII characters kept as UTF-8 (not ``\\u``
  escaped), NaN and infinities refused, integers written without exponent;
- the whole encoded as UTF-8.

The entry's position (its index) is not inside the leaf: the Merkle tree fixes
it, so a moved row changes the tree root.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from cognitionos.errors import ConfigurationError

__all__ = ["LEAF_VERSION", "encode_leaf", "format_time", "parse_time"]

LEAF_VERSION = 1


def format_time(at: datetime) -> str:
    """``at`` as the leaf's UTC timestamp text."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`."""
    if not isinstance(text, str) or len(text) != 27 or not text.endswith("Z"):
        raise ConfigurationError(f"audit timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigurationError(
            f"audit timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
        ) from None


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(f"audit diff {path}: {value!r} is not a finite number")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigurationError(f"audit diff {path}: key {key!r} is not a string")
            _check_json(item, f"{path}.{key}")
        return
    raise ConfigurationError(f"audit diff {path}: {type(value).__name__} is not JSON data")


def encode_leaf(
    tenant: str, actor: str, action: str, target: str, diff: Any, at: datetime
) -> bytes:
    """The canonical leaf bytes of one entry (see the module docstring)."""
    for name, value in (
        ("tenant", tenant),
        ("actor", actor),
        ("action", action),
        ("target", target),
    ):
        if not isinstance(value, str):
            raise ConfigurationError(f"audit {name} must be a string, got {type(value).__name__}")
    _check_json(diff, "diff")
    document = {
        "v": LEAF_VERSION,
        "tenant": tenant,
        "actor": actor,
        "action": action,
        "target": target,
        "diff": diff,
        "at": format_time(at),
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
