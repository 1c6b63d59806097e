"""flagd flag definitions through FlagEngine.from_flagd (JsonLogic targeting)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.flags import ErrorCode, FlagEngine, Reason
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


def _cbor_text(text: str) -> bytes:
    # RFC 8949: major type 3 (text), the length in the head (inline under 24, else one byte)
    raw = text.encode("utf-8")
    head = bytes([0x60 | len(raw)]) if len(raw) < 24 else bytes([0x78, len(raw)])
    return head + raw


def test_fractional_buckets_like_flagd() -> None:
    # flagd today: MurmurHash3 of the CBOR-encoded key, bucket = (hash * total) >> 32
    rule = {"fractional": [{"var": "key"}, ["a", 25], ["b", 75]]}
    run = compile_json_logic(rule)
    for i in range(300):
        key = f"user-{i}"
        bucket = (murmur3_32(_cbor_text(key)) * 100) >> 32
        assert run({"key": key}) == ("a" if bucket < 25 else "b")
    counts = Counter(run({"key": f"k{i}"}) for i in range(4000))
    assert 800 < counts["a"] < 1200


def test_legacy_fractional_buckets_like_older_flagd() -> None:
    rule = {"fractional": [{"var": "key"}, ["a", 25], ["b", 75]]}
    run = compile_json_logic(rule, fractional="legacy")
    for i in range(300):
        key = f"user-{i}"
        h = murmur3_32(key)
        signed = h - 2**32 if h >= 2**31 else h
        bucket = abs(signed) / (2**31 - 1) * 100  # older flagd: |int32 hash| / MaxInt32
        assert run({"key": key}) == ("a" if bucket < 25 else "b")
    with pytest.raises(ConfigurationError, match="fractional must be one of"):
        compile_json_logic(rule, fractional="v3")


def test_engine_selects_the_fractional_bucketing() -> None:
    doc = {
        "flags": {
            "split": {
                "variants": {"x": "X", "y": "Y"},
                "defaultVariant": "x",
                "targeting": {"fractional": [{"var": "key"}, ["x", 50], ["y", 50]]},
            }
        }
    }
    current, legacy = FlagEngine.from_flagd(doc), FlagEngine.from_flagd(doc, fractional="legacy")
    differ = 0
    for i in range(200):
        key = f"user-{i}"
        cbor_bucket = (murmur3_32(_cbor_text(key)) * 100) >> 32
        assert current.evaluate("split", {"key": key}).variant == ("x" if cbor_bucket < 50 else "y")
        h = murmur3_32(key)
        old_bucket = abs(h - 2**32 if h >= 2**31 else h) / (2**31 - 1) * 100
        assert legacy.evaluate("split", {"key": key}).variant == ("x" if old_bucket < 50 else "y")
        differ += (cbor_bucket < 50) != (old_bucket < 50)
    assert differ > 0  # the two bucketings really are different


def test_fractional_weights_and_bucket_names() -> None:
    run = compile_json_logic
    # a negative weight counts as 0: that bucket never wins
    assert {run({"fractional": [f"k{i}", ["a", -5], ["b", 1]]})({}) for i in range(50)} == {"b"}
    # non-integer weights, an empty bucket and a zero total are operator errors: null
    assert run({"fractional": ["k", ["a", 0.5], ["b", 1]]})({}) is None
    assert run({"fractional": ["k", [], ["b", 1]]})({}) is None
    assert run({"fractional": ["k", ["a", 0], ["b", 0]]})({}) is None
    # bucket names may be booleans; a boolean result names the variant "true"/"false"
    engine = _engine(
        f={
            "variants": {"true": "T", "false": "F"},
            "defaultVariant": "false",
            "targeting": {"fractional": [{"var": "key"}, [True, 1], [False, 1]]},
        }
    )
    for i in range(40):
        key = f"user-{i}"
        bucket = (murmur3_32(_cbor_text(key)) * 2) >> 32
        ev = engine.evaluate("f", {"key": key})
        assert (ev.variant, ev.reason) == (
            "true" if bucket < 1 else "false",
            Reason.TARGETING_MATCH,
        )


def test_fractional_defaults_to_flag_key_and_targeting_key() -> None:
    engine = _engine(
        split={
            "variants": {"x": "X", "y": "Y"},
            "defaultVariant": "x",
            "targeting": {"fractional": [["x", 1], ["y", 1]]},
        }
    )
    # the key is the CBOR array [flagKey, targetingKey]: head 0x82, then both texts
    bucket = (murmur3_32(b"\x82" + _cbor_text("split") + _cbor_text("tk-1")) * 2) >> 32
    assert engine.evaluate("split", {"targetingKey": "tk-1"}).variant == "xy"[bucket]
    # no targeting key: fractional yields null, so the default variant
    assert engine.evaluate("split", {}).reason == Reason.DEFAULT


def test_sem_ver_reads_partial_versions_and_numbers() -> None:
    def sem_ver(left: Any, op: str, right: Any) -> Any:
        return compile_json_logic({"sem_ver": [left, op, right]})({})

    assert sem_ver("1", "=", "1.0.0") is True
    assert sem_ver("1.2", "=", "1.2.0") is True
    assert sem_ver("1.2-rc.1", "<", "1.2.0") is True
    assert sem_ver(1.2, ">", "1.1.9") is True
    assert sem_ver(3, "^", "3.4.0") is True
    assert sem_ver("V2", ">=", "v2.0.0") is True
    # errors yield null (so the default variant), not false
    assert sem_ver("junk", "=", "1.0.0") is None
    assert sem_ver("1.0.0", "=>", "1.0.0") is None
    assert sem_ver(True, "=", "1.0.0") is None
    assert sem_ver(" 1.0.0", "=", "1.0.0") is None


def test_operator_errors_fall_back_to_the_default_variant() -> None:
    engine = _engine(
        f={
            "variants": {"true": "yes", "false": "no", "on": "on"},
            "defaultVariant": "on",
            "targeting": {"sem_ver": [{"var": "v"}, "=", "1.0.0"]},
        },
        g={
            "variants": {"true": "yes", "false": "no", "on": "on"},
            "defaultVariant": "on",
            "targeting": {"starts_with": [{"var": "n"}, "1"]},
        },
    )
    assert engine.evaluate("f", {"v": "1.0.0"}).variant == "true"
    assert engine.evaluate("f", {"v": "2.0.0"}).variant == "false"
    for key, attrs in (("f", {"v": "junk"}), ("g", {"n": 12})):
        ev = engine.evaluate(key, attrs)
        assert (ev.variant, ev.reason) == ("on", Reason.DEFAULT)


def test_a_result_naming_no_variant_is_an_error() -> None:
    engine = _engine(
        f={
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"var": "x"}, "nope", {"var": "y"}]},
        }
    )
    for attrs in ({"x": 1}, {"y": [1]}, {"y": ""}):
        ev = engine.evaluate("f", attrs, default=False)
        assert (ev.value, ev.reason, ev.error_code) == (False, Reason.ERROR, ErrorCode.GENERAL)
    assert engine.evaluate("f", {}).reason == Reason.DEFAULT


def test_a_flag_without_default_variant_serves_the_callers_default() -> None:
    engine = _engine(
        plain={"state": "ENABLED", "variants": {"on": True, "off": False}},
        targeted={
            "variants": {"on": True, "off": False},
            "targeting": {"if": [{"var": "x"}, "on", None]},
        },
    )
    for key in ("plain", "targeted"):
        ev = engine.evaluate(key, {}, default=True)
        assert (ev.value, ev.variant, ev.reason) == (True, None, Reason.DEFAULT)


def test_relational_operators_in_targeting() -> None:
    cases = [
        ({">": [{"var": "age"}, 18]}, {"age": 19}, "on"),
        ({">": [{"var": "age"}, 18]}, {"age": "19"}, "on"),
        ({">=": [{"var": "age"}, 18]}, {"age": 18}, "on"),
        ({"<": [{"var": "age"}, 18]}, {"age": 18.5}, "off"),
        ({"<=": [{"var": "age"}, 18]}, {"age": 18}, "on"),
        ({"<": [10, {"var": "age"}, 20]}, {"age": 20}, "off"),
        ({"<=": [10, {"var": "age"}, 20]}, {"age": 20}, "on"),
        # three operands chain for > and >= too: 30 > 25 > 40 is false
        ({">": [30, {"var": "age"}, 40]}, {"age": 25}, "off"),
        ({">=": [30, {"var": "age"}, 20]}, {"age": 25}, "on"),
    ]
    for cond, attrs, expected in cases:
        engine = _engine(
            f={
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {"if": [cond, "on", "off"]},
            }
        )
        assert engine.evaluate("f", attrs).variant == expected, (cond, attrs)


def test_disabled_true_means_a_disabled_flag() -> None:
    engine = _engine(
        f={"disabled": True, "variants": {"on": True, "off": False}, "defaultVariant": "on"}
    )
    ev = engine.evaluate("f", {}, default=False)
    assert (ev.value, ev.variant, ev.reason) == (False, None, Reason.DISABLED)


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
    # '' as the chosen result means "no variant": null, so the default variant
    assert translate_context_evaluator("!customer ? 'internal' : ''") == {
        "if": [{"!": [{"var": "customer"}]}, "internal", None]
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


def test_boolean_and_empty_default_variants() -> None:
    engine = _engine(
        b={"variants": {"true": "T", "false": "F"}, "defaultVariant": False},
        e={"variants": {"a": "A"}, "defaultVariant": ""},
    )
    ev = engine.evaluate("b", {})
    assert (ev.value, ev.variant, ev.reason) == ("F", "false", Reason.STATIC)
    ev = engine.evaluate("e", {}, default="zz")
    assert (ev.value, ev.variant, ev.reason) == ("zz", None, Reason.DEFAULT)
