"""Differential tests: flagd definitions through our engine and through the flagd SDK.

The reference is ``openfeature-provider-flagd``'s in-process evaluator
(``openfeature-flagd-core``, what its file resolver runs). Both sides answer
through OpenFeature: our :class:`CognitionProvider` over
``FlagEngine.from_flagd`` and the SDK; value, variant, reason and error code
must be equal. Generated definitions stay inside the JsonLogic both
implementations agree on (see ``docs/flags.md``, "Compatibility with vendor SDKs").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flags import _vendor

flagd_core = pytest.importorskip(
    "openfeature.contrib.tools.flagd.core", reason="openfeature-provider-flagd not installed"
)
pytest.importorskip("openfeature.contrib.provider.flagd", reason="openfeature-provider-flagd")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

from cognitionos.errors import ConfigurationError  # noqa: E402
from cognitionos.flags import FlagEngine  # noqa: E402
from cognitionos.integrations.openfeature import CognitionProvider  # noqa: E402

pytestmark = pytest.mark.peers

VENDOR = "flagd"
EXAMPLES = 800


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    yield
    _vendor.write_tally()


_DEFAULTS = {"boolean": False, "string": "zz", "integer": -1, "float": -1.5, "object": {}}


def _kind(variants: dict[str, Any]) -> str:
    values = list(variants.values())
    if all(type(v) is bool for v in values):
        return "boolean"
    if all(type(v) is str for v in values):
        return "string"
    if all(type(v) is int for v in values):
        return "integer"
    if all(type(v) in (int, float) for v in values):
        return "float"
    return "object"


def _outcome(details: Any) -> tuple[Any, ...]:
    reason = getattr(details.reason, "value", details.reason)
    code = getattr(details.error_code, "value", details.error_code)
    value = details.value
    if type(value) is float and value.is_integer():
        value = int(value)
    return (value, details.variant, reason, code)


def sdk_resolve(doc: dict[str, Any], key: str, ctx: EvaluationContext) -> tuple[Any, ...]:
    """Resolve through the flagd SDK's evaluator, mapping errors as the OpenFeature client does."""
    core = flagd_core.FlagdCore()
    core.set_flags(json.dumps(doc))
    kind = _kind(doc["flags"][key]["variants"])
    default = _DEFAULTS[kind]
    try:
        details = getattr(core, f"resolve_{kind}_value")(key, default, ctx)
    except OpenFeatureError as exc:
        return (default, None, "ERROR", exc.error_code.value)
    except Exception:
        return (default, None, "ERROR", "GENERAL")
    return _outcome(details)


def our_resolve(doc: dict[str, Any], key: str, ctx: EvaluationContext) -> tuple[Any, ...]:
    """Resolve through CognitionProvider over FlagEngine.from_flagd."""
    try:
        provider = CognitionProvider(FlagEngine.from_flagd(doc))
    except ConfigurationError as exc:
        return ("rejected", str(exc))
    kind = _kind(doc["flags"][key]["variants"])
    details = getattr(provider, f"resolve_{kind}_details")(key, _DEFAULTS[kind], ctx)
    out = _outcome(details)
    if out[2] == "ERROR":
        return (out[0], None, out[2], out[3])
    return out


def compare(doc: dict[str, Any], ctx: EvaluationContext) -> None:
    for key in doc["flags"]:
        _vendor.check(VENDOR, our_resolve(doc, key, ctx), sdk_resolve(doc, key, ctx), (doc, ctx))


# --- fixed cases: each known divergence of issue 9, through both --------------------------------

_BOOL = {"on": True, "off": False}


def _flag(targeting: Any = None, **extra: Any) -> dict[str, Any]:
    flag: dict[str, Any] = {"state": "ENABLED", "variants": _BOOL, "defaultVariant": "off"}
    if targeting is not None:
        flag["targeting"] = targeting
    flag.update(extra)
    return {"flags": {"f": flag}}


