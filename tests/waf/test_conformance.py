"""Detection quality on the shared WAF data sets (../shared/data/waf), as floors under the
measured rates so regressions fail. ``python benchmarks/waf_eval.py`` prints the full table."""

from __future__ import annotations

import base64
import json
import random
import urllib.parse
from collections import defaultdict

import pytest

from cognitionos.waf import Firewall, Request

pytestmark = pytest.mark.slow

HEADERS = [
    ("Host", "app.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
    ("Accept", "text/html,*/*;q=0.8"),
]


def dev_request(sent: str, encoding: str) -> Request:
    target = f"/?{sent}" if encoding == "query" else f"/?q={sent}"
    return Request.from_raw("GET", target, headers=HEADERS, client_ip="198.51.100.7")


def crs_request(row: dict) -> Request:
    if row.get("encoded_request"):
        raw = base64.b64decode(row["encoded_request"])
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, *rest = lines[0].split(" ")
        headers = [
            (k.strip(), v.strip())
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)
        ]
        version = rest[0].split("/", 1)[-1] if rest else "0.9"
        return Request.from_raw(method, target, headers=headers, body=body, http_version=version)
    headers = list(map(tuple, row.get("effective_headers") or []))
    body = row.get("body") or ""
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    version = str(row.get("version") or "HTTP/1.1").split("/", 1)[-1]
    return Request.from_raw(
        row["method"],
        row["uri"],
        headers=headers,
        body=body.encode("utf-8", "surrogateescape"),
        http_version=version,
    )


@pytest.fixture(scope="module")
def dev(data_file):
    fw = Firewall()
    rates: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    blocked_attacks = []
    with data_file("waf/payloads_dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            blocked = fw.inspect(dev_request(row["sent"], row.get("encoding", "raw"))).blocked
            key = row["category"] if row["label"] == "attack" else f"fp:{row['source']}"
            rates[key][0] += blocked
            rates[key][1] += 1
            if blocked and row["label"] == "attack":
                blocked_attacks.append(row)
    return {k: h / n for k, (h, n) in rates.items()}, blocked_attacks


def test_dev_per_category_floors(dev):
    rates, _ = dev
    assert rates["sqli"] >= 0.980
    assert rates["xss"] >= 0.985
    assert rates["path-traversal"] >= 0.85
    assert rates["cmdi"] >= 0.93


def test_dev_category_balanced_pooled(dev):
    rates, _ = dev
    attack = [v for k, v in rates.items() if not k.startswith("fp:")]
    assert sum(attack) / len(attack) >= 0.975


def test_dev_false_positive_ceilings(dev):
    rates, _ = dev
    assert rates["fp:HttpParamsDataset"] <= 0.001
    assert rates["fp:libinjection"] <= 0.03
    assert rates["fp:gotestwaf"] == 0.0


def test_crs_pl1_blocked_recall(data_file):
    fw = Firewall()
    hit = total = 0
    with data_file("waf/crs_tests.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("phase") != "request" or not row.get("crs_block_pl1"):
                continue
            total += 1
            hit += fw.inspect(crs_request(row)).blocked
    assert total > 2000
    assert hit / total >= 0.905


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="", errors="surrogatepass")


EVASIONS = {
    "double-url": lambda t, r: _q(_q(t)),
    "random-case": lambda t, r: _q(
        "".join(c.upper() if r.random() < 0.5 else c.lower() for c in t)
    ),
    "full-width": lambda t, r: _q(
        "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in t)
    ),
    "html-entities": lambda t, r: _q(
        "".join(f"&#x{ord(c):x};" if not c.isalnum() and c != " " else c for c in t)
    ),
}


def test_evasion_robustness_on_a_sample(dev):
    _, blocked_attacks = dev
    rng = random.Random(7)
    by_category: dict[str, list[dict]] = defaultdict(list)
    for row in blocked_attacks:
        by_category[row["category"]].append(row)
    sample = [r for rows in by_category.values() for r in rng.sample(rows, min(40, len(rows)))]
    fw = Firewall()
    hit = total = 0
    for transform in EVASIONS.values():
        for row in sample:
            total += 1
            hit += fw.inspect(dev_request(transform(row["decoded"], rng), "raw")).blocked
    sqli = [r for r in sample if r["category"] == "sqli"]
    for row in sqli:
        total += 1
        hit += fw.inspect(dev_request(_q(row["decoded"].replace(" ", "/**/")), "raw")).blocked
    assert hit / total >= 0.99
