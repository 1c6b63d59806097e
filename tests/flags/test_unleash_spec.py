"""Unleash client-specification semantics, with hand-written payloads.

Each test pins one rule of the Unleash client specification that the importer
once got wrong or did not support; expected values follow from the rule as the
Unleash documentation states it, not from running our code.
"""

from __future__ import annotations

from typing import Any

import pytest

from cognitionos.flags import FlagEngine


def _default(name: str, *constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = {"name": "default", "constraints": list(constraints)}
    return {"name": name, "enabled": True, "strategies": [strategy], **extra}


def _semver(op: str, value: str) -> dict[str, Any]:
    return {"contextName": "appVersion", "operator": op, "value": value}


@pytest.mark.parametrize(
    ("op", "bound", "version", "expected"),
    [
        ("SEMVER_GTE", "3.1.0", "3.1.0", True),  # inclusive
        ("SEMVER_GTE", "3.1.0", "3.1.1", True),
        ("SEMVER_GTE", "3.1.0", "3.0.9", False),
        ("SEMVER_GTE", "3.1.0", "3.1.0-rc.1", False),  # a pre-release sorts first
        ("SEMVER_LTE", "3.1.0", "3.1.0", True),
        ("SEMVER_LTE", "3.1.0", "2.9.9", True),
        ("SEMVER_LTE", "3.1.0", "3.1.0-beta", True),
        ("SEMVER_LTE", "3.1.0", "3.1.1", False),
        ("SEMVER_GTE", "3.1.0", "3.1.0+build.7", True),  # build metadata is ignored
    ],
)
def test_inclusive_semver_operators(op: str, bound: str, version: str, expected: bool) -> None:
    engine = FlagEngine.from_unleash({"features": [_default("f", _semver(op, bound))]})
    assert engine.is_on("f", {"properties": {"appVersion": version}}) is expected


def test_a_leading_v_is_not_semver_on_either_side() -> None:
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _default("v-in-constraint", _semver("SEMVER_EQ", "v4.0.0")),
                _default("v-in-context", _semver("SEMVER_EQ", "4.0.0")),
            ]
        }
    )
    assert not engine.is_on("v-in-constraint", {"properties": {"appVersion": "v4.0.0"}})
    assert not engine.is_on("v-in-constraint", {"properties": {"appVersion": "4.0.0"}})
    assert not engine.is_on("v-in-context", {"properties": {"appVersion": "v4.0.0"}})
    assert engine.is_on("v-in-context", {"properties": {"appVersion": "4.0.0"}})


def test_dependency_on_the_disabled_variant_of_a_parent_without_variants() -> None:
    # a parent that is on but defines no variants satisfies any variant requirement:
    # Unleash's engine (UnleashClient 6.9 / Yggdrasil 0.21) checks variants only of a
    # parent that has some; the spec's own case only asks for "disabled"
    engine = FlagEngine.from_unleash(
        {
            "features": [
                {"name": "plain-parent", "enabled": True, "strategies": [{"name": "default"}]},
                _default(
                    "wants-disabled",
                    dependencies=[{"feature": "plain-parent", "variants": ["disabled"]}],
                ),
                _default(
                    "wants-named",
                    dependencies=[{"feature": "plain-parent", "variants": ["gold"]}],
                ),
            ]
        }
    )
    assert engine.is_on("wants-disabled", {})
    assert engine.is_on("wants-named", {})


def _flag(name: str, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "enabled": True, "strategies": [strategy or {"name": "default"}]}


def test_delta_api_events_are_applied_in_order() -> None:
    region = {"contextName": "region", "operator": "IN", "values": ["eu"]}
    payload = {
        "events": [
            {
                "eventId": 10,
                "type": "hydration",
                "features": [_flag("kept"), _flag("dropped-by-removal")],
                "segments": [{"id": 7, "constraints": [region]}],
            },
            {"eventId": 11, "type": "feature-removed", "featureName": "dropped-by-removal"},
            {
                "eventId": 12,
                "type": "feature-updated",
                "feature": _flag("segmented", {"name": "default", "segments": [7]}),
            },
            {
                "eventId": 13,
                "type": "segment-updated",
                "segment": {
                    "id": 8,
                    "constraints": [{"contextName": "tier", "operator": "IN", "values": ["pro"]}],
                },
            },
            {
                "eventId": 14,
                "type": "feature-updated",
                "feature": _flag("second-segment", {"name": "default", "segments": [8]}),
            },
            {"eventId": 15, "type": "segment-removed", "segmentId": 8},
            {"eventId": 16, "type": "some-future-event"},
        ]
    }
    engine = FlagEngine.from_unleash(payload)
    assert engine.is_on("kept", {})
    assert not engine.is_on("dropped-by-removal", {})
    assert engine.evaluate("dropped-by-removal", {}).error_code is not None
    assert engine.is_on("segmented", {"properties": {"region": "eu"}})
    assert not engine.is_on("segmented", {"properties": {"region": "us"}})
    # a strategy referring to a segment that no longer exists never matches
    assert not engine.is_on("second-segment", {"properties": {"tier": "pro"}})


def test_a_later_hydration_replaces_everything() -> None:
    payload = {
        "events": [
            {"eventId": 1, "type": "feature-updated", "feature": _flag("old")},
            {"eventId": 2, "type": "hydration", "features": [_flag("new")], "segments": []},
        ]
    }
    engine = FlagEngine.from_unleash(payload)
    assert engine.keys == ("new",)