def _if(cond: Any) -> dict[str, Any]:
    return {"if": [cond, "on", "off"]}


_ABC = {"a": "A", "b": "B", "c": "C"}
_FRACTIONAL = {"state": "ENABLED", "variants": _ABC, "defaultVariant": "c"}

FIXED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # fractional: current bucketing (CBOR-encoded key, (hash * total) >> 32)
    *(
        (
            f"fractional shorthand {u}",
            {"flags": {"f": {**_FRACTIONAL, "targeting": {"fractional": [["a", 50], ["b", 50]]}}}},
            {"targetingKey": u},
        )
        for u in ("user-1", "user-2", "user-3", "alice", "bob", "héllo", "42")
    ),
    *(
        (
            f"fractional by email {u}",
            {
                "flags": {
                    "f": {
                        **_FRACTIONAL,
                        "targeting": {
                            "fractional": [{"var": "email"}, ["a", 10], ["b", 30], ["c", 60]]
                        },
                    }
                }
            },
            {"targetingKey": "k", "email": u},
        )
        for u in ("a@x.io", "b@y.org", "c@z.net", "dave@example.com")
    ),
    (
        "fractional negative weight counts as zero",
        {"flags": {"f": {**_FRACTIONAL, "targeting": {"fractional": [["a", -5], ["b", 1]]}}}},
        {"targetingKey": "user-1"},
    ),
    (
        "fractional boolean bucket names",
        {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": {"true": "T", "false": "F"},
                    "defaultVariant": "false",
                    "targeting": {"fractional": [[True, 50], [False, 50]]},
                }
            }
        },
        {"targetingKey": "user-7"},
    ),
    (
        "fractional non-integer weight is an error, default variant",
        {"flags": {"f": {**_FRACTIONAL, "targeting": {"fractional": [["a", 0.5], ["b", 1]]}}}},
        {"targetingKey": "user-1"},
    ),
    (
        "fractional without targetingKey",
        {"flags": {"f": {**_FRACTIONAL, "targeting": {"fractional": [["a", 1], ["b", 1]]}}}},
        {},
    ),
    # sem_ver: partial versions and numbers
    ("sem_ver partial major", _flag(_if({"sem_ver": [{"var": "v"}, ">=", "2"]})), {"v": "2"}),
    ("sem_ver partial minor", _flag(_if({"sem_ver": [{"var": "v"}, "=", "1.2"]})), {"v": "1.2.0"}),
    ("sem_ver numeric input", _flag(_if({"sem_ver": [{"var": "v"}, ">", "1.1"]})), {"v": 1.2}),
    ("sem_ver integer input", _flag(_if({"sem_ver": [{"var": "v"}, "^", "3.1.0"]})), {"v": 3}),
    ("sem_ver v prefix", _flag(_if({"sem_ver": [{"var": "v"}, "~", "v1.2.9"]})), {"v": "V1.2.0"}),
    # an operator error yields null: the default variant, reason DEFAULT
    (
        "sem_ver invalid operator",
        {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": _BOOL,
                    "defaultVariant": "off",
                    "targeting": {"sem_ver": [{"var": "v"}, "=>", "1.0.0"]},
                }
            }
        },
        {"v": "1.0.0"},
    ),
    ("sem_ver invalid version", _flag({"sem_ver": [{"var": "v"}, "=", "1.0.0"]}), {"v": "junk"}),
    ("starts_with non-string", _flag({"starts_with": [{"var": "n"}, "1"]}), {"n": 12}),
    # no default variant: the caller's default with reason DEFAULT
    (
        "no default variant, no targeting",
        {"flags": {"f": {"state": "ENABLED", "variants": _BOOL}}},
        {},
    ),
    (
        "null default variant, targeting null",
        {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": _BOOL,
                    "defaultVariant": None,
                    "targeting": {"if": [{"var": "x"}, "on", None]},
                }
            }
        },
        {},
    ),
    # relational operators in targeting
    *(
        (f"relational {op} {a}", _flag(_if({op: [{"var": "age"}, 18]})), {"age": a})
        for op in (">", "<", ">=", "<=")
        for a in (17, 18, 19, "18", 18.5)
    ),
    ("between", _flag(_if({"<": [10, {"var": "age"}, 20]})), {"age": 15}),
    ("between inclusive", _flag(_if({"<=": [10, {"var": "age"}, 20]})), {"age": 20}),
    # disabled flags
    ("disabled", _flag(_if(True), state="DISABLED"), {}),
    # a boolean default variant names "true"/"false"; an empty one means none
    (
        "boolean defaultVariant",
        {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": {"true": "T", "false": "F"},
                    "defaultVariant": False,
                }
            }
        },
        {},
    ),
    (
        "empty defaultVariant",
        {"flags": {"f": {"state": "ENABLED", "variants": _ABC, "defaultVariant": ""}}},
        {},
    ),
    # shared evaluators
    *(
        (
            f"$ref {tier}",
            {
                **_flag({"if": [{"$ref": "is_gold"}, "on", "off"]}),
                "$evaluators": {"is_gold": {"in": [{"var": "tier"}, ["gold", "platinum"]]}},
            },
            {"tier": tier},
        )
        for tier in ("gold", "silver")
    ),
    # a targeting result that is not a variant is an error
    ("unknown variant", _flag({"if": [True, "nope", "off"]}), {}),
]


