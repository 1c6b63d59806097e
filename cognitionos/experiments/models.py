"""Experiment definitions (parsed with pydantic) and the answers of the engine (attrs).

An experiment is written as JSON (or a dict) and validated once::

    Experiment.model_validate({
        "key": "checkout-v2",
        "arms": [{"key": "control"}, {"key": "treatment"}],
        "metrics": [{"name": "revenue", "kind": "continuous", "cap_upper": 500}],
    })

Targeting ``condition`` uses the condition language of :mod:`cognitionos.flags`
(GrowthBook's MongoDB-like operators) and is compiled by the flags engine's public
``compile_condition``, so a typo in an operator is rejected when the definition is written.
"""

from __future__ import annotations

import enum
import math
import re
from typing import Any, Literal

import attrs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cognitionos.errors import ConfigurationError

__all__ = [
    "Arm",
    "Assignment",
    "AssignmentReason",
    "Experiment",
    "ExperimentStatus",
    "Holdout",
    "Metric",
    "NamespaceSlice",
    "Phase",
    "parse_experiment",
]

#: keys of experiments, arms and metrics: printable, no separators used by the stores
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1..128 characters of letters, digits and _ . : @ + -, "
            "starting with a letter or digit"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExperimentStatus(enum.StrEnum):
    """Lifecycle: only a ``running`` experiment assigns units to arms."""

    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class Arm(_Model):
    """One arm (variation): its key, share of traffic and the value shipped as a flag."""

    key: str
    weight: float | None = Field(default=None, ge=0, le=1)
    name: str = ""
    value: Any = None

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _check_name(v, "arm key")


class Metric(_Model):
    """A metric measured per unit; ``kind`` decides how a unit's events become one value.

    - ``binomial``: 1 if the unit has any event with a positive value, else 0;
    - ``count``: the number (sum of values, default 1 per event) of the unit's events;
    - ``continuous``: the sum of the unit's values (revenue), capped at ``cap_lower``/``cap_upper``;
    - ``ratio``: numerator = sum of values, denominator = sum of ``denominator`` arguments,
      each capped by its own pair of caps.

    Caps are fixed numbers (winsorization with a known threshold) applied to the unit's
    total, so they stay incremental. They must keep 0 inside ``[lower, upper]``: a unit
    without events counts as 0.
    """

    name: str
    kind: Literal["binomial", "continuous", "count", "ratio"] = "continuous"
    cap_lower: float | None = None
    cap_upper: float | None = None
    denominator_cap_lower: float | None = None
    denominator_cap_upper: float | None = None
    guardrail: bool = False
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "metric name")

    @model_validator(mode="after")
    def _caps(self) -> Metric:
        pairs = (
            ("cap", self.cap_lower, self.cap_upper),
            ("denominator_cap", self.denominator_cap_lower, self.denominator_cap_upper),
        )
        for label, lo, hi in pairs:
            if lo is not None and not (math.isfinite(lo) and lo <= 0):
                raise ValueError(f"{label}_lower={lo!r} must be a finite number <= 0")
            if hi is not None and not (math.isfinite(hi) and hi >= 0):
                raise ValueError(f"{label}_upper={hi!r} must be a finite number >= 0")
        if self.kind != "ratio" and (
            self.denominator_cap_lower is not None or self.denominator_cap_upper is not None
        ):
            raise ValueError("denominator caps only apply to ratio metrics")
        return self


class NamespaceSlice(_Model):
    """Mutual exclusion: experiments of one ``name`` and disjoint ``[start, end)`` never overlap."""

    name: str = Field(min_length=1)
    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> NamespaceSlice:
        if self.start > self.end:
            raise ValueError(f"namespace start {self.start} is after its end {self.end}")
        return self


class Holdout(_Model):
    """A fraction of all units kept out of the experiment (they see the control arm)."""

    key: str = Field(min_length=1)
    fraction: float = Field(ge=0, le=1)


class Phase(_Model):
    """One phase of a running experiment: from ``start`` (Unix seconds) until the next phase,
    units were split by ``weights`` (arm key -> share of the covered traffic) and
    ``coverage``. The engine appends one when an experiment starts and whenever its weights
    or coverage change while it runs; SRM is then checked phase by phase.
    """

    start: float = Field(ge=0)
    weights: dict[str, float]
    coverage: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _weights(self) -> Phase:
        if len(self.weights) < 2:
            raise ValueError(f"a phase needs the weights of at least two arms, got {self.weights}")
        bad = {k: w for k, w in self.weights.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"phase weights must be finite and >= 0, got {bad}")
        if math.fsum(self.weights.values()) <= 0:
            raise ValueError("phase weights must not all be 0")
        return self


