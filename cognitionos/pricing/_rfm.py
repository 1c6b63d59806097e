"""RFM summaries (frequency, recency, T, monetary value) from raw transaction logs, vectorized.

Conventions (those of Fader & Hardie's CDNOW summaries): transactions of one customer in the
same ``aggregate`` period (a calendar day by default) count as one purchase whose spend is
their sum; ``frequency`` counts *repeat* purchases; ``recency`` is the time from the first to
the last purchase and ``T`` from the first purchase to the end of the calibration period,
both in ``time_unit``; ``monetary_value`` is the mean spend of the repeat purchases.

    s = rfm_summary(log, customer="id", timestamp="date", amount="amount",
                    calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W")
    BetaGeoModel().fit(s)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._inputs import column, is_table, rows_text

__all__ = ["RFMSummary", "rfm_summary"]

#: length of each accepted time unit, in days
UNITS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "D": 1.0, "W": 7.0}


@attrs.frozen(slots=True, eq=False)
class RFMSummary:
    """Per-customer RFM columns (numpy arrays), readable like a table: ``summary["frequency"]``.

    Holdout columns are ``None`` unless a ``calibration_end`` split was asked for.
    """

    customer: Any
    frequency: Any
    recency: Any
    T: Any
    monetary_value: Any
    time_unit: str
    frequency_holdout: Any = None
    monetary_value_holdout: Any = None
    duration_holdout: float | None = None
    excluded_new_in_holdout: int = 0

    def keys(self) -> list[str]:
        """Column names present (the holdout ones only after a split)."""
        names = ["customer", "frequency", "recency", "T", "monetary_value"]
        if self.frequency_holdout is not None:
            names += ["frequency_holdout", "monetary_value_holdout"]
        return names

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __len__(self) -> int:
        return int(self.frequency.size)

    def rows(self) -> Iterator[dict[str, Any]]:
        """One plain dict per customer (for CSV/JSON output)."""
        keys = self.keys()
        cols = [self[k] for k in keys]
        for i in range(len(self)):
            yield {
                k: (c[i].item() if hasattr(c[i], "item") else c[i])
                for k, c in zip(keys, cols, strict=True)
            }


def _rows_to_columns(transactions: Any, names: list[str]) -> Mapping[str, Any]:
    if is_table(transactions):
        return transactions  # type: ignore[no-any-return]
    try:
        rows = list(transactions)
    except TypeError:
        raise ConfigurationError("transactions must be a table of columns or rows") from None
    out: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"transactions row {i} is not a mapping")
        for n in names:
            if n not in row:
                raise ConfigurationError(f"transactions row {i} has no column {n!r}")
            out[n].append(row[n])
    return out


def _days(values: Any, name: str, fmt: str | None) -> tuple[Any, bool]:
    """Timestamps as float days since the epoch (or raw numbers, flagged ``False``)."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind in "iuf" and fmt is None:
        bad = np.flatnonzero(~np.isfinite(arr.astype(float)))
        if bad.size:
            raise ConfigurationError(f"{name} has missing values at {rows_text(bad)}")
        return arr.astype(float), False
    if fmt is not None:
        from datetime import datetime

        parsed = []
        for i, v in enumerate(arr.tolist()):
            try:
                parsed.append(datetime.strptime(str(v).strip(), fmt))
            except ValueError:
                raise ConfigurationError(
                    f"{name} row {i}: {v!r} does not match format {fmt!r}"
                ) from None
        arr = np.array(parsed, dtype="datetime64[us]")
    if arr.dtype.kind != "M":
        try:
            arr = np.array([str(v).strip().replace(" ", "T", 1) for v in arr.tolist()])
            arr = arr.astype("datetime64[us]")
        except ValueError as exc:
            raise ConfigurationError(f"{name}: not a date/time ({exc})") from None
    bad = np.flatnonzero(np.isnat(arr))
    if bad.size:
        raise ConfigurationError(f"{name} has missing dates at {rows_text(bad)}")
    return (arr - np.datetime64(0, "us")) / np.timedelta64(1, "D"), True


def _point(value: Any, name: str, is_date: bool, fmt: str | None) -> float:
    import numpy as np

    days, dated = _days(np.array([value]), name, fmt)
    if dated != is_date:
        raise ConfigurationError(f"{name} must be a {'date' if is_date else 'number'} like the log")
    return float(days[0])