@pytest.mark.parametrize(("doc", "attrs"), [c[1:] for c in FIXED], ids=[c[0] for c in FIXED])
def test_fixed_cases_match_the_flagd_sdk(doc: dict[str, Any], attrs: dict[str, Any]) -> None:
    attrs = dict(attrs)
    ctx = EvaluationContext(attrs.pop("targetingKey", None), attrs)
    compare(doc, ctx)


def test_file_resolver_reads_the_same_file(tmp_path: Path) -> None:
    """The SDK's in-process file resolver, end to end, agrees with FlagdCore (and so with us)."""
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    doc = {
        "flags": {
            "color": {**_FRACTIONAL, "targeting": {"fractional": [["a", 1], ["b", 1], ["c", 1]]}},
            "gate": _flag(_if({">=": [{"var": "age"}, 18]}))["flags"]["f"],
            "off": {"state": "DISABLED", "variants": _BOOL, "defaultVariant": "on"},
        }
    }
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(doc), "utf-8")
    provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path))
    provider.initialize(EvaluationContext())
    try:
        ours = CognitionProvider(FlagEngine.from_flagd(doc))
        for user in ("u1", "u2", "u3", "u4"):
            ctx = EvaluationContext(user, {"age": 20 if user < "u3" else 10})
            a = ours.resolve_string_details("color", "zz", ctx)
            b = provider.resolve_string_details("color", "zz", ctx)
            assert (a.value, a.variant, a.reason) == (b.value, b.variant, b.reason)
            a2 = ours.resolve_boolean_details("gate", False, ctx)
            b2 = provider.resolve_boolean_details("gate", False, ctx)
            assert (a2.value, a2.variant, a2.reason) == (b2.value, b2.variant, b2.reason)
        a3 = ours.resolve_boolean_details("off", False, EvaluationContext("u1"))
        b3 = provider.resolve_boolean_details("off", False, EvaluationContext("u1"))
        assert (a3.value, a3.reason) == (b3.value, b3.reason) == (False, "DISABLED")
    finally:
        provider.shutdown()


# --- generated definitions and contexts ----------------------------------------------------------

ATTRS = ["email", "age", "version", "tier"]
strings = st.sampled_from(["gold", "silver", "a@x.io", "b@y.org", "abc", "x"])
numbers = st.integers(-3, 40) | st.sampled_from([0.5, 18.5, 2.0])
versions = st.sampled_from(
    ["1", "1.2", "1.2.3", "v2.0.0", "2.0.0-rc.1", "1.10.0", "junk", 1, 2, 1.5, 3.0]
)


