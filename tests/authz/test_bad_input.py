"""Garbage in: only a decision or a ConfigurationError comes out (never RecursionError & co)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.authz import Enforcer, parse_model
from cognitionos.errors import CognitionError, ConfigurationError

MODEL = """[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = {matcher}
"""

TOKENS = [
    "r.sub",
    "p.sub",
    "r.obj",
    "p.obj",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "'a'",
    "1",
    "in",
    ",",
    "[",
    "]",
    "g(",
    "keyMatch(",
    "eval(",
    "+",
    "<",
    "true",
    "r.sub.x",
    ".",
    "#",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_generated_matchers(matcher: str) -> None:
    try:
        e = Enforcer(MODEL.format(matcher=matcher), "p, alice, a, read\ng, bob, alice\n")
    except ConfigurationError:
        return
    for request in (("alice", "a", "read"), ("bob", "x", "write"), ({"x": 1}, "a", "read")):
        try:
            assert isinstance(e.enforce(*request), bool)
        except CognitionError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_model_text(text: str) -> None:
    try:
        parse_model(text)
    except ConfigurationError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_policy_text(text: str) -> None:
    try:
        Enforcer(MODEL.format(matcher="r.sub == p.sub"), text)
    except ConfigurationError:
        pass


@pytest.mark.parametrize("depth", [63, 500, 5000])
def test_deep_nesting_is_refused_not_a_crash(depth: int) -> None:
    matcher = "(" * depth + "r.sub == p.sub" + ")" * depth
    if depth < 64:
        assert Enforcer(MODEL.format(matcher=matcher), "p, a, b, c").enforce("a", "b", "c")
        return
    with pytest.raises(ConfigurationError, match="nesting deeper than 64"):
        Enforcer(MODEL.format(matcher=matcher))
    with pytest.raises(ConfigurationError, match="nesting deeper than 64"):
        Enforcer(MODEL.format(matcher="!" * depth + "r.sub == p.sub"))


def test_hostile_eval_rule_is_refused_at_enforce() -> None:
    e = Enforcer(
        MODEL.format(matcher="eval(p.sub)"), [("p", "(" * 100 + "1" + ")" * 100, "o", "a")]
    )
    with pytest.raises(ConfigurationError, match="nesting deeper"):
        e.enforce("s", "o", "a")
    e2 = Enforcer(MODEL.format(matcher="eval(p.sub)"), [("p", "__import__('os')", "o", "a")])
    with pytest.raises(ConfigurationError, match="unknown function '__import__'"):
        e2.enforce("s", "o", "a")


@pytest.mark.parametrize(
    "matcher", ["g(r.sub)", "g()", "keyMatch(r.obj)", "keyMatch(r.obj, p.obj, 1)"]
)
def test_a_call_with_the_wrong_number_of_arguments_is_refused_when_compiled(matcher):
    # (a TypeError on every request before: hypothesis found "g(" with one argument)
    name = matcher.split("(")[0]
    with pytest.raises(ConfigurationError, match=rf"{name}\(\) cannot take"):
        Enforcer(MODEL.format(matcher=matcher), "p, alice, a, read\ng, bob, alice\n")
