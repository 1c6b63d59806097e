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


def test_list_and_get_show_stored_flags_that_fail_to_load(tmp_path: Path) -> None:
    """Before: an invalid stored flag (it evaluates to PARSE_ERROR) was missing from ``list``
    and ``get`` said "not found", so nothing on the command line showed what was wrong."""
    from cognitionos.storage import open_store

    store = f"sqlite:///{tmp_path / 'f.db'}"
    _run(store, "set", "good", "--definition", '{"default_value": true}')
    raw = open_store(store)
    bad = {"key": "bad", "rules": [{"condition": {"a": {"$fromTheFuture": 1}}, "value": 2}]}
    raw.set("flags/def/bad", json.dumps(bad).encode())
    raw.close()

    listing = json.loads(_run(store, "list", "--json"))
    by_key = {row["key"]: row for row in listing}
    assert set(by_key) == {"good", "bad"}
    assert "invalid" not in by_key["good"]
    assert "$fromTheFuture" in by_key["bad"]["invalid"]

    result = CliRunner().invoke(flags, ["--store", store, "list"])
    assert result.exit_code == 0
    bad_line = next(line for line in result.stdout.splitlines() if " bad " in f"{line} ")
    assert bad_line.startswith("ERR") and "$fromTheFuture" in bad_line
    assert "PARSE_ERROR" in result.stderr

    result = CliRunner().invoke(flags, ["--store", store, "get", "bad"])
    assert result.exit_code == 1
    assert "stored but invalid" in result.output and "$fromTheFuture" in result.output