def _var(name: str) -> dict[str, Any]:
    return {"var": name}


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> Any:
    kind = draw(
        st.sampled_from(
            ["eq", "ne", "rel", "between", "in_list", "in_str", "starts", "ends", "semver"]
            + ["strict", "missing", "substr", "flag_key", "var_default", "truthy"]
            + (["and", "or", "not"] if depth < 2 else [])
        )
    )
    if kind in ("eq", "ne"):
        attr = draw(st.sampled_from(["tier", "age"]))
        lit = draw(strings if attr == "tier" else numbers)
        return {"==" if kind == "eq" else "!=": [_var(attr), lit]}
    if kind == "rel":
        op = draw(st.sampled_from([">", "<", ">=", "<="]))
        return {op: [_var("age"), draw(numbers)]}
    if kind == "between":
        lo, hi = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        return {op: [lo, _var("age"), hi] if op in ("<", "<=") else [hi, _var("age"), lo]}
    if kind == "in_list":
        return {"in": [_var("tier"), draw(st.lists(strings, max_size=3))]}
    if kind == "in_str":
        return {"in": [draw(st.sampled_from(["@x", "y.", "a"])), _var("email")]}
    if kind in ("starts", "ends"):
        op = "starts_with" if kind == "starts" else "ends_with"
        return {op: [_var(draw(st.sampled_from(["email", "age"]))), draw(strings)]}
    if kind == "semver":
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~", "=>"]))
        return {"sem_ver": [_var("version"), op, draw(versions)]}
    if kind == "strict":
        return {draw(st.sampled_from(["===", "!=="])): [_var("tier"), draw(strings)]}
    if kind == "missing":
        keys = draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3))
        return {"!": [{"missing": keys}]}
    if kind == "substr":
        start = draw(st.integers(-4, 4))
        return {
            "==": [{"substr": [_var("email"), start, 2]}, draw(st.sampled_from(["a@", "io", "rg"]))]
        }
    if kind == "flag_key":
        return {"==": [_var("$flagd.flagKey"), draw(st.sampled_from(["f", "g"]))]}
    if kind == "var_default":
        return {"==": [{"var": ["tier", "silver"]}, draw(strings)]}
    if kind == "truthy":
        return {"!!": [_var(draw(st.sampled_from(ATTRS)))]}
    parts = draw(st.lists(conditions(depth + 1), min_size=1, max_size=3))
    if kind == "not":
        return {"!": [parts[0]]}
    return {kind: parts}


@st.composite
def fractional(draw: st.DrawFn, names: list[Any]) -> Any:
    buckets = []
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)):
        weight = draw(st.integers(-10, 100) | st.none())
        buckets.append([name] if weight is None else [name, weight])
    head = draw(
        st.sampled_from(
            [
                None,
                _var("email"),
                _var("targetingKey"),
                _var("age"),
                "fixed-key",
                {"cat": ["p-", _var("tier")]},
            ]
        )
    )
    return {"fractional": buckets if head is None else [head, *buckets]}


@st.composite
def flags(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "boolean", "boolean_names", "integer"]))
    if kind == "string":
        variants: dict[str, Any] = {"a": "A", "b": "B", "c": "C"}
    elif kind == "boolean":
        variants = {"on": True, "off": False}
    elif kind == "boolean_names":
        variants = {"true": "yes", "false": "no"}
    else:
        variants = {"one": 1, "two": 2, "ten": 10}
    names: list[Any] = list(variants)
    picks: list[Any] = [*names, None]
    if kind == "boolean_names":
        picks += [True, False]
    flag: dict[str, Any] = {"state": draw(st.sampled_from(["ENABLED"] * 5 + ["DISABLED"]))}
    flag["variants"] = variants
    default = draw(st.sampled_from([*names, None, "absent"]))
    if default != "absent":
        flag["defaultVariant"] = default
    shape = draw(st.sampled_from(["none", "if", "if", "fractional", "if_fractional", "bool"]))
    if shape == "if":
        flag["targeting"] = {
            "if": [draw(conditions()), draw(st.sampled_from(picks)), draw(st.sampled_from(picks))]
        }
    elif shape == "fractional":
        bucket_names = [*names, True, False] if kind == "boolean_names" else names
        flag["targeting"] = draw(fractional(bucket_names))
    elif shape == "if_fractional":
        flag["targeting"] = {
            "if": [draw(conditions()), draw(fractional(names)), draw(st.sampled_from(picks))]
        }
    elif shape == "bool" and kind == "boolean_names":
        flag["targeting"] = draw(conditions())
    return flag


