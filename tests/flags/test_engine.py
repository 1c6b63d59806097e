"""FlagEngine behaviour: reasons, errors, validation at load, schedules, environments, export."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.flags import (
    EnvironmentOverride,
    ErrorCode,
    FlagDefinition,
    FlagEngine,
    FlagSet,
    Prerequisite,
    Ramp,
    Reason,
    Rule,
    Variation,
)


def _engine(*flags: FlagDefinition, **kw: Any) -> FlagEngine:
    return FlagEngine(list(flags), **kw)


def test_reasons_mirror_openfeature() -> None:
    engine = _engine(
        FlagDefinition(key="static", default_value="x"),
        FlagDefinition(
            key="targeted", default_value=0, rules=[Rule(condition={"c": "NL"}, value=1, id="nl")]
        ),
        FlagDefinition(key="off", default_value=True, enabled=False),
        FlagDefinition(
            key="split",
            default_value="none",
            rules=[Rule(variations=[Variation(value="a", key="A"), Variation(value="b", key="B")])],
        ),
    )
    assert engine.evaluate("static", {}).reason is Reason.STATIC
    nl = engine.evaluate("targeted", {"c": "NL"})
    assert (nl.value, nl.reason, nl.rule_id) == (1, Reason.TARGETING_MATCH, "nl")
    be = engine.evaluate("targeted", {"c": "BE"})
    assert (be.value, be.reason, be.rule_id) == (0, Reason.DEFAULT, None)
    off = engine.evaluate("off", {}, default="fallback")
    assert (off.value, off.reason) == ("fallback", Reason.DISABLED)
    sp = engine.evaluate("split", {"id": "u1"})
    assert sp.reason is Reason.SPLIT
    assert sp.variant in ("A", "B")
    assert sp.value == {"A": "a", "B": "b"}[sp.variant]
    missing = engine.evaluate("nope", {}, default=7)
    assert (missing.value, missing.reason, missing.error_code) == (
        7,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )


def test_bad_attributes_give_default_with_error_never_raise() -> None:
    engine = _engine(
        FlagDefinition(key="f", default_value=1, rules=[Rule(condition={"a": 1}, value=2)])
    )
    ev = engine.evaluate("f", ["not", "a", "mapping"], default=0)  # type: ignore[arg-type]
    assert (ev.value, ev.reason, ev.error_code) == (0, Reason.ERROR, ErrorCode.INVALID_CONTEXT)

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    engine2 = _engine(
        FlagDefinition(key="f", default_value=1, rules=[Rule(condition={"a": "x"}, value=2)])
    )
    ev2 = engine2.evaluate("f", {"a": Hostile()}, default=0)
    assert (ev2.value, ev2.reason, ev2.error_code) == (0, Reason.ERROR, ErrorCode.GENERAL)
    assert "boom" in (ev2.error_message or "")


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"plan": {"$regx": "a"}}, "unknown operator '$regx'"),
        ({"plan": {"$regex": "(unclosed"}}, "invalid regular expression"),
        ({"plan": {"$in": "pro"}}, "needs a list"),
        ({"$or": {"a": 1}}, "$or needs a list"),
    ],
)
def test_malformed_definitions_are_rejected_at_load_naming_flag_and_field(
    condition: dict[str, Any], fragment: str
) -> None:
    flag = FlagDefinition(key="checkout", rules=[Rule(value=1), Rule(condition=condition, value=2)])
    with pytest.raises(ConfigurationError) as info:
        FlagEngine([flag])
    message = str(info.value)
    assert "'checkout'" in message
    assert "rules[1].condition" in message
    assert fragment in message


def test_growthbook_payload_errors_name_flag_and_field() -> None:
    bad = {"features": {"pay": {"defaultValue": 1, "rules": [{"force": 2, "coverage": "lots"}]}}}
    with pytest.raises(ConfigurationError, match=r"flag 'pay' rules\[0\].*coverage"):
        FlagEngine.from_growthbook(bad, strict=True)
    unknown = {"features": {"pay": {"rules": [{"force": 2, "condition": {"a": {"$nope": 1}}}]}}}
    with pytest.raises(ConfigurationError, match=r"'pay'.*\$nope"):
        FlagEngine.from_growthbook(unknown, strict=True)
    # by default the SDK behaviour: an unknown operator never matches
    lenient = FlagEngine.from_growthbook(unknown)
    assert lenient.evaluate("pay", {"a": 1}).reason is Reason.DEFAULT


def test_schedule_window_and_linear_ramp() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    end = datetime(2030, 1, 11, tzinfo=UTC)
    clock = ManualClock(start=start.timestamp() - 60)
    window = Rule(value="on", start_at=start, end_at=end)
    ramp = Rule(value=True, ramp=Ramp(start=start, end=end, from_coverage=0.0, to_coverage=1.0))
    engine = _engine(
        FlagDefinition(key="window", default_value="off", rules=[window]),
        FlagDefinition(key="ramp", default_value=False, rules=[ramp]),
        clock=clock,
    )
    users = [{"id": f"u{i}"} for i in range(2000)]
    assert engine.evaluate("window", {}).value == "off"
    assert sum(engine.evaluate("ramp", u).value for u in users) == 0
    clock.set(start.timestamp() + 5 * 86400)  # half way
    assert engine.evaluate("window", {}).value == "on"
    halfway = {u["id"] for u in users if engine.evaluate("ramp", u).value}
    assert 800 < len(halfway) < 1200
    clock.set(start.timestamp() + 8 * 86400)
    later = {u["id"] for u in users if engine.evaluate("ramp", u).value}
    assert halfway <= later  # a ramp only ever adds users
    clock.set(end.timestamp())
    assert engine.evaluate("window", {}).value == "off"
    assert all(engine.evaluate("ramp", u).value for u in users)


def test_environment_overrides() -> None:
    flag = FlagDefinition(
        key="f",
        default_value="base",
        rules=[Rule(value="rule")],
        environments={
            "staging": EnvironmentOverride(rules=[]),
            "production": EnvironmentOverride(enabled=False),
        },
    )
    assert FlagEngine([flag]).evaluate("f", {}).value == "rule"
    assert FlagEngine([flag], environment="staging").evaluate("f", {}).value == "base"
    prod = FlagEngine([flag], environment="production").evaluate("f", {}, default="d")
    assert (prod.value, prod.reason) == ("d", Reason.DISABLED)


def test_flag_level_prerequisites_gate_and_cycles_are_rejected_on_write() -> None:
    parent = FlagDefinition(
        key="parent", default_value=False, rules=[Rule(condition={"beta": True}, value=True)]
    )
    child = FlagDefinition(
        key="child",
        default_value="new",
        prerequisites=[Prerequisite(flag="parent", condition={"value": True})],
    )
    engine = _engine(parent, child)
    assert engine.evaluate("child", {"beta": True}).value == "new"
    gated = engine.evaluate("child", {"beta": False}, default="old")
    assert (gated.value, gated.reason) == ("old", Reason.PREREQUISITE_FAILED)
    loop = FlagDefinition(key="parent", prerequisites=[Prerequisite(flag="child")])
    with pytest.raises(ConfigurationError, match="cycle"):
        _engine(loop, child)


def test_export_round_trip_preserves_behaviour() -> None:
    payload = {
        "features": {
            "exp": {
                "defaultValue": "c",
                "rules": [
                    {"condition": {"country": {"$in": ["NL"]}}, "force": "nl"},
                    {
                        "key": "e1",
                        "variations": ["c", "t"],
                        "weights": [0.3, 0.7],
                        "hashVersion": 2,
                        "meta": [{"key": "control"}, {"key": "treatment"}],
                    },
                ],
            }
        },
        "savedGroups": {"vip": ["u1"]},
    }
    original = FlagEngine.from_growthbook(payload)
    exported = original.export()
    assert exported["flags"][0]["key"] == "exp"
    copy = FlagEngine.from_json(exported)
    for i in range(300):
        attrs = {"id": f"user{i}", "country": "NL" if i % 7 == 0 else "DE"}
        a, b = original.evaluate("exp", attrs), copy.evaluate("exp", attrs)
        assert (a.value, a.variant, a.reason) == (b.value, b.variant, b.reason)


def test_replace_swaps_atomically_under_concurrent_readers() -> None:
    engine = _engine(FlagDefinition(key="f", default_value=0, rules=[Rule(value=0)]))
    seen: set[Any] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ev = engine.evaluate("f", {"id": "x"})
            seen.add((ev.value, ev.reason))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for v in range(1, 50):
        engine.replace(
            FlagSet(flags=[FlagDefinition(key="f", default_value=v, rules=[Rule(value=v)])])
        )
    stop.set()
    for t in threads:
        t.join()
    assert engine.evaluate("f", {}).value == 49
    assert engine.snapshot.version == 49
    assert all(reason is Reason.TARGETING_MATCH for _, reason in seen)


def test_evaluate_all_and_is_on() -> None:
    engine = FlagEngine.from_growthbook(
        {
            "features": {
                "a": {"defaultValue": True},
                "b": {"defaultValue": 0},
                "c": {"defaultValue": "x"},
            }
        }
    )
    all_ = engine.evaluate_all({"id": "u"})
    assert list(all_) == ["a", "b", "c"]
    assert [engine.is_on(k) for k in all_] == [True, False, True]
    assert engine.is_on("missing") is False


def test_evaluation_counters_per_flag_and_variant() -> None:
    engine = FlagEngine(
        [
            FlagDefinition(
                key="f", default_value=0, rules=[Rule(condition={"x": 1}, value=1, variant="one")]
            )
        ],
        track_evaluations=True,
    )
    for x in (1, 1, 2):
        engine.evaluate("f", {"x": x})
    assert engine.evaluation_counts() == {("f", "one"): 2, ("f", "DEFAULT"): 1}


def test_import_does_not_pull_heavy_dependencies() -> None:
    import subprocess

    code = (
        "import sys, cognitionos.flags; "
        "heavy = ('numpy', 'scipy', 'sklearn', 'sqlalchemy', 'redis', 'fastapi'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
