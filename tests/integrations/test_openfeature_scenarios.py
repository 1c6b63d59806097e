"""OpenFeature evaluation scenarios (the spec's Gherkin suite, in our own words).

The flags mirror the shapes the OpenFeature test harness and the flagd testbed
use: typed static flags, zero values, targeting on context, a targeting-key
flag, a disabled flag, a flag with metadata, and a string flag asked for as
another type.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from cognitionos.flags import FlagEngine
from cognitionos.integrations.openfeature import CognitionProvider

PICS = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}
VIP = "5c3d8535-f81a-4478-a6d3-afaa4d51199e"
EMAIL_IS_BALLMER = {"==": [{"var": "email"}, "ballmer@macrosoft.com"]}


def _zero(variants: dict[str, Any], targeted: bool) -> dict[str, Any]:
    flag: dict[str, Any] = {"state": "ENABLED", "variants": variants, "defaultVariant": "zero"}
    if targeted:
        flag["targeting"] = {"if": [EMAIL_IS_BALLMER, "zero", None]}
    return flag


FLAGS: dict[str, Any] = {
    "boolean-flag": {"variants": {"on": True, "off": False}, "defaultVariant": "on"},
    "string-flag": {"variants": {"greeting": "hi", "parting": "bye"}, "defaultVariant": "greeting"},
    "integer-flag": {"variants": {"one": 1, "ten": 10}, "defaultVariant": "ten"},
    "float-flag": {"variants": {"tenth": 0.1, "half": 0.5}, "defaultVariant": "half"},
    "object-flag": {"variants": {"empty": {}, "template": PICS}, "defaultVariant": "template"},
    "wrong-flag": {"variants": {"one": "uno", "two": "dos"}, "defaultVariant": "one"},
    "context-aware": {
        "variants": {"internal": "INTERNAL", "external": "EXTERNAL"},
        "defaultVariant": "external",
        "targeting": {
            "if": [
                {
                    "and": [
                        {"==": [{"var": ["fn"]}, "Sulisław"]},
                        {"==": [{"var": ["ln"]}, "Świętopełk"]},
                        {"==": [{"var": ["age"]}, 29]},
                        {"==": [{"var": ["customer"]}, False]},
                    ]
                },
                "internal",
                "external",
            ]
        },
    },
    "targeting-key-flag": {
        "variants": {"miss": "miss", "hit": "hit"},
        "defaultVariant": "miss",
        "targeting": {"if": [{"==": [{"var": "targetingKey"}, VIP]}, "hit", None]},
    },
    "metadata-flag": {
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
        "metadata": {"string": "1.0.2", "integer": 2, "boolean": True, "float": 0.1},
    },
    "boolean-disabled-flag": {
        "state": "DISABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    },
    "disabled-true-flag": {
        "disabled": True,
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
        "targeting": {"if": [True, "on", "off"]},
    },
    "boolean-zero-flag": _zero({"zero": False, "non-zero": True}, False),
    "string-zero-flag": _zero({"zero": "", "non-zero": "str"}, False),
    "integer-zero-flag": _zero({"zero": 0, "non-zero": 1}, False),
    "float-zero-flag": _zero({"zero": 0.0, "non-zero": 1.0}, False),
    "object-zero-flag": _zero({"zero": {}, "non-zero": PICS}, False),
    "boolean-targeted-zero-flag": _zero({"zero": False, "non-zero": True}, True),
    "string-targeted-zero-flag": _zero({"zero": "", "non-zero": "str"}, True),
    "integer-targeted-zero-flag": _zero({"zero": 0, "non-zero": 1}, True),
    "float-targeted-zero-flag": _zero({"zero": 0.0, "non-zero": 1.0}, True),
    "object-targeted-zero-flag": _zero({"zero": {}, "non-zero": PICS}, True),
}


@pytest.fixture
def client() -> OpenFeatureClient:
    api.set_provider(CognitionProvider(FlagEngine.from_flagd({"flags": FLAGS})), "scenarios")
    return api.get_client("scenarios")


def _details(
    client: OpenFeatureClient,
    kind: str,
    key: str,
    default: Any,
    ctx: EvaluationContext | None = None,
) -> Any:
    method = getattr(client, f"get_{kind}_details")
    return method(key, default, ctx)


@pytest.mark.parametrize(
    ("kind", "key", "default", "value", "variant"),
    [
        ("boolean", "boolean-flag", False, True, "on"),
        ("string", "string-flag", "bye", "hi", "greeting"),
        ("integer", "integer-flag", 1, 10, "ten"),
        ("float", "float-flag", 0.1, 0.5, "half"),
        ("object", "object-flag", {}, PICS, "template"),
    ],
)
def test_typed_static_flags_resolve_with_variant_and_static_reason(
    client: OpenFeatureClient, kind: str, key: str, default: Any, value: Any, variant: str
) -> None:
    d = _details(client, kind, key, default)
    assert (d.flag_key, d.value, d.variant, d.reason) == (key, value, variant, "STATIC")
    assert d.error_code is None


@pytest.mark.parametrize(
    ("kind", "default", "zero"),
    [
        ("boolean", True, False),
        ("string", "hi", ""),
        ("integer", 1, 0),
        ("float", 0.1, 0.0),
        ("object", {"a": 1}, {}),
    ],
)
def test_zero_values_are_values_not_missing(
    client: OpenFeatureClient, kind: str, default: Any, zero: Any
) -> None:
    static = _details(client, kind, f"{kind}-zero-flag", default)
    assert (static.value, static.reason) == (zero, "STATIC")
    ballmer = EvaluationContext(attributes={"email": "ballmer@macrosoft.com"})
    hit = _details(client, kind, f"{kind}-targeted-zero-flag", default, ballmer)
    assert (hit.value, hit.reason) == (zero, "TARGETING_MATCH")
    for ctx in (
        EvaluationContext(attributes={"email": "ballmer@none.com"}),
        EvaluationContext(),
        EvaluationContext(attributes={"email": None}),
    ):
        miss = _details(client, kind, f"{kind}-targeted-zero-flag", default, ctx)
        assert (miss.value, miss.reason, miss.variant) == (zero, "DEFAULT", "zero")


def test_context_aware_targeting(client: OpenFeatureClient) -> None:
    ctx = EvaluationContext(
        attributes={"fn": "Sulisław", "ln": "Świętopełk", "age": 29, "customer": False}
    )
    d = client.get_string_details("context-aware", "EXTERNAL", ctx)
    assert (d.value, d.variant, d.reason) == ("INTERNAL", "internal", "TARGETING_MATCH")
    assert client.get_string_value("context-aware", "EXTERNAL", EvaluationContext()) == "EXTERNAL"
    older = EvaluationContext(attributes={**ctx.attributes, "age": 30})
    assert client.get_string_value("context-aware", "x", older) == "EXTERNAL"


def test_targeting_key_reaches_targeting(client: OpenFeatureClient) -> None:
    hit = client.get_string_details("targeting-key-flag", "x", EvaluationContext(VIP))
    assert (hit.value, hit.reason) == ("hit", "TARGETING_MATCH")
    miss = client.get_string_details("targeting-key-flag", "x", EvaluationContext("someone"))
    assert (miss.value, miss.reason) == ("miss", "DEFAULT")


@pytest.mark.parametrize(
    ("kind", "default"),
    [("boolean", False), ("string", "bye"), ("integer", 1), ("float", 0.1), ("object", {"a": 1})],
)
def test_missing_flag_returns_default_with_flag_not_found(
    client: OpenFeatureClient, kind: str, default: Any
) -> None:
    d = _details(client, kind, "non-existent-flag", default)
    assert (d.value, d.reason, d.error_code) == (default, "ERROR", ErrorCode.FLAG_NOT_FOUND)
    assert "flag non-existent-flag not found" in (d.error_message or "")


@pytest.mark.parametrize(
    ("key", "kind", "default"),
    [
        ("wrong-flag", "integer", 13),
        ("boolean-flag", "string", "bye"),
        ("boolean-flag", "integer", 1),  # a boolean is not a number here
        ("boolean-flag", "float", 0.1),
        ("string-flag", "boolean", False),
        ("string-flag", "object", {}),
        ("float-flag", "integer", 1),
    ],
)
def test_type_mismatch_returns_default(
    client: OpenFeatureClient, key: str, kind: str, default: Any
) -> None:
    d = _details(client, kind, key, default)
    assert (d.value, d.reason, d.error_code) == (default, "ERROR", ErrorCode.TYPE_MISMATCH)


def test_disabled_flag_returns_default_with_disabled_reason(client: OpenFeatureClient) -> None:
    d = client.get_boolean_details("boolean-disabled-flag", False)
    assert (d.value, d.reason, d.error_code) == (False, "DISABLED", None)


def test_flag_marked_disabled_true_resolves_disabled(client: OpenFeatureClient) -> None:
    # flagd-format files sometimes mark a flag {"disabled": true} instead of "state"
    d = client.get_boolean_details("disabled-true-flag", False)
    assert (d.value, d.variant, d.reason, d.error_code) == (False, None, "DISABLED", None)


def test_flag_metadata_is_returned(client: OpenFeatureClient) -> None:
    d = client.get_boolean_details("metadata-flag", False)
    assert d.value is True
    for key, value in {"string": "1.0.2", "integer": 2, "boolean": True, "float": 0.1}.items():
        assert d.flag_metadata[key] == value
        assert type(d.flag_metadata[key]) is type(value)


def test_async_resolution_matches_sync(client: OpenFeatureClient) -> None:
    sync = client.get_string_details("string-flag", "bye")
    result = asyncio.run(client.get_string_details_async("string-flag", "bye"))
    assert (result.value, result.variant, result.reason) == (sync.value, sync.variant, sync.reason)


def test_caller_context_is_not_modified(client: OpenFeatureClient) -> None:
    attributes = {"email": "ballmer@macrosoft.com"}
    ctx = EvaluationContext("tk", attributes)
    client.get_boolean_details("boolean-targeted-zero-flag", True, ctx)
    assert attributes == {"email": "ballmer@macrosoft.com"}
    assert ctx.targeting_key == "tk"
