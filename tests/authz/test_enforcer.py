"""Behaviour of the enforcer, its parser and its functions, with hand-derived expectations."""

from __future__ import annotations

import pytest

from cognitionos.authz import (
    EnforceContext,
    Enforcer,
    glob_match,
    ip_match,
    key_match,
    key_match2,
    key_match3,
    key_match4,
    key_match5,
    parse_model,
    regex_match,
)
from cognitionos.errors import ConfigurationError

RBAC_DOMAINS = """
# tenants are domains
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj) \\
    && r.act == p.act
"""

POLICY = """
p, admin, t1, /flags/*, write
p, viewer, t1, /flags/:key, read
p, admin, t2, /flags/*, write

g, alice, admin, t1
g, admin, viewer, t1
g, bob, viewer, t1
g, bob, admin, t2
"""


def test_rbac_with_domains_decides_per_tenant() -> None:
    e = Enforcer(RBAC_DOMAINS, POLICY)
    assert e.enforce("alice", "t1", "/flags/x", "write")
    assert e.enforce("alice", "t1", "/flags/x", "read")  # admin inherits viewer in t1
    assert not e.enforce("alice", "t2", "/flags/x", "write")  # no role in t2
    assert not e.enforce("bob", "t1", "/flags/x", "write")
    assert e.enforce("bob", "t2", "/flags/a/b", "write")
    assert not e.enforce("bob", "t2", "/flags/a", "read")  # viewer only in t1
    assert e.enforce_ex("bob", "t1", "/flags/k", "read") == (
        True,
        ("viewer", "t1", "/flags/:key", "read"),
    )
    assert e.enforce_ex("bob", "t1", "/flags/k", "write") == (False, ())


def test_role_queries_and_implicit_permissions() -> None:
    e = Enforcer(RBAC_DOMAINS, POLICY)
    assert e.get_roles_for_user_in_domain("alice", "t1") == ["admin"]
    assert e.get_roles_for_user_in_domain("alice", "t2") == []
    assert e.get_implicit_roles_for_user("alice", "t1") == ["admin", "viewer"]
    assert e.get_users_for_role_in_domain("viewer", "t1") == ["admin", "bob"]
    assert e.get_implicit_permissions_for_user("alice", "t1") == [
        ("admin", "t1", "/flags/*", "write"),
        ("viewer", "t1", "/flags/:key", "read"),
    ]
    assert e.get_implicit_permissions_for_user("bob", "t2") == [
        ("admin", "t2", "/flags/*", "write")
    ]


def test_management_api_changes_decisions() -> None:
    e = Enforcer(RBAC_DOMAINS, POLICY)
    assert e.add_grouping_policy("carol", "admin", "t2")
    assert not e.add_grouping_policy("carol", "admin", "t2")  # already there
    assert e.enforce("carol", "t2", "/flags/x", "write")
    assert e.remove_grouping_policy(["carol", "admin", "t2"])
    assert not e.remove_grouping_policy("carol", "admin", "t2")
    assert not e.enforce("carol", "t2", "/flags/x", "write")
    assert e.add_policy("bob", "t1", "/flags/x", "write")
    assert e.enforce("bob", "t1", "/flags/x", "write")
    assert e.has_policy("bob", "t1", "/flags/x", "write")
    assert e.remove_policy("bob", "t1", "/flags/x", "write")
    assert not e.enforce("bob", "t1", "/flags/x", "write")
    with pytest.raises(ConfigurationError, match="4 fields"):
        e.add_policy("bob", "t1")


def test_csv_round_trip_and_quoting() -> None:
    model = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""
    e = Enforcer(model, 'p, alice, "data,1", read\n# a comment\np,   bob ,data2,"wr""ite"\n')
    assert e.get_policy() == [("alice", "data,1", "read"), ("bob", "data2", 'wr"ite')]
    assert e.enforce("alice", "data,1", "read")
    assert e.enforce("bob", "data2", 'wr"ite')
    again = Enforcer(model, e.to_csv())
    assert again.get_policy() == e.get_policy()


def test_from_files(tmp_path: pytest.TempPathFactory) -> None:
    model_path = tmp_path / "model.conf"  # type: ignore[operator]
    policy_path = tmp_path / "policy.csv"  # type: ignore[operator]
    model_path.write_text(RBAC_DOMAINS)
    policy_path.write_text(POLICY)
    e = Enforcer.from_files(model_path, policy_path)
    assert e.enforce("alice", "t1", "/flags/x", "write")
    with pytest.raises(ConfigurationError, match="cannot read model file"):
        Enforcer.from_files(tmp_path / "missing.conf")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[request_definition]\nr = sub\n", r"\[policy_definition\] is missing"),
        ("r = sub\n", "line 1: 'r = sub' is outside any section"),
        ("[request]\nr = sub\n", r"line 1: unknown section \[request\]"),
        ("[request_definition]\nr sub\n", r"\[request_definition\] line 2: expected 'key = value'"),
        ("[request_definition]\nx = sub\n", r"\[request_definition\] line 2: key 'x'"),
        ("[request_definition]\nr = sub, 1obj\n", "invalid field name '1obj'"),
    ],
)
def test_bad_model_names_section_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_model(text)


