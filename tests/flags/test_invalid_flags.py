"""One bad flag breaks one flag: stored definitions and vendor documents load flag by flag."""

from __future__ import annotations

import ast
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.flags import ErrorCode, FlagDefinition, FlagEngine, FlagSet, Reason, Rule

#: a flag written by a newer release: a field this release does not know
NEWER = {
    "key": "newer",
    "default_value": 1,
    "rollout_v9": {"steps": [0.1, 0.5]},
    "rules": [{"condition": {"c": "NL"}, "value": 2, "sticky_v2": True}],
}
#: an operator this release does not know
UNKNOWN_OP = {"key": "bad", "rules": [{"condition": {"a": {"$fromTheFuture": 1}}, "value": 2}]}


@pytest.fixture
def raw_store(store_url: Any) -> Iterator[Any]:
    """The store behind ``store_url``, to write what no engine of this release would."""
    if not isinstance(store_url, str):
        yield store_url
        return
    from cognitionos.storage import open_store

    store = open_store(store_url)
    yield store
    store.close()


def _put(store: Any, ns: str, key: str, value: Any) -> None:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    store.set(f"{ns}flags/def/{key}", data)


def _wait(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_bad_stored_flags_break_only_themselves(
    store_url: Any, raw_store: Any, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    running = FlagEngine(namespace=ns, store=store_url)
    try:
        running.set_flag(FlagDefinition(key="good", default_value=True))
        running.set_flag(FlagDefinition(key="kill", default_value=True))
        _put(raw_store, ns, "newer", NEWER)
        _put(raw_store, ns, "bad", UNKNOWN_OP)
        _put(raw_store, ns, "garbage", b"{not json")
        _put(raw_store, ns, "wrong-type", {"key": "wrong-type", "enabled": "sometimes"})

        # a new engine starts
        with caplog.at_level(logging.WARNING, logger="cognitionos.flags"):
            engine = FlagEngine(namespace=ns, store=store_url)
        try:
            assert engine.evaluate("good", {}).value is True
            # forward compatible: the unknown field is ignored, the flag works
            assert engine.evaluate("newer", {}).value == 1
            assert engine.evaluate("newer", {"c": "NL"}).value == 2
            for key, words in [
                ("bad", "$fromTheFuture"),
                ("garbage", "not valid JSON"),
                ("wrong-type", "enabled"),
            ]:
                ev = engine.evaluate(key, {"a": 1}, default="fallback")
                assert (ev.value, ev.reason, ev.error_code) == (
                    "fallback",
                    Reason.ERROR,
                    ErrorCode.PARSE_ERROR,
                )
                assert words in (ev.error_message or ""), ev.error_message
                assert key in engine.definitions.invalid
            assert set(engine.keys) == {"good", "kill", "newer", "bad", "garbage", "wrong-type"}
            # a counter and a log line report each bad flag, and the ignored field
            assert engine.counters.snapshot()["invalid_flags"] == 3
            logged = caplog.text
            assert "'bad'" in logged and "PARSE_ERROR" in logged
            assert "rollout_v9" in logged and "sticky_v2" in logged

            # writes go on, the kill switch first
            engine.toggle("kill", False)
            assert engine.evaluate("kill", {}, default="off").reason is Reason.DISABLED
            engine.set_flag(FlagDefinition(key="fresh", default_value="yes"))
            assert engine.evaluate("fresh", {}).value == "yes"
            # user input stays strict
            with pytest.raises(ConfigurationError, match=r"\$nope"):
                engine.set_flag(
                    FlagDefinition(key="x", rules=[Rule(condition={"a": {"$nope": 1}}, value=1)])
                )
            # the engine that was already running keeps following the store
            assert _wait(lambda: running.evaluate("kill", {}).reason is Reason.DISABLED)
            assert _wait(lambda: running.evaluate("fresh", {}).value == "yes")
            assert running.evaluate("bad", {}).error_code is ErrorCode.PARSE_ERROR
            assert running.evaluate("good", {}).value is True
        finally:
            engine.close()
    finally:
        running.close()


def test_toggle_keeps_fields_of_a_newer_release_and_reaches_invalid_flags(
    store_url: Any, raw_store: Any, ns: str
) -> None:
    _put(raw_store, ns, "newer", NEWER)
    _put(raw_store, ns, "bad", UNKNOWN_OP)
    with FlagEngine(namespace=ns, store=store_url) as engine:
        engine.toggle("newer", False)
        engine.toggle("bad", False)  # still switchable for the releases that understand it
        stored = json.loads(raw_store.get(f"{ns}flags/def/newer").value)
        assert stored["rollout_v9"] == NEWER["rollout_v9"]
        assert stored["enabled"] is False
        assert json.loads(raw_store.get(f"{ns}flags/def/bad").value)["enabled"] is False
        assert engine.evaluate("newer", {}, default=0).reason is Reason.DISABLED
        assert [e["action"] for e in engine.audit("bad")] == ["disable"]
        # an invalid flag can be replaced or deleted
        engine.set_flag(FlagDefinition(key="bad", default_value=5))
        assert engine.evaluate("bad", {}).value == 5
        _put(raw_store, ns, "garbage", b"\xff")
        engine.refresh()
        assert engine.delete_flag("garbage") is True
        assert "garbage" not in engine.keys
        _put(raw_store, ns, "list", [1])
        engine.refresh()
        with pytest.raises(ConfigurationError, match="not a JSON object"):
            engine.toggle("list", True)


def test_a_failing_reload_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from cognitionos.storage import open_store

    store = open_store("memory://")
    writer = FlagEngine(store=store)
    reader = FlagEngine(store=store)
    try:

        def broken() -> Any:
            raise StorageError("backend went away")

        reader._sync._read = broken
        with caplog.at_level(logging.ERROR, logger="cognitionos.flags"):
            writer.set_flag(FlagDefinition(key="f", default_value=1))
        assert reader.counters.snapshot()["reload_errors"] == 1
        assert "backend went away" in caplog.text
        assert "still serving" in caplog.text
    finally:
        writer.close()
        reader.close()
        store.close()


def test_user_input_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        FlagDefinition.model_validate(NEWER)
    with pytest.raises(ConfigurationError, match="rollout_v9"):
        FlagEngine.from_json({"flags": [NEWER]})
    with pytest.raises(ConfigurationError, match="invalid"):
        FlagEngine(store="memory://").import_flags(FlagSet(invalid={"x": "broken"}))


# --- importers ----------------------------------------------------------------------------

GROWTHBOOK = {
    "features": {
        "ok": {"defaultValue": True},
        "bad-rule": {"defaultValue": 1, "rules": [{"force": 2, "coverage": "lots"}]},
        "not-an-object": 7,
    }
}
UNLEASH = {
    "features": [
        {"name": "ok", "enabled": True, "strategies": [{"name": "default"}]},
        {
            "name": "bad-variant",
            "enabled": True,
            "strategies": [{"name": "default"}],
            "variants": [{"name": "v", "weight": "heavy"}],
        },
    ]
}
FLAGD = {
    "flags": {
        "ok": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"},
        "bad-op": {
            "state": "ENABLED",
            "variants": {"on": True},
            "defaultVariant": "on",
            "targeting": {"nope": [1]},
        },
        "bad-default": {"variants": {"a": 1}, "defaultVariant": "b"},
    }
}


@pytest.mark.parametrize(
    ("load", "payload", "context", "bad"),
    [
        (
            FlagEngine.from_growthbook,
            GROWTHBOOK,
            {},
            {"bad-rule": "coverage", "not-an-object": "object"},
        ),
        (FlagEngine.from_unleash, UNLEASH, {"userId": "u"}, {"bad-variant": "heavy"}),
        (
            FlagEngine.from_flagd,
            FLAGD,
            {"targetingKey": "u"},
            {"bad-op": "unknown JsonLogic operation", "bad-default": "defaultVariant"},
        ),
    ],
    ids=["growthbook", "unleash", "flagd"],
)
def test_importers_load_what_they_can(
    load: Callable[..., FlagEngine],
    payload: dict[str, Any],
    context: dict[str, Any],
    bad: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="cognitionos.flags"):
        engine = load(payload)
    assert engine.evaluate("ok", context, default=False).value is True
    for key, words in bad.items():
        ev = engine.evaluate(key, context, default="d")
        assert (ev.value, ev.reason, ev.error_code) == ("d", Reason.ERROR, ErrorCode.PARSE_ERROR)
        assert f"'{key}'" in (ev.error_message or "") and words in (ev.error_message or "")
        assert f"'{key}'" in caplog.text
    assert set(engine.definitions.invalid) == set(bad)
    assert engine.counters.snapshot()["invalid_flags"] == len(bad)
    # strict: all or nothing, naming the first bad flag
    with pytest.raises(ConfigurationError, match="|".join(bad)):
        load(payload, strict=True)


def test_prerequisite_on_an_invalid_flag_does_not_break_the_child() -> None:
    engine = FlagEngine.from_growthbook(
        {
            "features": {
                "parent": {"defaultValue": 1, "rules": [{"force": 2, "coverage": "lots"}]},
                "child": {
                    "defaultValue": "off",
                    "rules": [
                        {
                            "parentConditions": [
                                {"id": "parent", "condition": {"value": 1}, "gate": True}
                            ],
                            "force": "on",
                        }
                    ],
                },
            }
        }
    )
    assert engine.evaluate("parent", {}).error_code is ErrorCode.PARSE_ERROR
    assert engine.evaluate("child", {}).reason is Reason.PREREQUISITE_FAILED


def test_engine_and_store_modules_do_not_import_each_other() -> None:
    root = Path(__file__).resolve().parents[2] / "cognitionos" / "flags"

    def imported(module: str) -> set[str]:
        tree = ast.parse((root / f"{module}.py").read_text())
        names: set[str] = set()
        for node in ast.walk(tree):  # function-level and TYPE_CHECKING imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    assert "cognitionos.flags.engine" not in imported("_store")
    assert "cognitionos.flags._store" in imported("engine")
