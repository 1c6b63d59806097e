"""Replay of sqlmap's injections against a numeric SQLite parameter: every one is blocked.

``data/sqlmap_requests.jsonl`` is our own recording (``python benchmarks/waf_sqlmap.py --record
tests/waf/data/sqlmap_requests.jsonl``): the distinct requests of sqlmap's runs against the bare
app, with no tamper and with each tamper script, whose ``id`` value ran as SQL and was more
than a number - the injections that worked.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cognitionos.waf import Firewall, Request

RECORDING = Path(__file__).parent / "data" / "sqlmap_requests.jsonl"
HEADERS = [
    ("Host", "127.0.0.1"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "*/*"),
]


def _recorded() -> list[dict[str, str]]:
    with RECORDING.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_recording_covers_the_tampers() -> None:
    rows = _recorded()
    per_tamper = Counter(row["tamper"] for row in rows)
    assert "(none)" in per_tamper
    assert {"between", "equaltolike"} <= set(per_tamper)
    assert len(per_tamper) >= 11 and len(rows) >= 200


@pytest.mark.parametrize("paranoia", [1, 2])
def test_every_recorded_injection_is_blocked(paranoia: int) -> None:
    fw = Firewall(paranoia=paranoia)
    passed = [
        row
        for row in _recorded()
        if not fw.inspect(
            Request.from_raw("GET", row["target"], headers=HEADERS, client_ip="127.0.0.1")
        ).blocked
    ]
    assert passed == []
