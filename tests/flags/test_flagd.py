"""flagd flag definitions through FlagEngine.from_flagd (JsonLogic targeting)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.flags import FlagEngine, Reason
from cognitionos.flags._flagd import compile_json_logic, translate_context_evaluator
from cognitionos.hashing import murmur3_32


def _engine(**flags: Any) -> FlagEngine:
    return FlagEngine.from_flagd({"flags": flags})


def test_static_flag_reports_its_default_variant() -> None:
    engine = _engine(
        color={"state": "ENABLED", "variants": {"r": "red", "b": "blue"}, "defaultVariant": "b"}
    )
    ev = engine.evaluate("color", {})
    assert (ev.value, ev.variant, ev.reason) == ("blue", "b", Reason.STATIC)


def test_targeting_match_default_and_disabled() -> None:
    engine = _engine(
        tier={
            "state": "ENABLED",
            "variants": {"gold": 3, "basic": 1},
            "defaultVariant": "basic",
            "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "max"]]}, "gold", None]},
        },
        off={"state": "DISABLED", "variants": {"on": True}, "defaultVariant": "on"},
    )
    hit = engine.evaluate("tier", {"plan": "max"})
    assert (hit.value, hit.variant, hit.reason) == (3, "gold", Reason.TARGETING_MATCH)
    miss = engine.evaluate("tier", {"plan": "free"})
    assert (miss.value, miss.variant, miss.reason) == (1, "basic", Reason.DEFAULT)
    off = engine.evaluate("off", {}, default=False)
    assert (off.value, off.reason) == (False, Reason.DISABLED)


def test_boolean_targeting_results_name_variants_true_and_false() -> None:
    engine = _engine(
        beta={
            "variants": {"true": "yes", "false": "no"},
            "defaultVariant": "false",
            "targeting": {">=": [{"var": "age"}, 18]},
        }
    )
    assert engine.evaluate("beta", {"age": 30}).value == "yes"
    assert engine.evaluate("beta", {"age": 12}).variant == "false"


def test_evaluators_refs_and_custom_operations() -> None:
    engine = FlagEngine.from_flagd(
        {
            "flags": {
                "staff": {
                    "variants": {"on": True, "off": False},
                    "defaultVariant": "off",
                    "targeting": {"if": [{"$ref": "is_staff"}, "on", None]},
                },
                "new-app": {
                    "variants": {"on": True, "off": False},
                    "defaultVariant": "off",
                    "targeting": {
                        "if": [{"sem_ver": [{"var": "version"}, ">=", "2.1.0"]}, "on", "off"]
                    },
                },
                "domain": {
                    "variants": {"in": 1, "out": 0},
                    "defaultVariant": "out",
                    "targeting": {
                        "if": [
                            {
                                "or": [
                                    {"starts_with": [{"var": "email"}, "admin@"]},
                                    {"ends_with": [{"var": "email"}, "@corp.example"]},
                                ]
                            },
                            "in",
                            None,
                        ]
                    },
                },
            },
            "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@corp.example"]}},
        }
    )
    assert engine.is_on("staff", {"email": "ann@corp.example"})
    assert not engine.is_on("staff", {"email": "ann@else.example"})
    assert engine.is_on("new-app", {"version": "2.1.0"})
    assert engine.is_on("new-app", {"version": "v2.3.0"})  # flagd accepts a leading v
    assert not engine.is_on("new-app", {"version": "2.1.0-rc.1"})
    assert not engine.is_on("new-app", {"version": "garbage"})
    assert engine.evaluate("domain", {"email": "admin@x.io"}).value == 1
    assert engine.evaluate("domain", {"email": "x@x.io"}).reason == Reason.DEFAULT


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("^", "1.9.0", "1.2.0", True),
        ("^", "2.0.0", "1.2.0", False),
        ("~", "1.2.9", "1.2.0", True),
        ("~", "1.3.0", "1.2.0", False),
        ("!=", "1.0.0", "1.0.1", True),
        ("=", "1.0.0+a", "1.0.0+b", True),
    ],
)
def test_sem_ver_operators(op: str, left: str, right: str, expected: bool) -> None:
    assert compile_json_logic({"sem_ver": [left, op, right]})({}) is expected


def test_fractional_buckets_like_flagd() -> None:
    rule = {"fractional": [{"var": "key"}, ["a", 25], ["b", 75]]}
    run = compile_json_logic(rule)
    for i in range(300):
        key = f"user-{i}"
        h = murmur3_32(key)
        signed = h - 2**32 if h >= 2**31 else h
        bucket = abs(signed) / (2**31 - 1) * 100  # flagd: |int32 hash| / MaxInt32
        assert run({"key": key}) == ("a" if bucket < 25 else "b")
    counts = Counter(run({"key": f"k{i}"}) for i in range(4000))
    assert 800 < counts["a"] < 1200


def test_fractional_defaults_to_flag_key_and_targeting_key() -> None:
    engine = _engine(
        split={
            "variants": {"x": "X", "y": "Y"},
            "defaultVariant": "x",
            "targeting": {"fractional": [["x", 1], ["y", 1]]},
        }
    )
    explicit = compile_json_logic({"fractional": ["split" + "tk-1", ["x", 1], ["y", 1]]})({})
    assert engine.evaluate("split", {"targetingKey": "tk-1"}).variant == explicit
    # no targeting key: fractional yields null, so the default variant
    assert engine.evaluate("split", {}).reason == Reason.DEFAULT


def test_json_logic_semantics() -> None:
    data = {"a": {"b": [10, 20]}, "s": "hello", "n": "5"}
    cases: list[tuple[Any, Any]] = [
        ({"var": "a.b.1"}, 20),
        ({"var": ["missing", "fallback"]}, "fallback"),
        ({"==": [{"var": "n"}, 5]}, True),  # loose equality
        ({"===": [{"var": "n"}, 5]}, False),
        ({"!": [[]]}, True),  # an empty array is falsy
        ({"<": [1, {"var": "n"}, 10]}, True),  # between
        ({"cat": ["x", 1, True]}, "x1true"),
        ({"substr": [{"var": "s"}, -3]}, "llo"),
        ({"in": ["ell", {"var": "s"}]}, True),
        ({"missing": ["s", "zz"]}, ["zz"]),
        ({"+": ["1", 2]}, 3),
        ({"some": [{"var": "a.b"}, {">": [{"var": ""}, 15]}]}, True),
        ({"or": [0, "", "x"]}, "x"),
    ]
    for expr, expected in cases:
        assert compile_json_logic(expr)(data) == expected, expr


def test_bad_definitions_are_rejected_at_load() -> None:
    def strict(**flags: Any) -> FlagEngine:
        return FlagEngine.from_flagd({"flags": flags}, strict=True)

    with pytest.raises(ConfigurationError, match="unknown JsonLogic operation"):
        strict(f={"variants": {"a": 1}, "defaultVariant": "a", "targeting": {"nope": [1]}})
    with pytest.raises(ConfigurationError, match="defaultVariant"):
        strict(f={"variants": {"a": 1}, "defaultVariant": "b"})
    with pytest.raises(ConfigurationError, match="unknown \\$ref"):
        strict(f={"variants": {"a": 1}, "defaultVariant": "a", "targeting": {"$ref": "x"}})


def test_openfeature_spec_test_flag_shape() -> None:
    engine = FlagEngine.from_flagd(
        {
            "zero": {
                "variants": {"zero": 0, "non-zero": 1},
                "defaultVariant": "zero",
                "contextEvaluator": "email == 'a@b.c' ? 'zero' : ''",
                "flagMetadata": {"owner": "growth"},
            }
        }
    )
    hit = engine.evaluate("zero", {"email": "a@b.c"}, default=9)
    assert (hit.value, hit.reason) == (0, Reason.TARGETING_MATCH)
    assert engine.evaluate("zero", {}, default=9).reason == Reason.DEFAULT
    assert engine.definitions.flags[0].metadata == {"owner": "growth"}


def test_context_evaluator_translation() -> None:
    assert translate_context_evaluator("!customer ? 'internal' : ''") == {
        "if": [{"!": [{"var": "customer"}]}, "internal", ""]
    }
    expr = translate_context_evaluator("a == 1 && (b != 'x' || c) ? 'y' : 'n'")
    run = compile_json_logic(expr)
    assert run({"a": 1, "b": "x", "c": True}) == "y"
    assert run({"a": 1, "b": "x", "c": False}) == "n"
    with pytest.raises(ConfigurationError):
        translate_context_evaluator("a ? 'b'")


def test_our_json_model_holds_flagd_targeting() -> None:
    exported = FlagEngine.from_flagd(
        {
            "flags": {
                "f": {
                    "variants": {"on": True, "off": False},
                    "defaultVariant": "off",
                    "targeting": {"if": [{"==": [{"var": "k"}, 1]}, "on", None]},
                }
            }
        }
    ).export()
    engine = FlagEngine.from_json(exported)
    ev = engine.evaluate("f", {"k": 1})
    assert (ev.value, ev.variant, ev.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert engine.evaluate("f", {"k": 2}).variant == "off"
