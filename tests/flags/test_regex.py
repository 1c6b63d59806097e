"""Regular expressions in conditions run in linear time (RE2) and reject what RE2 cannot run."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.flags import ErrorCode, FlagDefinition, FlagEngine, Reason, Rule
from cognitionos.flags._conditions import compile_condition

#: catastrophic for a backtracking engine: 27 characters took ~28 s with Python's re
PATHOLOGICAL = "(a+)+$"
HUGE = "a" * 100_000 + "!"


def _unleash(constraint: dict[str, Any]) -> FlagEngine:
    return FlagEngine.from_unleash(
        {
            "features": [
                {
                    "name": "f",
                    "enabled": True,
                    "strategies": [{"name": "default", "constraints": [constraint]}],
                }
            ]
        }
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("op", ["$regex", "$regexi", "$matches", "$matchesi"])
def test_pathological_pattern_on_100_kb_value_completes(op: str) -> None:
    pred = compile_condition({"ua": {op: PATHOLOGICAL}})
    assert pred({"ua": HUGE}) is False
    assert pred({"ua": "a" * 100_000}) is True


@pytest.mark.timeout(60)
def test_pathological_pattern_through_the_engine() -> None:
    engine = FlagEngine(
        [
            FlagDefinition(
                key="f",
                default_value=False,
                rules=[Rule(condition={"ua": {"$regex": PATHOLOGICAL}}, value=True)],
            )
        ]
    )
    ev = engine.evaluate("f", {"ua": HUGE}, default=False)
    assert (ev.value, ev.reason) == (False, "DEFAULT")


@pytest.mark.timeout(60)
def test_pathological_unleash_regex_constraint_completes() -> None:
    engine = _unleash({"contextName": "userId", "operator": "REGEX", "value": PATHOLOGICAL})
    assert engine.is_on("f", {"userId": HUGE}) is False
    assert engine.is_on("f", {"userId": "aaa"}) is True


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("^(a)\\1$", "backreferences"),
        ("^(?<x>a)\\k<x>$", "backreferences"),
        ("foo(?=bar)", "lookaround"),
        ("foo(?!bar)", "lookaround"),
        ("(?<=foo)bar", "lookaround"),
        ("(?<!foo)bar", "lookaround"),
        ("(unclosed", "invalid regular expression"),
    ],
)
def test_patterns_re2_cannot_run_are_rejected_by_name(pattern: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as info:
        compile_condition({"s": {"$regex": pattern}}, where="flag 'f' rules[0].condition")
    assert "flag 'f' rules[0].condition: s.$regex" in str(info.value)
    assert repr(pattern) in str(info.value)


def test_lenient_loading_never_matches_a_malformed_pattern() -> None:
    # the GrowthBook spec's behaviour for a pattern JavaScript rejects too
    assert compile_condition({"s": {"$regex": "(unclosed"}}, strict=False)({"s": "("}) is False


@pytest.mark.parametrize("pattern", ["^(a)\\1$", "foo(?=bar)"])
def test_lenient_loading_still_refuses_a_pattern_only_backtracking_can_run(pattern: str) -> None:
    # JavaScript would run it: answering "no match" would silently differ from the SDK
    with pytest.raises(ConfigurationError, match="RE2"):
        compile_condition({"s": {"$regex": pattern}}, strict=False)


def test_strict_growthbook_import_names_the_unsupported_pattern() -> None:
    payload = {
        "features": {
            "f": {"defaultValue": 1, "rules": [{"condition": {"s": {"$regex": "a(?=b)"}}}]}
        }
    }
    payload["features"]["f"]["rules"][0]["force"] = 2
    with pytest.raises(ConfigurationError, match="lookaround"):
        FlagEngine.from_growthbook(payload, strict=True)


@pytest.mark.parametrize(
    "load",
    [
        lambda p: _unleash({"contextName": "userId", "operator": "REGEX", "value": p}),
        lambda p: FlagEngine.from_growthbook(
            {
                "features": {
                    "f": {
                        "defaultValue": 0,
                        "rules": [{"condition": {"userId": {"$regex": p}}, "force": 1}],
                    }
                }
            }
        ),
    ],
    ids=["unleash", "growthbook"],
)
def test_vendor_flag_needing_backtracking_evaluates_to_parse_error(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = load("^(a)\\1$")
    ev = engine.evaluate("f", {"userId": "aa"}, default="d")
    assert (ev.value, ev.reason, ev.error_code) == ("d", Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert "backreferences" in (ev.error_message or "")
    assert engine.counters.snapshot()["invalid_flags"] == 1
    assert "backreferences" in caplog.text


@pytest.mark.parametrize(
    ("condition", "attrs", "expected"),
    [
        # JavaScript escapes RE2 lacks are accepted
        ({"s": {"$regex": "^caf\\u00e9$"}}, {"s": "café"}, True),
        ({"s": {"$regex": "^a\\cJb$"}}, {"s": "a\nb"}, True),
        ({"s": {"$regex": "^a\\\\u0041$"}}, {"s": "a\\u0041"}, True),
        # $ only at the very end, as in JavaScript (Python's re also matched before a final \n)
        ({"s": {"$regex": "abc$"}}, {"s": "abc\n"}, False),
        # \d and \w are ASCII, as in JavaScript
        ({"s": {"$regex": "^\\d+$"}}, {"s": "١٢٣"}, False),
        ({"s": {"$regex": "^\\w+$"}}, {"s": "é"}, False),
        ({"s": {"$regexi": "^MOBILE"}}, {"s": "mobile safari"}, True),
        ({"s": {"$matchesi": "^[[:alpha:]]+$"}}, {"s": "AbC"}, True),
        # a lone surrogate (valid JSON) neither raises nor matches a letter
        ({"s": {"$regex": "a"}}, {"s": "\ud800"}, False),
        ({"s": {"$regex": "a"}}, {"s": "\ud800a"}, True),
        # $regex coerces like RegExp.test, $matches takes strings only
        ({"n": {"$regex": "^12"}}, {"n": 123}, True),
        ({"n": {"$matches": "^12"}}, {"n": 123}, False),
    ],
)
def test_dialect(condition: dict[str, Any], attrs: dict[str, Any], expected: bool) -> None:
    assert compile_condition(condition)(attrs) is expected


def test_re2_is_imported_only_when_a_pattern_is_compiled() -> None:
    code = (
        "import sys, json\n"
        "from cognitionos.flags import FlagEngine\n"
        "e = FlagEngine.from_growthbook({'features': {'f': {'defaultValue': 1, 'rules': "
        "[{'condition': {'c': 'NL'}, 'force': 2}]}}})\n"
        "before = 're2' in sys.modules\n"
        "e = FlagEngine.from_growthbook({'features': {'f': {'defaultValue': 1, 'rules': "
        "[{'condition': {'c': {'$regex': '^N'}}, 'force': 2}]}}})\n"
        "FlagEngine.from_growthbook({'features': {'g': {'defaultValue': 1, 'rules': "
        "[{'condition': {'c': {'$regex': '(unclosed'}}, 'force': 2}]}}}, strict=False)\n"
        "print(json.dumps([before, 're2' in sys.modules, e.evaluate('f', {'c': 'NL'}).value]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, True, 2]
    assert out.stderr == ""  # RE2's own error logging stays off
