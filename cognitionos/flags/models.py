"""Flag definitions (pydantic, validated at load) and evaluation results (attrs, frozen).

The definition model is expressive enough to hold GrowthBook features and
Unleash toggles: typed default values, ordered rules that either force a
value (optionally behind a percentage rollout) or split users between
variations, MongoDB-style conditions, saved groups, prerequisites, schedules
with linear ramps, a kill switch and per-environment overrides::

    flag = FlagDefinition(
        key="new-checkout",
        default_value=False,
        rules=[Rule(condition={"country": "NL"}, value=True, coverage=0.3)],
    )
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import attrs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cognitionos.flags._input import check_depth

__all__ = [
    "EnvironmentOverride",
    "ErrorCode",
    "Evaluation",
    "EvaluationOptions",
    "ExperimentResult",
    "Filter",
    "FlagDefinition",
    "FlagSet",
    "Namespace",
    "Prerequisite",
    "Ramp",
    "Reason",
    "Rule",
    "Variation",
    "VariantSplit",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

HashVersion = int | Literal["unleash"]


#: validation context key: drop fields this release does not know (reading a store
#: written by a newer release) instead of rejecting them; their names are collected
#: under ``_IGNORED_FIELDS`` in the same context
_IGNORE_UNKNOWN_FIELDS = "ignore_unknown_fields"
_IGNORED_FIELDS = "ignored_fields"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _forward_compatible(cls, data: Any, info: ValidationInfo) -> Any:
        # user input stays strict (extra="forbid"); only a caller that asks for it,
        # the store reader, tolerates fields added by a newer release
        ctx = info.context
        if not ctx or not ctx.get(_IGNORE_UNKNOWN_FIELDS) or not isinstance(data, Mapping):
            return data
        unknown = [k for k in data if k not in cls.model_fields]
        if not unknown:
            return data
        ctx.setdefault(_IGNORED_FIELDS, []).extend(f"{cls.__name__}.{k}" for k in unknown)
        return {k: v for k, v in data.items() if k not in unknown}


class Prerequisite(_Model):
    """Another flag whose result must satisfy ``condition`` first.

    The condition is evaluated against ``{"value": <parent value>, "enabled": <parent on>,
    "variant": <parent variant>}``. At rule level a failing prerequisite skips
    the rule, or, with ``gate=True``, turns the whole flag off; at flag level
    it always gates.
    """

    flag: str = Field(min_length=1)
    condition: dict[str, Any] = Field(default_factory=dict)
    gate: bool = False


class Filter(_Model):
    """A hash filter: the user takes part only when ``hash(seed, attribute)`` falls in a range."""

    attribute: str = "id"
    seed: str = ""
    hash_version: int = 2
    ranges: list[tuple[float, float]]


class Namespace(_Model):
    """A mutually exclusive slice ``[start, end)`` of the namespace ``name``."""

    name: str
    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _from_triple(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) != 3:
                raise ValueError("a namespace is [name, start, end]")
            return {"name": data[0], "start": data[1], "end": data[2]}
        return data


class Variation(_Model):
    """One arm of a split: the value served, its variant key and optional weight/payload."""

    value: Any = None
    key: str | None = None
    name: str | None = None
    weight: float | None = Field(default=None, ge=0)
    passthrough: bool = False
    payload: Any = None
    #: override: a user matching this condition always gets this variation
    condition: dict[str, Any] | None = None


class VariantSplit(_Model):
    """Variant selection attached to a rule or flag whose *value* is fixed (Unleash variants).

    ``stickiness`` lists the attributes tried in order for the hash identity;
    ``"random"`` in that list draws a random bucket.
    """

    variations: list[Variation] = Field(min_length=1)
    stickiness: list[str] = Field(default_factory=lambda: ["userId", "sessionId", "random"])
    seed: str = ""
    hash_version: HashVersion = "unleash"
    #: MurmurHash3 seed of ``"unleash"`` hashing: 86028157 (strategy variants), 0 (flag variants)
    murmur_seed: int = 86028157


class Ramp(_Model):
    """A coverage that moves linearly from ``from_coverage`` to ``to_coverage``."""

    start: datetime
    end: datetime
    from_coverage: float = Field(default=0.0, ge=0, le=1)
    to_coverage: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Ramp:
        if self.end <= self.start:
            raise ValueError("ramp end must be after its start")
        return self


_UNSET: Any = object()


class Rule(_Model):
    """One targeting rule; rules are tried in order and the first that applies decides.

    A rule either *forces* ``value`` (optionally behind ``coverage``/``range``
    rollout on a hash of ``hash_attribute``) or *splits* users between
    ``variations`` (an experiment or a percentage rollout with weights).
    """

    id: str = ""
    description: str = ""
    condition: dict[str, Any] | None = None
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    filters: list[Filter] = Field(default_factory=list)
    # hashing
    hash_attribute: str | list[str] = "id"
    fallback_attribute: str | None = None
    hash_version: HashVersion = 1
    seed: str | None = None
    # force rule
    value: Any = None
    force: bool = False
    variant: str | None = None
    coverage: float | None = None
    range: tuple[float, float] | None = None
    variants: VariantSplit | None = None
    # split rule
    variations: list[Variation] | None = None
    ranges: list[tuple[float, float]] | None = None
    namespace: Namespace | None = None
    experiment_key: str | None = None
    name: str | None = None
    phase: str | None = None
    bucket_version: int = 0
    min_bucket_version: int = 0
    disable_sticky_bucketing: bool = False
    contextual_bandit: str | None = None
    # schedule
    start_at: datetime | None = None
    end_at: datetime | None = None
    ramp: Ramp | None = None

    @model_validator(mode="before")
    @classmethod
    def _mark_force(cls, data: Any) -> Any:
        # a rule that states a value (and no variations) forces it, even a null one
        if (
            isinstance(data, Mapping)
            and "value" in data
            and "force" not in data
            and data.get("variations") is None
        ):
            return {**data, "force": True}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.force and self.variations is not None:
            raise ValueError("a rule either forces a value or splits between variations, not both")
        if self.variations is not None and len(self.variations) == 0:
            raise ValueError("variations must not be empty")
        if not self.force and self.variations is None and not self.prerequisites:
            raise ValueError("a rule needs a value, variations or prerequisites")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self

    @field_validator("range")
    @classmethod
    def _range_ok(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 <= v[0] <= v[1] <= 1):
            raise ValueError("range must satisfy 0 <= start <= end <= 1")
        return v


class FlagDefinition(_Model):
    """A feature flag: its key, value type, default, rules and lifecycle switches."""

    key: str = Field(min_length=1)
    description: str = ""
    type: Literal["boolean", "string", "number", "json"] | None = None
    default_value: Any = None
    enabled: bool = True
    rules: list[Rule] = Field(default_factory=list)
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    variants: VariantSplit | None = None
    #: variant name reported with ``default_value`` (flagd/OpenFeature ``defaultVariant``)
    default_variant: str | None = None
    #: static flag metadata (OpenFeature ``flag_metadata``, flagd ``metadata``)
    metadata: dict[str, Any] = Field(default_factory=dict)
    environments: dict[str, EnvironmentOverride] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounded_nesting(cls, data: Any) -> Any:
        # before any field validator: a condition 500 levels deep would overflow the stack
        # in pydantic or the compiler; refused here with the path instead
        if isinstance(data, Mapping):
            check_depth(data, f"flag {str(data.get('key', ''))!r}")
        return data

    def for_environment(self, environment: str | None) -> FlagDefinition:
        """This flag with the overrides of ``environment`` applied (itself if there are none)."""
        if environment is None or environment not in self.environments:
            return self
        env = self.environments[environment]
        update: dict[str, Any] = {"environments": {}}
        if env.enabled is not None:
            update["enabled"] = env.enabled
        if env.rules is not None:
            update["rules"] = env.rules
        if "default_value" in env.model_fields_set:
            update["default_value"] = env.default_value
        return self.model_copy(update=update)


class EnvironmentOverride(_Model):
    """What changes for one environment: on/off, rules, default value."""

    enabled: bool | None = None
    rules: list[Rule] | None = None
    default_value: Any = None


FlagDefinition.model_rebuild()


class FlagSet(_Model):
    """A complete set of flag definitions plus the saved groups their conditions reference.

    ``invalid`` lists flags that could not be loaded (from a store or a vendor
    document), with the reason; they answer ERROR/PARSE_ERROR when evaluated.
    """

    flags: list[FlagDefinition] = Field(default_factory=list)
    saved_groups: dict[str, list[Any]] = Field(default_factory=dict)
    contextual_bandits: dict[str, Any] = Field(default_factory=dict)
    #: flags that failed to load (key -> reason): each evaluates to reason ERROR with
    #: error code PARSE_ERROR while every other flag keeps working
    invalid: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> FlagSet:
        seen: set[str] = set()
        for f in self.flags:
            if f.key in seen:
                raise ValueError(f"duplicate flag key {f.key!r}")
            if f.key in self.invalid:
                raise ValueError(f"flag {f.key!r} is both defined and listed as invalid")
            seen.add(f.key)
        return self


class Reason(enum.StrEnum):
    """Why a value was chosen; the first six mirror OpenFeature's resolution reasons."""

    STATIC = "STATIC"
    DEFAULT = "DEFAULT"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"
    #: a gating prerequisite flag did not have the required value
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"

    def __str__(self) -> str:
        return self.value