BASE = """[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
[policy_effect]
e = {effect}
[matchers]
m = {matcher}
"""


def model(matcher: str = "r.sub == p.sub", effect: str = "some(where (p.eft == allow))") -> str:
    return BASE.format(matcher=matcher, effect=effect)


@pytest.mark.parametrize(
    ("matcher", "message"),
    [
        ("r.sub == ", "unexpected 'end of expression'"),
        ("r.user == p.sub", "'r' has no field 'user'"),
        ("x.sub == p.sub", "unknown name 'x.sub'"),
        ("__import__('os').system('true')", "unexpected character '.'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("r.sub == p.sub; 1", "unexpected character ';'"),
        ("(r.sub == p.sub", r"expected '\)'"),
        ("r.sub.__class__ == p.sub", None),
    ],
)
def test_bad_matchers_are_refused_at_load(matcher: str, message: str | None) -> None:
    if message is None:
        # dunder attributes are just attribute names: a str has __class__, but it is never
        # equal to a policy string, and no code runs
        e = Enforcer(model(matcher), "p, alice, d, r")
        assert not e.enforce("alice", "d", "r")
        return
    with pytest.raises(ConfigurationError, match=r"\[matchers\] line 10"):
        Enforcer(model(matcher))
    with pytest.raises(ConfigurationError, match=message):
        Enforcer(model(matcher))


def test_unsupported_effect_names_the_section() -> None:
    with pytest.raises(ConfigurationError, match=r"\[policy_effect\] line 8: unsupported effect"):
        Enforcer(model(effect="some(where (p.eft == maybe))"))


def test_bad_policy_names_the_line() -> None:
    with pytest.raises(ConfigurationError, match="policy line 2: p rows have 3 fields"):
        Enforcer(model(), "p, a, b, c\np, a, b\n")
    with pytest.raises(ConfigurationError, match="policy line 1: unknown policy type 'q'"):
        Enforcer(model(), "q, a, b, c\n")
    with pytest.raises(ConfigurationError, match="policy row 1: every field must be a string"):
        Enforcer(model(), [("p", "a", 1, "c")])  # type: ignore[list-item]


def test_request_size_and_evaluation_errors() -> None:
    e = Enforcer(model("r.sub.Age > 18"), "p, a, b, c")
    with pytest.raises(ConfigurationError, match="request needs 3 values"):
        e.enforce("alice")
    with pytest.raises(ConfigurationError, match="has no attribute 'Age'"):
        e.enforce({"Name": "x"}, "b", "c")
    with pytest.raises(ConfigurationError, match="cannot compare 'x' > 18"):
        e.enforce({"Age": "x"}, "b", "c")
    assert e.enforce({"Age": 19}, "b", "c")


def test_matcher_language() -> None:
    e = Enforcer(
        model(
            "r.sub == p.sub && (r.obj in ('a', \"b\") || r.obj == p.obj + '!')"
            " && !(r.act == 'delete') && r.act != ''"
        ),
        "p, alice, x, read",
    )
    assert e.enforce("alice", "a", "read")
    assert e.enforce("alice", "x!", "read")
    assert not e.enforce("alice", "x", "read")
    assert not e.enforce("alice", "a", "delete")
    assert not e.enforce("bob", "a", "read")


def test_effects_with_hand_derived_decisions() -> None:
    rows = "p, alice, d, read, allow\np, alice, d, read, deny\np, bob, d, read, allow\n"
    base = BASE.replace("p = sub, obj, act", "p = sub, obj, act, eft")

    def build(effect: str) -> Enforcer:
        return Enforcer(
            base.format(matcher="r.sub == p.sub && r.obj == p.obj", effect=effect), rows
        )

    allow = build("some(where (p.eft == allow))")
    deny = build("!some(where (p.eft == deny))")
    both = build("some(where (p.eft == allow)) && !some(where (p.eft == deny))")
    assert allow.enforce("alice", "d", "read") and allow.enforce("bob", "d", "read")
    assert not deny.enforce("alice", "d", "read") and deny.enforce("bob", "d", "read")
    assert deny.enforce("carol", "d", "read")  # nothing denies carol
    assert not both.enforce("alice", "d", "read") and both.enforce("bob", "d", "read")
    assert not both.enforce("carol", "d", "read")  # nothing allows carol
    assert deny.enforce_ex("alice", "d", "read") == (False, ("alice", "d", "read", "deny"))


def test_priority_uses_the_lowest_priority_number_first() -> None:
    text = BASE.replace("p = sub, obj, act", "p = priority, sub, obj, act, eft").format(
        matcher="g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act",
        effect="priority(p.eft) || deny",
    )
    e = Enforcer(
        text,
        "p, 10, staff, d, read, allow\np, 1, alice, d, read, deny\n"
        "g, alice, staff\ng, bob, staff\n",
    )
    assert not e.enforce("alice", "d", "read")  # priority 1 (deny) comes before 10
    assert e.enforce("bob", "d", "read")
    assert e.get_policy()[0][0] == "1"
    with pytest.raises(ConfigurationError, match="priority 'x' is not an integer"):
        Enforcer(text, "p, x, a, d, read, allow")


def test_role_depth_limit_and_cycles() -> None:
    chain = "\n".join(f"g, r{i}, r{i + 1}" for i in range(12)) + "\ng, r12, r0\n"
    e = Enforcer(
        model("g(r.sub, p.sub) && r.obj == p.obj"), chain + "p, r12, d, x\n", max_role_depth=12
    )
    assert e.enforce("r0", "d", "x")  # 12 hops
    shallow = Enforcer(model("g(r.sub, p.sub) && r.obj == p.obj"), chain + "p, r12, d, x\n")
    assert not shallow.enforce("r0", "d", "x")  # beyond the default 10 hops
    assert shallow.enforce("r2", "d", "x")  # exactly 10 hops
    assert not shallow.enforce("nobody", "d", "x")


def test_enforce_context_uses_the_second_definitions() -> None:
    text = model("r.sub == p.sub") + "m2 = r2.obj == p2.obj\n"
    text = text.replace("p = sub, obj, act\n", "p = sub, obj, act\np2 = obj\n")
    text = text.replace("r = sub, obj, act\n", "r = sub, obj, act\nr2 = obj\n")
    text = text.replace(
        "e = some(where (p.eft == allow))\n",
        "e = some(where (p.eft == allow))\ne2 = some(where (p.eft == allow))\n",
    )
    e = Enforcer(text, "p, alice, x, y\np2, public\n")
    assert e.enforce("alice", "q", "q")
    assert e.enforce_with(EnforceContext.suffix("2"), "public") == (True, ("public",))
    assert e.enforce_with(EnforceContext.suffix("2"), "secret") == (False, ())


def test_custom_function() -> None:
    e = Enforcer(
        model("r.sub == p.sub && startsWith(r.obj, p.obj)"),
        "p, a, /x, r",
        functions={"startsWith": lambda a, b: str(a).startswith(str(b))},
    )
    assert e.enforce("a", "/x/y", "r")
    assert not e.enforce("a", "/y", "r")


# Expected values below follow the functions' definitions in Casbin's documentation.
@pytest.mark.parametrize(
    ("fn", "key", "pattern", "expected"),
    [
        (key_match, "/foo/bar", "/foo/*", True),
        (key_match, "/foo", "/foo/*", False),
        (key_match, "/foobar", "/foo*", True),
        (key_match2, "/foo/bar", "/foo/*", True),
        (key_match2, "/resource1", "/:resource", True),
        (key_match2, "/a/b", "/:resource", False),
        (key_match2, "/anything/at/all", "*", True),
        (key_match3, "/foo/bar", "/foo/{id}", True),
        (key_match3, "/foo/bar/baz", "/foo/{id}", False),
        (key_match4, "/parent/123/child/123", "/parent/{id}/child/{id}", True),
        (key_match4, "/parent/123/child/456", "/parent/{id}/child/{id}", False),
        (key_match3, "/parent/123/child/456", "/parent/{id}/child/{id}", True),
        (key_match5, "/foo/bar?status=1&type=2", "/foo/bar", True),
        (key_match5, "/parent/child1?status=1", "/parent/*", True),
        (key_match5, "/parent/child1/x?status=1", "/parent/{id}", False),
        (regex_match, "/topic/create", "/topic/create", True),
        (regex_match, "/x/topic/create", "/topic/create", True),  # search, as Go's MatchString
        (regex_match, "/x/topic/create", "^/topic/create", False),
        (glob_match, "/foo/bar", "/foo/*", True),
        (glob_match, "/foo/bar/baz", "/foo/*", False),
        (glob_match, "/", "/*1", False),  # Go's path.Match; pycasbin says True
        (glob_match, "/a/a", "/*1/a", False),
        (glob_match, "/prefix/x", "/prefix/[!y]", True),
        (glob_match, "/a/b", "/a[/]b", False),  # a class never matches '/'
        (glob_match, "x", "[", False),  # malformed pattern: no match
        (ip_match, "192.168.2.123", "192.168.2.0/24", True),
        (ip_match, "192.168.3.1", "192.168.2.0/24", False),
        (ip_match, "::1", "::1", True),
        (ip_match, "not-an-ip", "10.0.0.0/8", False),
        (ip_match, "10.0.0.1", "not-a-cidr", False),
    ],
)
def test_builtin_functions(fn: object, key: str, pattern: str, expected: bool) -> None:
    assert fn(key, pattern) is expected  # type: ignore[operator]


def test_regex_is_linear_time_re2() -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 answers at once.
    assert not regex_match("a" * 5000 + "!", "^(a+)+$")
    with pytest.raises(ConfigurationError, match="invalid regular expression"):
        regex_match("x", "(?=x)")
