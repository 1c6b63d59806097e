"""Unleash client payloads through FlagEngine.from_unleash."""

from __future__ import annotations

from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.flags import FlagEngine, Reason
from cognitionos.hashing import UNLEASH_VARIANT_SEED, murmur3_32, unleash_normalized


def _feature(name: str, strategies: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "enabled": True, "strategies": strategies, **extra}


def _constraint_flag(**constraint: Any) -> FlagEngine:
    return FlagEngine.from_unleash(
        {"features": [_feature("f", [{"name": "default", "constraints": [constraint]}])]},
        hostname="host-a",
    )


def test_default_user_with_id_and_disabled() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature("on", [{"name": "default"}]),
                _feature("ids", [{"name": "userWithId", "parameters": {"userIds": "a, b,c"}}]),
                {"name": "off", "enabled": False, "strategies": [{"name": "default"}]},
                _feature("custom", [{"name": "myCustomStrategy", "parameters": {}}]),
                _feature("nostrategy", []),
            ]
        }
    )
    assert engine.is_on("on", {})
    assert [engine.is_on("ids", {"userId": u}) for u in ("a", "b", "c", "d")] == [
        True,
        True,
        True,
        False,
    ]
    off = engine.evaluate("off", {}, default=False)
    assert (off.value, off.reason) == (False, Reason.DISABLED)
    assert not engine.is_on("custom", {"userId": "a"})
    assert engine.is_on("nostrategy", {})


def test_gradual_rollout_matches_unleash_normalisation() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature(
                    "roll",
                    [
                        {
                            "name": "flexibleRollout",
                            "parameters": {"rollout": "37", "stickiness": "userId", "groupId": "g"},
                        }
                    ],
                ),
                _feature(
                    "session",
                    [
                        {
                            "name": "gradualRolloutSessionId",
                            "parameters": {"percentage": "60", "groupId": "s"},
                        }
                    ],
                ),
            ]
        }
    )
    for i in range(400):
        uid = f"user-{i}"
        assert engine.is_on("roll", {"userId": uid}) is (unleash_normalized(uid, "g") <= 37)
        assert engine.is_on("session", {"sessionId": uid}) is (unleash_normalized(uid, "s") <= 60)
    # no stickiness value: no rollout
    assert not engine.is_on("roll", {})


def test_random_rollout_extremes() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature(
                    "all", [{"name": "gradualRolloutRandom", "parameters": {"percentage": "100"}}]
                ),
                _feature(
                    "none", [{"name": "gradualRolloutRandom", "parameters": {"percentage": "0"}}]
                ),
            ]
        }
    )
    assert all(engine.is_on("all", {}) for _ in range(50))
    assert not any(engine.is_on("none", {}) for _ in range(50))


def test_remote_address_with_cidr_and_hostname() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature(
                    "ip",
                    [
                        {
                            "name": "remoteAddress",
                            "parameters": {"IPs": "10.0.0.0/8, 192.168.1.7, ::1"},
                        }
                    ],
                ),
                _feature(
                    "host",
                    [{"name": "applicationHostname", "parameters": {"hostNames": "Web-1,web-2"}}],
                ),
            ]
        },
        hostname="web-1",
    )
    assert engine.is_on("ip", {"remoteAddress": "10.20.30.40"})
    assert engine.is_on("ip", {"remoteAddress": "192.168.1.7"})
    assert engine.is_on("ip", {"remoteAddress": "::1"})
    assert not engine.is_on("ip", {"remoteAddress": "192.168.1.8"})
    assert not engine.is_on("ip", {})
    assert engine.is_on("host", {})


