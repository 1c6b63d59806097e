"""Store-backed FlagEngine: persistence, change-feed hot swap, audit trail, stale report."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.flags import FlagDefinition, FlagEngine, FlagSet, Prerequisite, Reason, Rule


def test_definitions_persist_and_validate_on_write(store_url: Any, ns: str) -> None:
    clock = ManualClock(start=1_700_000_000)
    with FlagEngine(namespace=ns, store=store_url, clock=clock) as engine:
        engine.set_flag(
            FlagDefinition(key="a", default_value=1, rules=[Rule(condition={"c": "NL"}, value=2)])
        )
        with pytest.raises(ConfigurationError, match=r"'b'.*\$bogus"):
            engine.set_flag(
                FlagDefinition(key="b", rules=[Rule(condition={"x": {"$bogus": 1}}, value=1)])
            )
        engine.set_flag(
            FlagDefinition(key="b", prerequisites=[Prerequisite(flag="a")], default_value=True)
        )
        with pytest.raises(ConfigurationError, match="cycle"):
            engine.set_flag(FlagDefinition(key="a", prerequisites=[Prerequisite(flag="b")]))
        with pytest.raises(ConfigurationError, match="prerequisite of b"):
            engine.delete_flag("a")
        assert engine.evaluate("a", {"c": "NL"}).value == 2
    with FlagEngine(namespace=ns, store=store_url, clock=clock) as again:
        assert again.keys == ("a", "b")
        assert again.evaluate("a", {"c": "NL"}).value == 2


def test_change_in_one_engine_reaches_another_through_the_feed(store_url: Any, ns: str) -> None:
    writer = FlagEngine(namespace=ns, store=store_url)
    reader = FlagEngine(namespace=ns, store=store_url)
    try:
        writer.set_flag(FlagDefinition(key="kill", default_value=True))
        deadline = time.monotonic() + 1.0
        while "kill" not in reader.keys and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reader.evaluate("kill", {}).value is True
        writer.toggle("kill", False)
        deadline = time.monotonic() + 1.0
        while (
            reader.evaluate("kill", {}).reason is not Reason.DISABLED
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert reader.evaluate("kill", {}, default=False).reason is Reason.DISABLED
    finally:
        writer.close()
        reader.close()


def test_audit_trail_records_who_when_and_diff(store_url: Any, ns: str) -> None:
    clock = ManualClock(start=1_700_000_000)
    with FlagEngine(namespace=ns, store=store_url, clock=clock, actor="deploy-bot") as engine:
        engine.set_flag(FlagDefinition(key="f", default_value="a"), actor="alice")
        clock.advance(60)
        engine.set_flag(FlagDefinition(key="f", default_value="b"))
        engine.toggle("f", False, actor="bob")
        events = engine.audit("f")
    assert [(e["action"], e["actor"]) for e in events] == [
        ("set", "alice"),
        ("set", "deploy-bot"),
        ("disable", "bob"),
    ]
    assert events[1]["at_ns"] - events[0]["at_ns"] == 60 * 10**9
    assert events[0]["before"] is None
    assert {"path": "default_value", "before": "a", "after": "b"} in events[1]["diff"]
    assert events[2]["diff"] == [{"path": "enabled", "before": True, "after": False}]


def test_stale_report(store_url: Any, ns: str) -> None:
    clock = ManualClock(start=1_700_000_000)
    with FlagEngine(namespace=ns, store=store_url, clock=clock, track_evaluations=True) as engine:
        engine.import_flags(
            FlagSet(
                flags=[
                    FlagDefinition(key="constant", default_value=True),
                    FlagDefinition(
                        key="varied", default_value=0, rules=[Rule(condition={"x": 1}, value=1)]
                    ),
                    FlagDefinition(key="unused", default_value=0),
                ]
            )
        )
        clock.advance(10 * 86400)
        engine.set_flag(
            FlagDefinition(key="varied", default_value=0, rules=[Rule(condition={"x": 2}, value=1)])
        )
        for x in (1, 2):
            engine.evaluate("constant", {"x": x})
            engine.evaluate("varied", {"x": x})
        engine.flush_stats()
        clock.advance(25 * 86400)
        report = {
            r["flag"]: r["reasons"]
            for r in engine.stale_flags(unchanged_days=30, unevaluated_days=30)
        }
    assert report == {
        "constant": ["unchanged", "single-value"],
        "unused": ["unchanged", "unevaluated"],
    }


def test_namespaces_share_a_store_without_seeing_each_other(store_url: Any, ns: str) -> None:
    with (
        FlagEngine(namespace=ns + "shop/", store=store_url) as shop,
        FlagEngine(namespace=ns + "admin/", store=store_url) as admin,
    ):
        shop.set_flag(FlagDefinition(key="beta", default_value=True))
        admin.refresh()
        assert admin.keys == ()
        assert admin.audit() == []
        assert shop.evaluate("beta", {}).value is True
