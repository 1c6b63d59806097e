"""The ``flags`` click group, driven in process with CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cognitionos.flags._cli import flags


def _run(store: str, *args: str) -> str:
    result = CliRunner().invoke(
        flags, ["--store", store, "--actor", "tester", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_import_list_get_toggle_export_audit_stale(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'f.db'}"
    payload = tmp_path / "gb.json"
    payload.write_text(
        json.dumps(
            {
                "features": {
                    "checkout": {
                        "defaultValue": False,
                        "rules": [{"condition": {"country": "NL"}, "force": True}],
                    },
                    "color": {"defaultValue": "blue"},
                }
            }
        )
    )
    assert "imported 2 flag(s), 2 changed" in _run(
        store, "import", str(payload), "--format", "growthbook"
    )
    listing = json.loads(_run(store, "list", "--json"))
    assert [r["key"] for r in listing] == ["checkout", "color"]
    got = json.loads(_run(store, "get", "checkout"))
    assert got["rules"][0]["condition"] == {"country": "NL"}
    _run(store, "toggle", "checkout", "--off")
    assert json.loads(_run(store, "list", "--json"))[0]["enabled"] is False
    _run(store, "set", "size", "--default", "3")
    out = tmp_path / "export.json"
    _run(store, "export", "-o", str(out))
    exported = json.loads(out.read_text())
    assert {f["key"] for f in exported["flags"]} == {"checkout", "color", "size"}
    events = json.loads(_run(store, "audit", "checkout", "--json"))
    assert [(e["action"], e["actor"]) for e in events] == [
        ("import", "tester"),
        ("disable", "tester"),
    ]
    stale = json.loads(_run(store, "stale", "--days", "0", "--json"))
    assert {r["flag"] for r in stale} == {"checkout", "color", "size"}


def test_invalid_definition_is_a_clean_error(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'f.db'}"
    result = CliRunner().invoke(
        flags,
        [
            "--store",
            store,
            "set",
            "bad",
            "--definition",
            '{"rules": [{"value": 1, "condition": {"a": {"$zz": 1}}}]}',
        ],
    )
    assert result.exit_code != 0
    assert "'bad'" in result.output
    assert "$zz" in result.output