@pytest.mark.parametrize(
    ("constraint", "context", "expected"),
    [
        (
            {"contextName": "country", "operator": "IN", "values": ["NL", "BE"]},
            {"country": "NL"},
            True,
        ),
        (
            {"contextName": "country", "operator": "IN", "values": ["NL"], "caseInsensitive": True},
            {"country": "nl"},
            True,
        ),
        ({"contextName": "country", "operator": "NOT_IN", "values": ["NL"]}, {}, True),
        (
            {"contextName": "country", "operator": "IN", "values": ["NL"], "inverted": True},
            {"country": "NL"},
            False,
        ),
        (
            {"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@acme.io"]},
            {"email": "x@acme.io"},
            True,
        ),
        (
            {
                "contextName": "email",
                "operator": "STR_STARTS_WITH",
                "values": ["ADMIN"],
                "caseInsensitive": True,
            },
            {"email": "admin@x"},
            True,
        ),
        ({"contextName": "email", "operator": "STR_CONTAINS", "values": ["acme"]}, {}, False),
        ({"contextName": "age", "operator": "NUM_GTE", "value": "18"}, {"age": "18"}, True),
        ({"contextName": "age", "operator": "NUM_LT", "value": "18"}, {"age": 17.5}, True),
        ({"contextName": "age", "operator": "NUM_EQ", "value": "18"}, {"age": "eighteen"}, False),
        ({"contextName": "v", "operator": "SEMVER_GT", "value": "1.2.3"}, {"v": "1.10.0"}, True),
        (
            {"contextName": "v", "operator": "SEMVER_LT", "value": "1.0.0"},
            {"v": "1.0.0-rc.1"},
            True,
        ),
        (
            {"contextName": "v", "operator": "SEMVER_EQ", "value": "1.0.0"},
            {"v": "not-semver"},
            False,
        ),
        (
            {
                "contextName": "currentTime",
                "operator": "DATE_AFTER",
                "value": "2020-01-01T00:00:00Z",
            },
            {},
            True,
        ),
        (
            {
                "contextName": "currentTime",
                "operator": "DATE_BEFORE",
                "value": "2020-01-01T00:00:00.000+02:00",
            },
            {"currentTime": "2019-12-31T21:59:00Z"},
            True,
        ),
        (
            {"contextName": "userId", "operator": "REGEX", "value": "^(?i)abc$"},
            {"userId": "ABC"},
            True,
        ),
        (
            {"contextName": "userId", "operator": "REGEX", "value": "^[[:digit:]]+$"},
            {"userId": "123"},
            True,
        ),
        (
            {"contextName": "userId", "operator": "REGEX", "value": "(broken"},
            {"userId": "(broken"},
            False,
        ),
        (
            {"contextName": "userId", "operator": "REGEX", "value": "^(a)\\1$"},
            {"userId": "aa"},
            False,
        ),
        (
            {
                "contextName": "remoteAddress",
                "operator": "IN_CIDR",
                "values": ["bad", "2001:db8::/32"],
            },
            {"remoteAddress": "2001:db8::5"},
            True,
        ),
        (
            {"contextName": "plan", "operator": "NO_SUCH_OPERATOR", "value": "x"},
            {"plan": "x"},
            False,
        ),
        (
            {"contextName": "plan", "operator": "IN", "values": ["pro"]},
            {"properties": {"plan": "pro"}},
            True,
        ),
    ],
)
def test_constraint_operators(
    constraint: dict[str, Any], context: dict[str, Any], expected: bool
) -> None:
    clock = ManualClock(start=1_700_000_000)  # 2023-11-14
    engine = FlagEngine.from_unleash(
        {"features": [_feature("f", [{"name": "default", "constraints": [constraint]}])]},
        clock=clock,
    )
    assert engine.is_on("f", context) is expected


