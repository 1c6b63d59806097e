"""Replays what wapiti and XSStrike found in the deliberately vulnerable app.

``tests/waf/data/scanner_findings.jsonl`` is our own recording: the findings of
``benchmarks/waf_scanners.py --record`` on the bare app, each one verified there (the payload
really exploits the page). Every one must be blocked at every paranoia level. The direct
exploit probes (the shapes scanners got through: alias calls, template expressions, short
metadata host names) are replayed the same way, and both sets are checked against the bare
app in process, so a payload that stopped exploiting it would show.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import pytest

from cognitionos.waf import Firewall, Request

_DATA = Path(__file__).parent / "data" / "scanner_findings.jsonl"
_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
FINDINGS = [json.loads(line) for line in _DATA.read_text("utf-8").splitlines() if line]
HEADERS = [
    ("Host", "127.0.0.1:8000"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:60.0) Gecko/20100101 Firefox/60.0"),
    ("Accept", "*/*"),
]


def _load(name: str) -> ModuleType:
    path = _BENCH / f"{name}.py"
    if not path.exists():
        pytest.skip("benchmarks/ not present")
    pytest.importorskip("starlette")
    sys.path.insert(0, str(_BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(_BENCH))
    return module


def target(row: dict[str, str]) -> str:
    return f"{row['path']}?{row['param']}={quote(row['payload'], safe='')}"


def _asgi_get(app, path_qs: str) -> str:
    """The body of ``GET path_qs`` from an ASGI app, run in process."""
    path, _, query = path_qs.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in HEADERS],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    chunks: list[bytes] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    asyncio.run(app(scope, receive, send))
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def fw() -> Firewall:
    return Firewall(paranoia=1)


def test_the_recording_covers_both_scanners_and_every_scanned_flaw():
    scanners = {row["scanner"].split(":")[0] for row in FINDINGS}
    assert scanners == {"wapiti", "xsstrike"}
    assert {"/search", "/greet", "/ping", "/file"} <= {row["path"] for row in FINDINGS}
    assert any(row["payload"] == "';(a=prompt,a())//" for row in FINDINGS)


@pytest.mark.parametrize("row", FINDINGS, ids=lambda r: f"{r['scanner']}{r['path']}")
def test_every_recorded_scanner_finding_is_blocked(fw, row):
    verdict = fw.inspect(Request.from_raw("GET", target(row), headers=HEADERS))
    assert verdict.blocked, (row, verdict.matches)


@pytest.mark.parametrize("paranoia", [2, 3, 4])
def test_recorded_findings_stay_blocked_at_higher_paranoia(paranoia):
    fw = Firewall(paranoia=paranoia)
    through = [
        row
        for row in FINDINGS
        if not fw.inspect(Request.from_raw("GET", target(row), headers=HEADERS)).blocked
    ]
    assert through == []


@pytest.mark.parametrize("paranoia", [1, 2, 3, 4])
def test_direct_probes_are_blocked_at_every_paranoia_level(paranoia):
    fw = Firewall(paranoia=paranoia)
    bench = _load("waf_scanners")
    through = [
        (path, payload)
        for path, payload in bench.PROBES
        if not fw.inspect(
            Request.from_raw(
                "GET",
                target({"path": path, "param": bench.PAGES[path][1], "payload": payload}),
                headers=HEADERS,
            )
        ).blocked
    ]
    assert through == []


def test_recorded_findings_and_probes_exploit_the_bare_app():
    bench = _load("waf_scanners")
    app = bench.build_app()
    rows = [*FINDINGS]
    rows += [{"path": p, "param": bench.PAGES[p][1], "payload": v} for p, v in bench.PROBES]
    if importlib.util.find_spec("jinja2") is None:
        rows = [r for r in rows if r["path"] != "/preview"]
    failed = [
        r for r in rows if not bench.works(r["path"], r["payload"], _asgi_get(app, target(r)))
    ]
    assert failed == []