@st.composite
def contexts(draw: st.DrawFn) -> EvaluationContext:
    attrs: dict[str, Any] = {}
    if draw(st.booleans()):
        attrs["email"] = draw(strings)
    if draw(st.booleans()):
        attrs["age"] = draw(numbers)
    if draw(st.booleans()):
        attrs["version"] = draw(versions)
    if draw(st.booleans()):
        attrs["tier"] = draw(strings)
    key = draw(st.none() | st.sampled_from(["user-1", "user-2", "u3", "alice", "bob"]))
    return EvaluationContext(key, attrs)


#: (JsonLogic, data, JavaScript answer): json-logic-js semantics, which we keep, where the
#: SDK's JsonLogic library (panzi-json-logic) answers otherwise
DOCUMENTED_DIFFERENCES: list[tuple[dict[str, Any], dict[str, Any], Any]] = [
    # null == 0 is false in JS; the library converts null to 0 first
    ({"==": [{"var": "age"}, 0]}, {}, False),
    ({"!=": [{"var": "age"}, 0]}, {}, True),
    # a string compared with null: JS compares numbers (0 < 18), the library the text "null"
    ({"<": [{"var": "age"}, "18"]}, {}, True),
    # Number("") is 0 in JS, NaN in the library
    ({"<=": ["", 0]}, {}, True),
]


@pytest.mark.parametrize(("logic", "data", "js_answer"), DOCUMENTED_DIFFERENCES)
def test_documented_differences(
    logic: dict[str, Any], data: dict[str, Any], js_answer: Any
) -> None:
    from json_logic import jsonLogic

    from cognitionos.flags._flagd import compile_json_logic

    assert compile_json_logic(logic)(data) == js_answer
    assert jsonLogic(logic, data) != js_answer


def _documented_difference(targeting: Any, attrs: dict[str, Any]) -> bool:
    """Whether the example compares a missing attribute with a number by == or != ."""
    if isinstance(targeting, list):
        return any(_documented_difference(t, attrs) for t in targeting)
    if not isinstance(targeting, dict):
        return False
    for op, args in targeting.items():
        if (
            op in ("==", "!=")
            and isinstance(args, list)
            and isinstance(args[0], dict)
            and isinstance(args[0].get("var"), str)
            and args[0]["var"] not in attrs
            and isinstance(args[1], (int, float))
        ):
            return True
        if _documented_difference(args, attrs):
            return True
    return False


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(flag=flags(), ctx=contexts())
def test_generated_flags_match_the_flagd_sdk(flag: dict[str, Any], ctx: EvaluationContext) -> None:
    if _documented_difference(flag.get("targeting"), dict(ctx.attributes)):
        _vendor.skip_documented(VENDOR)
        return
    compare({"flags": {"f": flag}}, ctx)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(value=json_values)
def test_fractional_keys_encode_like_the_sdk(value: Any) -> None:
    """Our CBOR encoding of fractional keys is byte-for-byte the SDK's (cbor2, canonical)."""
    import cbor2

    from cognitionos.flags._flagd import _cbor

    ops = pytest.importorskip("openfeature.contrib.tools.flagd.core.targeting.custom_ops")
    ours = _cbor(value)
    theirs = cbor2.dumps(ops.normalize_numbers(value), canonical=True)
    _vendor.check("flagd-cbor", ours, theirs, value)
