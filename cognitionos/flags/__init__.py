"""Feature flags: which value or variant of a flag does this user get?

Definitions (targeting rules, segments, percentage rollouts with sticky
bucketing, prerequisites, schedules, kill switch, environments) are validated
once and compiled into an immutable snapshot; evaluation is a pure function
of that snapshot and the user's attributes. GrowthBook payloads are evaluated
exactly as the GrowthBook SDK specification says; Unleash client payloads as
the Unleash client specification says::

    from cognitionos.flags import FlagEngine
    engine = FlagEngine.from_growthbook(payload)
    ev = engine.evaluate("new-checkout", {"id": "u1", "country": "NL"}, default=False)
    ev.value, ev.variant, ev.reason
"""

from __future__ import annotations

from cognitionos.bucketing import InMemoryStickyBuckets, StickyBucketService
from cognitionos.flags._conditions import compile_condition
from cognitionos.flags.engine import FlagEngine
from cognitionos.flags.models import (
    EnvironmentOverride,
    ErrorCode,
    Evaluation,
    EvaluationOptions,
    ExperimentResult,
    Filter,
    FlagDefinition,
    FlagSet,
    Namespace,
    Prerequisite,
    Ramp,
    Reason,
    Rule,
    VariantSplit,
    Variation,
)

__all__ = [
    "EnvironmentOverride",
    "ErrorCode",
    "Evaluation",
    "EvaluationOptions",
    "ExperimentResult",
    "Filter",
    "FlagDefinition",
    "FlagEngine",
    "FlagSet",
    "InMemoryStickyBuckets",
    "Namespace",
    "Prerequisite",
    "Ramp",
    "Reason",
    "Rule",
    "StickyBucketService",
    "VariantSplit",
    "Variation",
    "compile_condition",
]
