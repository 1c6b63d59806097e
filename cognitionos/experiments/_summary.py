"""Sufficient statistics of one arm for one metric: what analysis reads, what storage keeps.

An :class:`ArmSummary` is everything the statistics need about one arm and one metric, so
analysis costs O(arms x metrics), never O(events). Every field is a running sum that can be
updated one event at a time (``SQL UPDATE ... SET s = s + :v``, Redis ``HINCRBYFLOAT``) and
merged by addition, which is what makes the warehouse path (one ``GROUP BY``) and the
incremental path give the same numbers.

Field names follow the quantities, per unit ``i`` of the arm:

- ``n``: units (exposed and analysed);
- ``sum``, ``sum_sq``: sum of the metric value y_i and of y_i**2. For a binomial metric y_i is
  0 or 1, so ``sum == sum_sq`` is the number of conversions;
- ``pre_sum``, ``pre_sum_sq``, ``cross_sum``: CUPED pre-period covariate x_i: sum x_i,
  sum x_i**2, sum x_i*y_i (all zero when the metric has no covariate);
- ``denom_sum``, ``denom_sum_sq``, ``num_denom_sum``: ratio metrics (y_i is the numerator,
  d_i the denominator): sum d_i, sum d_i**2, sum y_i*d_i.
- ``covariate_sums``, ``covariate_products``, ``covariate_cross``: several CUPED covariates
  x_i1 .. x_ip (used instead of ``pre_*`` when given): sum x_ij for each j; sum x_ij*x_ik
  for j <= k in row order ((1,1), (1,2), .., (1,p), (2,2), ..), p(p+1)/2 values; and
  sum x_ij*y_i for each j. Empty tuples (the default) mean no such covariates.
- ``ratio_pre``: CUPED for a ratio metric, whose pre-period covariate is itself a ratio:
  ``pre_sum``, ``pre_sum_sq``, ``cross_sum`` hold the pre-period numerator x_i (sum x_i,
  sum x_i**2, sum x_i*y_i) and ``ratio_pre`` the pre-period denominator e_i, six sums in
  this order: sum e_i, sum e_i**2, sum d_i*e_i, sum x_i*e_i, sum y_i*e_i, sum x_i*d_i.
  Empty (the default) means no ratio covariate.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["ArmSummary", "MetricKind"]

MetricKind = Literal["binomial", "continuous", "count", "ratio"]
_KINDS = ("binomial", "continuous", "count", "ratio")
_SUMS = (
    "sum",
    "sum_sq",
    "pre_sum",
    "pre_sum_sq",
    "cross_sum",
    "denom_sum",
    "denom_sum_sq",
    "num_denom_sum",
)
_TUPLES = ("covariate_sums", "covariate_products", "covariate_cross", "ratio_pre")
#: the sums of ``ratio_pre``, in order (e: pre-period denominator, x: pre-period numerator)
RATIO_PRE_FIELDS = ("e", "e_sq", "d_e", "x_e", "y_e", "x_d")


def _check_kind(_inst: object, _attr: object, value: str) -> None:
    if value not in _KINDS:
        raise ConfigurationError(f"metric kind {value!r} is not one of {', '.join(_KINDS)}")


def _check_n(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"arm size n={value!r} must be a non-negative integer")


def _check_finite(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{attr.name}={value!r} must be a finite number")


def _check_tuple(_inst: object, attr: attrs.Attribute[tuple[float, ...]], value: object) -> None:
    if not isinstance(value, tuple) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        for v in value
    ):
        raise ConfigurationError(f"{attr.name}={value!r} must be a tuple of finite numbers")


def _check_covariates(inst: ArmSummary) -> None:
    p = len(inst.covariate_sums)
    if len(inst.covariate_products) != p * (p + 1) // 2 or len(inst.covariate_cross) != p:
        raise ConfigurationError(
            f"arm {inst.arm!r}, metric {inst.metric!r}: {p} covariate sums need "
            f"{p * (p + 1) // 2} covariate_products and {p} covariate_cross values"
        )
    if inst.ratio_pre:
        if len(inst.ratio_pre) != len(RATIO_PRE_FIELDS):
            raise ConfigurationError(
                f"arm {inst.arm!r}, metric {inst.metric!r}: ratio_pre needs "
                f"{len(RATIO_PRE_FIELDS)} sums ({', '.join(RATIO_PRE_FIELDS)}), "
                f"got {len(inst.ratio_pre)}"
            )
        if inst.kind != "ratio":
            raise ConfigurationError(
                f"arm {inst.arm!r}, metric {inst.metric!r}: ratio_pre is for ratio metrics, "
                f"not {inst.kind!r}"
            )


@attrs.frozen(slots=True)
class ArmSummary:
    """Per-arm, per-metric sufficient statistics (see the module docstring for each field)."""

    arm: str
    metric: str
    n: int = attrs.field(validator=_check_n)
    sum: float = attrs.field(default=0.0, validator=_check_finite)
    sum_sq: float = attrs.field(default=0.0, validator=_check_finite)
    kind: MetricKind = attrs.field(default="continuous", validator=_check_kind)
    pre_sum: float = attrs.field(default=0.0, validator=_check_finite)
    pre_sum_sq: float = attrs.field(default=0.0, validator=_check_finite)
    cross_sum: float = attrs.field(default=0.0, validator=_check_finite)
    denom_sum: float = attrs.field(default=0.0, validator=_check_finite)
    denom_sum_sq: float = attrs.field(default=0.0, validator=_check_finite)
    num_denom_sum: float = attrs.field(default=0.0, validator=_check_finite)
    covariate_sums: tuple[float, ...] = attrs.field(default=(), validator=_check_tuple)
    covariate_products: tuple[float, ...] = attrs.field(default=(), validator=_check_tuple)
    covariate_cross: tuple[float, ...] = attrs.field(default=(), validator=_check_tuple)
    ratio_pre: tuple[float, ...] = attrs.field(default=(), validator=_check_tuple)

    def __attrs_post_init__(self) -> None:
        _check_covariates(self)

    @property
    def mean(self) -> float:
        """Mean of the metric (numerator over units); NaN for an empty arm."""
        return self.sum / self.n if self.n else math.nan

    def merge(self, other: ArmSummary) -> ArmSummary:
        """Sum of two summaries of the same arm, metric and kind (e.g. two partitions)."""
        if (self.arm, self.metric, self.kind) != (other.arm, other.metric, other.kind):
            raise ConfigurationError(
                f"cannot merge summaries of {(self.arm, self.metric, self.kind)!r} "
                f"and {(other.arm, other.metric, other.kind)!r}"
            )
        if len(self.covariate_sums) != len(other.covariate_sums) or len(self.ratio_pre) != len(
            other.ratio_pre
        ):
            raise ConfigurationError(
                f"cannot merge summaries of {self.metric!r} with different covariate counts"
            )
        sums: dict[str, object] = {
            name: getattr(self, name) + getattr(other, name) for name in _SUMS
        }
        for name in _TUPLES:
            sums[name] = tuple(a + b for a, b in zip(getattr(self, name), getattr(other, name),
                                                     strict=True))  # fmt: skip
        return attrs.evolve(self, n=self.n + other.n, **sums)  # type: ignore[arg-type]