class ErrorCode(enum.StrEnum):
    """What went wrong when ``reason`` is ERROR (OpenFeature codes plus one of ours)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"
    #: prerequisites of the flag form a cycle
    CYCLIC_PREREQUISITE = "CYCLIC_PREREQUISITE"

    def __str__(self) -> str:
        return self.value


def _js_truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (int, float)):
        return value == value and value != 0
    return True


@attrs.frozen(slots=True)
class ExperimentResult:
    """How a user was bucketed by a split rule (GrowthBook's experiment result)."""

    experiment_key: str
    feature_key: str | None
    variation_id: int
    key: str
    value: Any
    in_experiment: bool
    hash_used: bool
    hash_attribute: str
    hash_value: Any
    bucket: float | None = None
    name: str | None = None
    passthrough: bool = False
    sticky_bucket_used: bool = False
    leaf_id: int | None = None
    variation_weights: tuple[float, ...] | None = None
    bandit_version: int | None = None


@attrs.frozen(slots=True)
class Evaluation:
    """The answer to "which value of this flag does this user get?".

    ``reason`` says why (see :class:`Reason`); ``error_code`` is set only when
    ``reason`` is ERROR, and then ``value`` is the caller's default::

        ev = engine.evaluate("new-checkout", {"id": "u1"}, default=False)
        if ev.value: ...
    """

    flag_key: str
    value: Any
    reason: Reason
    variant: str | None = None
    rule_id: str | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    experiment: ExperimentResult | None = None
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False)

    @property
    def on(self) -> bool:
        """JavaScript truthiness of ``value`` (GrowthBook's ``on``)."""
        return _js_truthy(self.value)


@attrs.frozen(slots=True)
class EvaluationOptions:
    """Per-call context beyond attributes: forced variations, QA mode, URL, sticky buckets.

    ``sticky_buckets`` is any object with ``get_assignments(attribute, value)``
    and ``save_assignments(doc)`` (see :class:`~cognitionos.flags.StickyBucketService`).
    """

    forced_variations: Mapping[str, int] = attrs.field(default=_EMPTY)
    qa_mode: bool = False
    experiments_enabled: bool = True
    url: str | None = None
    sticky_buckets: Any = None
