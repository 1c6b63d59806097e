"""Helpers mapping our results onto the GrowthBook spec's result shape."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from cognitionos.flags import (
    ErrorCode,
    Evaluation,
    EvaluationOptions,
    ExperimentResult,
    InMemoryStickyBuckets,
    Reason,
)
from cognitionos.testing import SharedDataMissing, shared_data
from tests.conftest import missing_data_reason

CASES_FILE = "flags/growthbook_cases.json"

#: cases per section in the suite at the pinned commit (scripts/fetch_conformance_data.py).
#: Without the data each section still yields this many tests, each skipped with the reason,
#: so a run without the data collects exactly what a run with it does and says what it skipped.
SECTION_SIZES = {
    "evalCondition": 248,
    "hash": 15,
    "getBucketRange": 13,
    "feature": 55,
    "run": 73,
    "chooseVariation": 13,
    "getQueryStringOverride": 16,
    "inNamespace": 16,
    "getEqualWeights": 6,
    "decrypt": 10,
    "stickyBucket": 13,
    "urlRedirect": 4,
    "contextualBandit": 35,
}


def load_cases() -> dict[str, Any] | None:
    try:
        path = shared_data(CASES_FILE)
    except SharedDataMissing:
        return None
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


_CASES = load_cases()


def cases(section: str) -> list[Any]:
    """``pytest.param`` per case of ``section``; skipped placeholders when the data is absent."""
    if _CASES is None:
        if os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1":
            raise SharedDataMissing(f"{CASES_FILE} is required in CI but was not found")
        skip = pytest.mark.skip(reason=missing_data_reason(CASES_FILE))
        return [
            pytest.param(None, marks=skip, id=f"{i:03d}") for i in range(SECTION_SIZES[section])
        ]
    out = []
    for i, case in enumerate(_CASES[section]):
        name = case[0] if isinstance(case[0], str) else json.dumps(case[0])
        out.append(pytest.param(case, id=f"{i:03d}-{name}"))
    return out


def source_of(ev: Evaluation) -> str:
    """GrowthBook's ``source`` for one of our evaluations."""
    if ev.reason is Reason.ERROR:
        if ev.error_code is ErrorCode.FLAG_NOT_FOUND:
            return "unknownFeature"
        if ev.error_code is ErrorCode.CYCLIC_PREREQUISITE:
            return "cyclicPrerequisite"
        return "error"
    return {
        Reason.PREREQUISITE_FAILED: "prerequisite",
        Reason.TARGETING_MATCH: "force",
        Reason.SPLIT: "experiment",
        Reason.DEFAULT: "defaultValue",
        Reason.STATIC: "defaultValue",
    }[ev.reason]


def experiment_result_dict(res: ExperimentResult) -> dict[str, Any]:
    """Our experiment result in the GrowthBook ``experimentResult`` shape."""
    out: dict[str, Any] = {
        "value": res.value,
        "variationId": res.variation_id,
        "inExperiment": res.in_experiment,
        "hashUsed": res.hash_used,
        "hashAttribute": res.hash_attribute,
        "hashValue": res.hash_value,
        "key": res.key,
        "stickyBucketUsed": res.sticky_bucket_used,
    }
    if res.feature_key is not None:
        out["featureId"] = res.feature_key
    if res.bucket is not None:
        out["bucket"] = res.bucket
    if res.name:
        out["name"] = res.name
    if res.passthrough:
        out["passthrough"] = True
    if res.leaf_id is not None:
        out["leafId"] = res.leaf_id
        out["variationWeights"] = list(res.variation_weights or ())
    if res.bandit_version is not None:
        out["banditVersion"] = res.bandit_version
    return out


def options_from(
    ctx: dict[str, Any], sticky: InMemoryStickyBuckets | None = None
) -> EvaluationOptions:
    """EvaluationOptions for a GrowthBook test context."""
    return EvaluationOptions(
        forced_variations=ctx.get("forcedVariations") or {},
        qa_mode=bool(ctx.get("qaMode")),
        experiments_enabled=ctx.get("enabled", True) is not False,
        url=ctx.get("url"),
        sticky_buckets=sticky,
    )