def test_segments_and_dependencies() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature(
                    "parent",
                    [{"name": "default", "segments": [1]}],
                    variants=[{"name": "blue", "weight": 1}],
                ),
                _feature("child", [{"name": "default"}], dependencies=[{"feature": "parent"}]),
                _feature(
                    "needs-blue",
                    [{"name": "default"}],
                    dependencies=[{"feature": "parent", "variants": ["blue"]}],
                ),
                _feature(
                    "needs-off",
                    [{"name": "default"}],
                    dependencies=[{"feature": "parent", "enabled": False}],
                ),
                _feature("orphan", [{"name": "default"}], dependencies=[{"feature": "ghost"}]),
                _feature("bad-segment", [{"name": "default", "segments": [99]}]),
            ],
            "segments": [
                {
                    "id": 1,
                    "constraints": [{"contextName": "tier", "operator": "IN", "values": ["gold"]}],
                }
            ],
        }
    )
    gold, silver = {"tier": "gold"}, {"tier": "silver"}
    assert engine.is_on("parent", gold) and not engine.is_on("parent", silver)
    assert engine.is_on("child", gold) and not engine.is_on("child", silver)
    assert engine.is_on("needs-blue", gold)
    assert engine.is_on("needs-off", silver) and not engine.is_on("needs-off", gold)
    assert not engine.is_on("orphan", gold)
    assert not engine.is_on("bad-segment", gold)


def test_variants_follow_unleash_hashing_and_overrides() -> None:
    variants = [
        {"name": "a", "weight": 30, "payload": {"type": "string", "value": "A"}},
        {"name": "b", "weight": 70, "overrides": [{"contextName": "userId", "values": ["vip"]}]},
    ]
    strategy_variants = [{"name": "x", "weight": 1}, {"name": "y", "weight": 3}]
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature("legacy", [{"name": "default"}], variants=variants),
                _feature(
                    "strat",
                    [
                        {
                            "name": "flexibleRollout",
                            "parameters": {"rollout": "100", "groupId": "grp"},
                            "variants": strategy_variants,
                        }
                    ],
                    variants=variants,
                ),
            ]
        }
    )
    for i in range(300):
        uid = f"u{i}"
        # feature-level variants hash like strategy variants: "<feature>:<id>", variant seed
        legacy_target = murmur3_32(f"legacy:{uid}", UNLEASH_VARIANT_SEED) % 100 + 1
        ev = engine.evaluate("legacy", {"userId": uid})
        assert ev.value is True
        assert ev.variant == ("a" if legacy_target <= 30 else "b")
        if ev.variant == "a":
            assert ev.metadata["payload"] == {"type": "string", "value": "A"}
        strat_target = murmur3_32(f"grp:{uid}", UNLEASH_VARIANT_SEED) % 4 + 1
        assert engine.evaluate("strat", {"userId": uid}).variant == (
            "x" if strat_target <= 1 else "y"
        )
    assert engine.evaluate("legacy", {"userId": "vip"}).variant == "b"


def test_strategy_variants_follow_the_strategy_stickiness() -> None:
    # Unleash's engine buckets strategy variants by the strategy's stickiness; the
    # variants' own "stickiness" field is not consulted ("default" without one)
    own = [{"name": "x", "weight": 1, "stickiness": "userId"}, {"name": "y", "weight": 1}]
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _feature(
                    "by-tenant",
                    [
                        {
                            "name": "flexibleRollout",
                            "parameters": {
                                "rollout": "100",
                                "stickiness": "tenant",
                                "groupId": "g",
                            },
                            "variants": own,
                        }
                    ],
                ),
                _feature(
                    "plain",
                    [
                        {
                            "name": "default",
                            "variants": [{**v, "stickiness": "sessionId"} for v in own],
                        }
                    ],
                ),
            ]
        }
    )
    for i in range(100):
        ctx = {"userId": f"u{i}", "sessionId": f"s{i * 7}", "properties": {"tenant": f"t{i}"}}
        by_tenant = murmur3_32(f"g:t{i}", UNLEASH_VARIANT_SEED) % 2 + 1
        assert engine.evaluate("by-tenant", ctx).variant == ("x" if by_tenant <= 1 else "y")
        by_user = murmur3_32(f"plain:u{i}", UNLEASH_VARIANT_SEED) % 2 + 1
        assert engine.evaluate("plain", ctx).variant == ("x" if by_user <= 1 else "y")