class Experiment(_Model):
    """An A/B/n experiment definition.

    ``hash_attribute`` names the attribute holding the unit id (``assign`` fills it from
    ``unit_id``); ``seed`` defaults to the key; hashing follows GrowthBook
    (``hash_version`` 1 or 2), so the same definition run by ``FlagEngine.run`` gives
    every unit the same arm.
    """

    key: str
    arms: list[Arm] = Field(min_length=2, max_length=100)
    coverage: float = Field(default=1.0, ge=0, le=1)
    condition: dict[str, Any] | None = None
    namespace: NamespaceSlice | None = None
    holdout: Holdout | None = None
    hash_attribute: str = Field(default="id", min_length=1)
    hash_version: Literal[1, 2] = 2
    seed: str | None = None
    bucket_version: int = Field(default=0, ge=0)
    status: ExperimentStatus = ExperimentStatus.DRAFT
    metrics: list[Metric] = Field(default_factory=list)
    description: str = ""
    shipped: str | None = None
    phases: list[Phase] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _check_name(v, "experiment key")

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        keys = [a.key for a in self.arms]
        if len(set(keys)) != len(keys):
            raise ValueError(f"arm keys must be unique, got {keys}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {names}")
        given = [a.weight for a in self.arms]
        if any(w is not None for w in given):
            if any(w is None for w in given):
                raise ValueError("give a weight to every arm or to none")
            total = math.fsum(w for w in given if w is not None)
            # GrowthBook's tolerance: weights that miss 1 by more are replaced by equal ones
            if not 0.99 <= total <= 1.01:
                raise ValueError(f"arm weights must sum to 1, got {total}")
        if self.shipped is not None and self.shipped not in keys:
            raise ValueError(f"shipped arm {self.shipped!r} is not one of {keys}")
        for i, phase in enumerate(self.phases):
            if i and phase.start < self.phases[i - 1].start:
                raise ValueError(f"phase {i} starts before phase {i - 1}")
        return self

    @property
    def phase(self) -> int:
        """Index of the current phase (0 when there are none yet)."""
        return max(len(self.phases) - 1, 0)

    @property
    def weights(self) -> list[float]:
        """Each arm's share of the covered traffic (equal when no weight is given)."""
        if self.arms[0].weight is None:
            return [1 / len(self.arms)] * len(self.arms)
        return [float(a.weight or 0.0) for a in self.arms]

    def metric(self, name: str) -> Metric:
        """The metric called ``name``; ConfigurationError naming it when there is none."""
        for m in self.metrics:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.metrics) or "none"
        raise ConfigurationError(
            f"experiment {self.key!r} has no metric {name!r} (metrics: {known})"
        )


def parse_experiment(data: Any, where: str = "experiment") -> Experiment:
    """Validate a dict (or an :class:`Experiment`) into an :class:`Experiment`.

    Invalid input raises ConfigurationError naming ``where`` and each invalid field.
    """
    if isinstance(data, Experiment):
        return data
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            parts.append(f"{loc or '<root>'}: {err.get('msg', 'invalid')}")
        raise ConfigurationError(f"{where}: " + "; ".join(parts)) from None


class AssignmentReason(enum.StrEnum):
    """Why a unit is, or is not, in the experiment."""

    ASSIGNED = "assigned"
    STICKY = "sticky"
    UNKNOWN_EXPERIMENT = "unknown_experiment"
    NOT_RUNNING = "not_running"
    NO_UNIT_ID = "no_unit_id"
    TARGETING = "targeting"
    NAMESPACE = "namespace"
    HOLDOUT = "holdout"
    COVERAGE = "coverage"
    SHIPPED = "shipped"


@attrs.frozen(slots=True)
class Assignment:
    """Which arm a unit gets. Outside the experiment the variant is the control arm (first).

    ``hash_value`` is the bucket in ``[0, 1)`` the unit hashed to (``None`` when it was
    not hashed).
    """

    variant: str | None
    in_experiment: bool
    hash_value: float | None
    experiment_key: str = ""
    reason: AssignmentReason = AssignmentReason.ASSIGNED
    value: Any = attrs.field(default=None, eq=False)