def rfm_summary(
    transactions: Any,
    *,
    customer: str = "customer",
    timestamp: str = "timestamp",
    amount: str | None = None,
    observation_end: Any = None,
    calibration_end: Any = None,
    time_unit: str = "D",
    aggregate: str = "D",
    timestamp_format: str | None = None,
) -> RFMSummary:
    """Summarise a transaction log per customer (see the module docstring for conventions).

    ``transactions`` is a table of columns (dict of lists, DataFrame) or an iterable of row
    dicts. Timestamps are dates/datetimes (ISO strings, ``datetime``, ``datetime64``, or text
    parsed with ``timestamp_format``), or plain numbers already in ``time_unit``. With
    ``calibration_end`` the log is split: calibration columns up to it, holdout columns
    (purchases and their mean spend) after it up to ``observation_end``.
    """
    import numpy as np

    if time_unit not in UNITS:
        raise ConfigurationError(f"time_unit must be one of {sorted(UNITS)}, got {time_unit!r}")
    if aggregate not in UNITS:
        raise ConfigurationError(f"aggregate must be one of {sorted(UNITS)}, got {aggregate!r}")
    names = [customer, timestamp] + ([amount] if amount else [])
    table = _rows_to_columns(transactions, names)
    ids = np.asarray(column(table, customer, "transactions"))
    n = ids.size
    if n == 0:
        raise ConfigurationError("transactions are empty")
    when, dated = _days(column(table, timestamp, "transactions"), timestamp, timestamp_format)
    if when.size != n:
        raise ConfigurationError(f"column {timestamp!r} has {when.size} values, expected {n}")
    if amount:
        try:
            spend = np.asarray(column(table, amount, "transactions"), dtype=float)
        except (TypeError, ValueError):
            raise ConfigurationError(f"column {amount!r} must be numbers") from None
        bad = np.flatnonzero(~np.isfinite(spend) | (spend < 0))
        if bad.size:
            raise ConfigurationError(
                f"column {amount!r} is negative or missing at {rows_text(bad)}"
            )
    else:
        spend = np.zeros(n)

    unit = UNITS[time_unit] if dated else 1.0
    step = UNITS[aggregate] if dated else None
    end = (
        float(when.max())
        if observation_end is None
        else _point(observation_end, "observation_end", dated, timestamp_format)
    )
    cal_end = (
        end
        if calibration_end is None
        else _point(calibration_end, "calibration_end", dated, timestamp_format)
    )
    if cal_end > end:
        raise ConfigurationError("calibration_end is after observation_end")
    # purchases in the same aggregate period merge (their spend adds up); the period's time
    # is its start, so recency and T count whole periods of aggregation like the papers do
    period = np.floor(when / step) * step if step is not None else when
    keep = period <= end
    ids, period, spend = ids[keep], period[keep], spend[keep]
    if ids.size == 0:
        raise ConfigurationError("no transaction on or before observation_end")

    codes_all, uniq_inverse = np.unique(ids, return_inverse=True)
    codes = uniq_inverse.ravel()
    order = np.lexsort((period, codes))
    codes, period, spend = codes[order], period[order], spend[order]
    new = np.ones(codes.size, dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (period[1:] != period[:-1])
    starts = np.flatnonzero(new)
    codes, period = codes[starts], period[starts]
    spend = np.add.reduceat(spend, starts)

    first_idx = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first = np.repeat(period[first_idx], np.diff(np.r_[first_idx, codes.size]))
    is_first = np.zeros(codes.size, dtype=bool)
    is_first[first_idx] = True
    cal = period <= cal_end
    known = np.zeros(codes_all.size, dtype=bool)
    known[codes[is_first & cal]] = True
    m = codes_all.size

    cal_repeat = cal & ~is_first
    freq = np.bincount(codes[cal_repeat], minlength=m).astype(float)
    spend_sum = np.bincount(codes[cal_repeat], weights=spend[cal_repeat], minlength=m)
    last = np.full(m, -np.inf)
    np.maximum.at(last, codes[cal], period[cal])
    first_c = np.full(m, np.nan)
    first_c[codes[first_idx]] = period[first_idx]
    recency = np.where(known, (last - first_c) / unit, 0.0)
    T = np.where(known, (cal_end - first_c) / unit, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(freq > 0, spend_sum / np.maximum(freq, 1), 0.0)
    holdout: dict[str, Any] = {}
    if calibration_end is not None:
        hold = ~cal & (first <= cal_end)
        f_h = np.bincount(codes[hold], minlength=m).astype(float)
        s_h = np.bincount(codes[hold], weights=spend[hold], minlength=m)
        holdout = {
            "frequency_holdout": f_h[known],
            "monetary_value_holdout": np.where(f_h > 0, s_h / np.maximum(f_h, 1), 0.0)[known],
            "duration_holdout": (end - cal_end) / unit,
        }
    return RFMSummary(
        customer=codes_all[known],
        frequency=freq[known],
        recency=np.round(recency[known], 12),
        T=np.round(T[known], 12),
        monetary_value=monetary[known],
        time_unit=time_unit,
        excluded_new_in_holdout=int(m - np.count_nonzero(known)),
        **holdout,
    )
