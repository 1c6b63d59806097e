"""``cognitionos audit``: keygen, sign, export, verify (exit 1 naming the entry), proof."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cognitionos.cli import main


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("COGNITIONOS_STORE", raising=False)
    return CliRunner()


def ok(result: object) -> object:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return result


def test_round_trip_and_tamper(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store = ["--store", f"sqlite:///{db}"]
    key = tmp_path / "k.hex"
    public = ok(runner.invoke(main, ["audit", "keygen", "--out", str(key)])).stdout.strip()
    assert len(bytes.fromhex(public)) == 32
    assert key.stat().st_mode & 0o777 == 0o600
    for i in range(5):
        diff = json.dumps({"n": i})
        result = ok(
            runner.invoke(
                main,
                [
                    "audit",
                    "append",
                    "acme",
                    "alice",
                    "key.create",
                    f"keys/{i}",
                    "--diff",
                    diff,
                    *store,
                    "--json",
                ],
            )
        )
        assert json.loads(result.stdout)["index"] == i
    sth = json.loads(
        ok(runner.invoke(main, ["audit", "sign", "--key-file", str(key), *store, "--json"])).stdout
    )
    assert sth["tree_size"] == 5
    sth_file = tmp_path / "sth.json"
    sth_file.write_text(json.dumps(sth))

    export = json.loads(ok(runner.invoke(main, ["audit", "export", *store, "--json"])).stdout)
    assert [e["index"] for e in export["entries"]] == list(range(5))
    assert export["tree_heads"][0]["root_hash"] == sth["root_hash"]
    export_file = tmp_path / "log.json"
    export_file.write_text(json.dumps(export))

    verdict = ok(runner.invoke(main, ["audit", "verify", *store, "--public-key", public]))
    assert "ok: 5 entries" in verdict.stdout
    ok(
        runner.invoke(
            main,
            [
                "audit",
                "verify",
                "--file",
                str(export_file),
                "--sth",
                str(sth_file),
                "--public-key",
                public,
            ],
        )
    )

    proof = json.loads(
        ok(runner.invoke(main, ["audit", "proof", "--index", "3", *store, "--json"])).stdout
    )
    assert proof["verified"] and proof["root_hash"] == sth["root_hash"]
    assert len(proof["proof"]) == 3  # ceil(log2(5))
    cons = json.loads(
        ok(runner.invoke(main, ["audit", "proof", "--from", "2", *store, "--json"])).stdout
    )
    assert cons["verified"] and cons["second_root"] == sth["root_hash"]

    # edit one stored row: verify exits 1 and names it
    conn = sqlite3.connect(db)
    (payload,) = conn.execute(
        "SELECT payload FROM cos_events WHERE stream='audit' AND seq=4"
    ).fetchone()
    doc = json.loads(payload)
    doc["leaf"]["actor"] = "mallory"
    conn.execute(
        "UPDATE cos_events SET payload=? WHERE stream='audit' AND seq=4",
        (json.dumps(doc).encode(),),
    )
    conn.commit()
    conn.close()
    bad = runner.invoke(main, ["audit", "verify", *store, "--public-key", public, "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["first_bad_index"] == 3
    text = runner.invoke(main, ["audit", "verify", *store, "--public-key", public])
    assert text.exit_code == 1 and "entry 3" in text.stdout

    # a signature made with another key is refused
    other = tmp_path / "other.hex"
    other_public = ok(runner.invoke(main, ["audit", "keygen", "--out", str(other)])).stdout.strip()
    wrong = runner.invoke(
        main,
        [
            "audit",
            "verify",
            "--file",
            str(export_file),
            "--sth",
            str(sth_file),
            "--public-key",
            other_public,
        ],
    )
    assert wrong.exit_code == 1 and "bad signature" in wrong.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "verify", "--file", "/nonexistent.json"], "--file '/nonexistent.json'"),
        (["audit", "sign"], "sign needs --key-file or --hmac-key-file"),
        (["audit", "proof"], "give exactly one of --index or --from"),
        (["audit", "proof", "--index", "9"], "index 9 is outside"),
        (["audit", "append", "t", "a", "x", "y", "--diff", "{"], "--diff is not JSON"),
        (["audit", "verify", "--public-key", "zz"], "no signed tree head"),
    ],
)
def test_errors_are_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(main, [*args, "--store", f"sqlite:///{tmp_path / 'e.db'}"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
