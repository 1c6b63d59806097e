"""The OpenFeature provider is a thin mapping over FlagEngine.evaluate."""

from __future__ import annotations

import asyncio

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from cognitionos.flags import FlagEngine
from cognitionos.integrations.openfeature import CognitionProvider

PAYLOAD = {
    "features": {
        "checkout": {
            "defaultValue": False,
            "rules": [{"id": "nl", "condition": {"country": "NL"}, "force": True}],
        },
        "color": {"defaultValue": "blue"},
        "limit": {"defaultValue": 10},
        "ratio": {"defaultValue": 1},
        "config": {"defaultValue": {"a": 1}},
        "exp": {
            "defaultValue": "c",
            "rules": [
                {
                    "key": "e",
                    "variations": ["c", "t"],
                    "meta": [{"key": "control"}, {"key": "treat"}],
                }
            ],
        },
    }
}


@pytest.fixture
def provider() -> CognitionProvider:
    return CognitionProvider(FlagEngine.from_growthbook(PAYLOAD))


def test_typed_resolution(provider: CognitionProvider) -> None:
    nl = provider.resolve_boolean_details(
        "checkout", False, EvaluationContext("u1", {"country": "NL"})
    )
    assert (nl.value, nl.reason, nl.flag_metadata) == (True, "TARGETING_MATCH", {"ruleId": "nl"})
    assert provider.resolve_string_details("color", "x").value == "blue"
    assert provider.resolve_integer_details("limit", 0).value == 10
    ratio = provider.resolve_float_details("ratio", 0.0)
    assert ratio.value == 1.0
    assert isinstance(ratio.value, float)
    assert provider.resolve_object_details("config", {}).value == {"a": 1}


def test_targeting_key_drives_bucketing(provider: CognitionProvider) -> None:
    details = provider.resolve_string_details("exp", "none", EvaluationContext("user-42"))
    assert details.reason == "SPLIT"
    assert details.variant in ("control", "treat")
    same = provider.resolve_string_details("exp", "none", EvaluationContext("user-42"))
    assert same.variant == details.variant


def test_errors_map_to_openfeature_codes(provider: CognitionProvider) -> None:
    missing = provider.resolve_boolean_details("nope", True)
    assert (missing.value, missing.error_code, missing.reason) == (
        True,
        ErrorCode.FLAG_NOT_FOUND,
        "ERROR",
    )
    mismatch = provider.resolve_boolean_details("color", False)
    assert (mismatch.value, mismatch.error_code) == (False, ErrorCode.TYPE_MISMATCH)


def test_async_twins_and_sdk_client(provider: CognitionProvider) -> None:
    details = asyncio.run(provider.resolve_string_details_async("color", "x"))
    assert details.value == "blue"
    from openfeature import api

    api.set_provider(provider, domain="cognitionos-test")
    try:
        client = api.get_client("cognitionos-test")
        assert (
            client.get_boolean_value("checkout", False, EvaluationContext("u", {"country": "NL"}))
            is True
        )
        assert (
            client.get_boolean_value("checkout", False, EvaluationContext("u", {"country": "DE"}))
            is False
        )
        assert client.get_string_value("missing", "dflt") == "dflt"
    finally:
        api.clear_providers()
