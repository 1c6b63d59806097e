"""The ``waf`` click group: scan, explain, bans."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cognitionos.waf._cli import waf


def test_scan_jsonl_requests_and_values(tmp_path):
    lines = [
        {
            "method": "GET",
            "uri": "/?q=%27%20or%201%3D1--",
            "headers": {"Host": "h", "Accept": "*/*"},
        },
        {"method": "GET", "uri": "/?q=hello", "headers": {"Host": "h", "Accept": "*/*"}},
        {"payload": "<script>alert(1)</script>"},
    ]
    path = tmp_path / "reqs.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    result = CliRunner().invoke(waf, ["scan", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 requests, 2 blocked" in result.output
    assert "sqli" in result.output and "xss" in result.output


def test_scan_json_output(tmp_path):
    path = tmp_path / "reqs.jsonl"
    path.write_text(json.dumps({"payload": "../../etc/passwd"}))
    result = CliRunner().invoke(waf, ["scan", "--json", str(path)])
    first = json.loads(result.stdout)["requests"][0]
    assert first["blocked"] is True
    assert {m["category"] for m in first["matches"]} == {"path-traversal"}


def test_scan_raw_http(tmp_path):
    raw = (
        b"POST /login HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 22\r\n\r\nuser=admin'--&pass=xy\r\n"
        b"GET /ok HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
    )
    path = tmp_path / "reqs.http"
    path.write_bytes(raw)
    result = CliRunner().invoke(waf, ["scan", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 requests, 1 blocked" in result.output


def test_explain_shows_steps_and_rules():
    result = CliRunner().invoke(waf, ["explain", "%2527%20union%20select%201--"])
    assert result.exit_code == 0
    assert "url_decode_repeated" in result.output
    assert "' union select 1--" in result.output
    assert "942100" in result.output and "BLOCK" in result.output


def test_bans_ban_list_unban_old_spelling(tmp_path):
    url = f"sqlite:///{tmp_path / 'bans.db'}"
    runner = CliRunner()
    out = runner.invoke(waf, ["bans", "--store", url, "--ban", "203.0.113.9", "--seconds", "120"])
    assert out.exit_code == 0, out.output
    assert "1 active ban(s)" in out.output and "203.0.113.9" in out.output
    listed = runner.invoke(waf, ["bans", "--store", url])
    assert "203.0.113.9" in listed.output
    lifted = runner.invoke(waf, ["bans", "--store", url, "--unban", "203.0.113.9"])
    assert "unbanned 203.0.113.9" in lifted.output and "no bans" in lifted.output
    assert "deprecated: use 'cognitionos waf unban IP'" in lifted.stderr