def _random(percentage: str) -> dict[str, Any]:
    return {"name": "gradualRolloutRandom", "parameters": {"percentage": percentage}}


def _group(operator: str, *members: dict[str, Any]) -> dict[str, Any]:
    return {"name": "__internal-strategy-group", "operator": operator, "group": list(members)}


def test_strategy_groups_combine_members_with_and_or() -> None:
    only_ann = {"name": "userWithId", "parameters": {"userIds": "ann"}}
    engine = FlagEngine.from_unleash(
        {
            "features": [
                _flag("and-all-on", _group("AND", {"name": "default"}, _random("100"))),
                _flag("and-one-off", _group("AND", {"name": "default"}, _random("0"))),
                _flag("or-one-on", _group("OR", _random("0"), only_ann)),
                {
                    "name": "and-then-or",
                    "enabled": True,
                    "strategies": [
                        _group("AND", only_ann, {"name": "default"}),
                        _group("OR", _random("0")),
                    ],
                },
            ]
        }
    )
    assert engine.is_on("and-all-on", {})
    assert not engine.is_on("and-one-off", {"userId": "ann"})
    assert engine.is_on("or-one-on", {"userId": "ann"})
    assert not engine.is_on("or-one-on", {"userId": "bob"})
    assert engine.is_on("and-then-or", {"userId": "ann"})
    assert not engine.is_on("and-then-or", {"userId": "bob"})


def test_an_empty_strategy_group_keeps_the_toggle_off() -> None:
    engine = FlagEngine.from_unleash({"features": [_flag("empty", _group("OR"))]})
    assert not engine.is_on("empty", {})


def test_get_variant_returns_the_unleash_shape() -> None:
    payload = {"type": "json", "value": '{"color": "teal"}'}
    engine = FlagEngine.from_unleash(
        {
            "features": [
                {
                    "name": "with-variant",
                    "enabled": True,
                    "strategies": [
                        {
                            "name": "flexibleRollout",
                            "parameters": {"rollout": "100", "stickiness": "default"},
                            "variants": [{"name": "teal", "weight": 1000, "payload": payload}],
                        }
                    ],
                },
                {"name": "no-variants", "enabled": True, "strategies": [{"name": "default"}]},
                {
                    "name": "off",
                    "enabled": False,
                    "strategies": [{"name": "default"}],
                    "variants": [{"name": "teal", "weight": 1}],
                },
            ]
        }
    )
    assert engine.get_variant("with-variant", {"userId": "u1"}) == {
        "name": "teal",
        "enabled": True,
        "feature_enabled": True,
        "payload": payload,
    }
    # on, but nothing to choose from: Unleash's disabled variant with feature_enabled
    assert engine.get_variant("no-variants", {}) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": True,
    }
    assert engine.get_variant("off", {"userId": "u1"}) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }
    assert engine.get_variant("missing", {}) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }


def test_context_fields_resolve_top_level_before_properties() -> None:
    # Unleash SDKs read a context field from the top level first, then from properties
    engine = FlagEngine.from_unleash(
        {"features": [_default("f", {"contextName": "plan", "operator": "IN", "values": ["gold"]})]}
    )
    assert engine.is_on("f", {"plan": "gold"})
    assert engine.is_on("f", {"properties": {"plan": "gold"}})
    assert not engine.is_on("f", {"plan": "free", "properties": {"plan": "gold"}})


def test_a_strategy_naming_an_unknown_segment_turns_the_whole_feature_off() -> None:
    # Unleash's engine: one strategy referring to a missing segment disables the feature,
    # even when another strategy of it would match
    engine = FlagEngine.from_unleash(
        {
            "features": [
                {
                    "name": "f",
                    "enabled": True,
                    "strategies": [{"name": "default", "segments": [9]}, {"name": "default"}],
                },
                {"name": "g", "enabled": True, "strategies": [{"name": "default"}]},
            ],
            "segments": [{"id": 1, "constraints": []}],
        }
    )
    assert not engine.is_on("f", {"userId": "u1"})
    assert engine.is_on("g", {"userId": "u1"})


def test_dependency_variants_apply_only_when_the_parent_serves_a_variant() -> None:
    with_variants = {
        "name": "parent",
        "enabled": True,
        "strategies": [
            {"name": "default"},  # matches first, without variants: parent serves none
            {
                "name": "userWithId",
                "parameters": {"userIds": "u1"},
                "variants": [{"name": "blue", "weight": 1}],
            },
        ],
    }
    feature_variants = {
        "name": "fv-parent",
        "enabled": True,
        "strategies": [{"name": "default"}],
        "variants": [{"name": "blue", "weight": 1}],
    }
    engine = FlagEngine.from_unleash(
        {
            "features": [
                with_variants,
                feature_variants,
                _default("a", dependencies=[{"feature": "parent", "variants": ["red"]}]),
                _default("b", dependencies=[{"feature": "fv-parent", "variants": ["red"]}]),
                _default("c", dependencies=[{"feature": "fv-parent", "variants": ["blue"]}]),
            ]
        }
    )
    assert engine.is_on("a", {"userId": "u1"})
    assert not engine.is_on("b", {"userId": "u1"})
    assert engine.is_on("c", {"userId": "u1"})
