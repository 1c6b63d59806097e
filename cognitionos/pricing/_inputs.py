"""Turning user-supplied columns into validated float arrays, with errors that name the input.

numpy is imported inside the functions (the import budget of ``cognitionos.pricing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cognitionos.errors import ConfigurationError

#: how many offending row numbers an error message lists before "..."
_SHOWN_ROWS = 5


def rows_text(indices: Sequence[int] | Any) -> str:
    """``"rows 3, 7, 9"`` (at most five, then the count), for error messages."""
    idx = [int(i) for i in list(indices)[: _SHOWN_ROWS + 1]]
    more = len(list(indices)) - _SHOWN_ROWS
    shown = ", ".join(str(i) for i in idx[:_SHOWN_ROWS])
    word = "row" if len(idx) == 1 else "rows"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")


def as_float_array(name: str, values: Any, *, length: int | None = None) -> Any:
    """``values`` as a 1-d finite float64 array; ConfigurationError naming ``name`` otherwise."""
    import numpy as np

    if values is None:
        raise ConfigurationError(f"{name} is required")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{name} must be numbers: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ConfigurationError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigurationError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ConfigurationError(f"{name} has missing or infinite values at {rows_text(bad)}")
    if length is not None and arr.size != length:
        raise ConfigurationError(f"{name} has {arr.size} values, expected {length}")
    return arr


def column(data: Any, key: str, what: str) -> Any:
    """``data[key]`` from a DataFrame-like mapping, or a ConfigurationError naming the column."""
    try:
        return data[key]
    except (KeyError, IndexError, TypeError, ValueError):
        raise ConfigurationError(f"{what}: no column {key!r}") from None


def is_table(obj: Any) -> bool:
    """True for a mapping of columns (dict, DataFrame, RFMSummary), false for a plain sequence."""
    return hasattr(obj, "keys") and hasattr(obj, "__getitem__")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0), else ConfigurationError naming ``name``."""
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be finite and {bound}, got {value!r}")
    return number
