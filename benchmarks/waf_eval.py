"""Evaluate cognitionos.waf on the shared WAF data sets and print the table.

    python benchmarks/waf_eval.py [--paranoia 1] [--evasion-sample 0]

Data: ../shared/data/waf/payloads_dev.jsonl and crs_tests.jsonl (found by
cognitionos.testing.shared_data). Requests are built from the ``sent`` field:
``GET /?q=<sent>`` (or ``GET /?<sent>`` when ``encoding == "query"``); CRS
request-phase rows are replayed with their method, URI, headers and body.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cognitionos.testing import shared_data
from cognitionos.waf import Firewall, Request

BROWSER_HEADERS = [
    ("Host", "app.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
]


def dev_request(sent: str, encoding: str) -> Request:
    """The request a dev row stands for."""
    target = f"/?{sent}" if encoding == "query" else f"/?q={sent}"
    return Request.from_raw("GET", target, headers=BROWSER_HEADERS, client_ip="198.51.100.7")


def load_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _parse_raw_http(raw: bytes) -> Request:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    method, target = parts[0], parts[1] if len(parts) > 1 else "/"
    version = parts[2].split("/", 1)[-1] if len(parts) > 2 else "0.9"
    headers = [
        (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)
    ]
    return Request.from_raw(
        method, target, headers=headers, body=body, client_ip="198.51.100.7", http_version=version
    )


def crs_request(row: dict[str, Any]) -> Request:
    """The request a CRS regression row stands for (request phase only)."""
    if row.get("encoded_request"):
        return _parse_raw_http(base64.b64decode(row["encoded_request"]))
    headers = [(k, v) for k, v in row.get("effective_headers") or []]
    body = row.get("body") or ""
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    version = str(row.get("version") or "HTTP/1.1").split("/", 1)[-1]
    return Request.from_raw(
        row["method"],
        row["uri"],
        headers=headers,
        body=body.encode("utf-8", "surrogateescape"),
        client_ip="198.51.100.7",
        http_version=version,
    )


# ------------------------------------------------------------------ evasion transforms


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="", errors="surrogatepass")


def double_url_encode(text: str, rng: random.Random) -> str:
    return _q(_q(text))


def random_case(text: str, rng: random.Random) -> str:
    return _q("".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text))


def inline_sql_comments(text: str, rng: random.Random) -> str:
    return _q(text.replace(" ", "/**/"))


def full_width(text: str, rng: random.Random) -> str:
    return _q("".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c.isalpha() else c for c in text))


def html_entities(text: str, rng: random.Random) -> str:
    return _q("".join(f"&#x{ord(c):x};" if not c.isalnum() and c != " " else c for c in text))


EVASIONS: dict[str, tuple[Callable[[str, random.Random], str], frozenset[str] | None]] = {
    "double-url": (double_url_encode, None),
    "random-case": (random_case, None),
    "sql-comments": (inline_sql_comments, frozenset({"sqli"})),
    "full-width": (full_width, None),
    "html-entities": (html_entities, None),
}


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:6.2f}%" if b else "   n/a"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--threshold", type=int, default=5)
    ap.add_argument(
        "--evasion-sample", type=int, default=0, help="attacks per category for evasion (0 = all)"
    )
    ap.add_argument(
        "--show-misses", type=int, default=0, help="print up to N missed payloads per group"
    )
    ap.add_argument("--json", action="store_true", help="print the summary numbers as JSON too")
    args = ap.parse_args()
    fw = Firewall(paranoia=args.paranoia, threshold=args.threshold)

    rows = list(load_jsonl(shared_data("waf/payloads_dev.jsonl")))
    t0 = time.perf_counter()
    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: dict[tuple[str, str], list[str]] = defaultdict(list)
    blocked_attacks: list[dict[str, Any]] = []
    for row in rows:
        v = fw.inspect(dev_request(row["sent"], row.get("encoding", "raw")))
        key = (row["source"], row["category"])
        hits[key][1] += 1
        hit = v.blocked
        if hit:
            hits[key][0] += 1
        if row["label"] == "attack":
            by_cat[row["category"]][1] += 1
            by_cat[row["category"]][0] += hit
            if hit:
                blocked_attacks.append(row)
            else:
                misses[key].append(row["decoded"])
        elif hit:
            misses[key].append(row["decoded"] + "   <- " + ",".join(sorted(v.rule_ids)))
    dev_seconds = time.perf_counter() - t0
    summary: dict[str, Any] = {}

    print(
        f"\n== payloads_dev.jsonl ({len(rows)} rows, paranoia {args.paranoia}, "
        f"threshold {args.threshold}, "
        f"{dev_seconds:.1f}s, {1e6 * dev_seconds / len(rows):.0f} us/request)"
    )
    print(f"{'source':<20}{'category':<16}{'n':>7}  {'blocked':>8}")
    for (source, cat), (h, n) in sorted(hits.items()):
        print(
            f"{source:<20}{cat:<16}{n:>7}  {pct(h, n)}"
            f"{'   (false positives)' if cat == 'benign' else ''}"
        )
    print(f"\n{'category (all sources)':<36}{'n':>7}  {'blocked':>8}")
    rates = []
    for cat, (h, n) in sorted(by_cat.items()):
        rates.append(h / n)
        summary[f"dev:{cat}"] = h / n
        print(f"{cat:<36}{n:>7}  {pct(h, n)}")
    pooled = sum(rates) / len(rates)
    summary["dev:pooled"] = pooled
    print(f"{'category-balanced pooled':<36}{'':>7}  {100 * pooled:6.2f}%")
    for source in sorted({s for s, c in hits if c == "benign"}):
        h, n = hits[(source, "benign")]
        summary[f"fp:{source}"] = h / n
        print(f"{'FP ' + source:<36}{n:>7}  {pct(h, n)}")

    # CRS regression tests
    crs = [r for r in load_jsonl(shared_data("waf/crs_tests.jsonl")) if r.get("phase") == "request"]
    crs_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    crs_pass: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    crs_miss: dict[str, list[str]] = defaultdict(list)
    for row in crs:
        v = fw.inspect(crs_request(row))
        bucket = crs_cat if row.get("crs_block_pl1") else crs_pass
        bucket[row["category"]][1] += 1
        bucket[row["category"]][0] += v.blocked
        if row.get("crs_block_pl1") and not v.blocked:
            crs_miss[row["category"]].append(
                f"{row['id']}: {row['method']} {row['uri'][:100]} {str(row.get('body'))[:80]!r}"
            )
    print(f"\n== crs_tests.jsonl, request phase ({len(crs)} rows)")
    print(
        f"{'category':<46}{'CRS-PL1 blocks':>15}  {'we block':>8}   "
        f"{'CRS passes':>10}  {'we block':>8}"
    )
    th = tn = 0
    for cat in sorted(set(crs_cat) | set(crs_pass)):
        h, n = crs_cat[cat]
        ph, pn = crs_pass[cat]
        th += h
        tn += n
        print(f"{cat:<46}{n:>15}  {pct(h, n)}   {pn:>10}  {pct(ph, pn)}")
    summary["crs:pl1_recall"] = th / tn
    print(f"{'recall on CRS-PL1-blocked rows':<46}{tn:>15}  {pct(th, tn)}")

    # Evasion robustness
    rng = random.Random(1234)
    sample = blocked_attacks
    if args.evasion_sample:
        per: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in blocked_attacks:
            per[row["category"]].append(row)
        sample = [
            r for rs in per.values() for r in rng.sample(rs, min(len(rs), args.evasion_sample))
        ]
    ev_tot = ev_hit = 0
    print(f"\n== evasion robustness over {len(sample)} blocked dev attacks")
    ev_miss: dict[str, list[str]] = defaultdict(list)
    for name, (fn, cats) in EVASIONS.items():
        h = n = 0
        for row in sample:
            if cats is not None and row["category"] not in cats:
                continue
            sent = fn(row["decoded"], rng)
            v = fw.inspect(dev_request(sent, "raw"))
            n += 1
            h += v.blocked
            if not v.blocked:
                ev_miss[name].append(row["decoded"])
        ev_tot += n
        ev_hit += h
        summary[f"evasion:{name}"] = h / n if n else 1.0
        print(f"{name:<36}{n:>7}  {pct(h, n)}")
    summary["evasion:all"] = ev_hit / ev_tot if ev_tot else 1.0
    print(f"{'all evasions':<36}{ev_tot:>7}  {pct(ev_hit, ev_tot)}")

    if args.show_misses:
        print("\n== misses / false positives")
        for key, values in sorted(misses.items()):
            print(f"-- {key} ({len(values)})")
            for value in values[: args.show_misses]:
                print("   ", repr(value[:160]))
        for cat, values in sorted(crs_miss.items()):
            print(f"-- CRS {cat} ({len(values)})")
            for value in values[: args.show_misses]:
                print("   ", value)
        for name, values in sorted(ev_miss.items()):
            print(f"-- evasion {name} ({len(values)})")
            for value in values[: args.show_misses]:
                print("   ", repr(value[:160]))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
