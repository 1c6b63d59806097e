"""CPU cost of Firewall.inspect on four request archetypes, rule-set compile time and the
worst 100 KB adversarial body.

    python benchmarks/waf_perf.py [--rounds 2000]

The oracle, libmodsecurity + OWASP CRS, is measured in the same run when given: it runs in a
separate interpreter so it never becomes a dependency of ours, e.g.

    python -m venv /tmp/msvenv && /tmp/msvenv/bin/pip install libmodsecurity
    apt-get download modsecurity-crs && dpkg -x modsecurity-crs_*.deb /tmp/crs
    python benchmarks/waf_perf.py --peer-python /tmp/msvenv/bin/python \\
        --crs-setup /tmp/crs/etc/modsecurity/crs/crs-setup.conf \\
        --crs-rules /tmp/crs/usr/share/modsecurity-crs/rules
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable

from cognitionos.waf import Firewall, Request

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
BASE = [
    ("Host", "shop.example.com"),
    ("User-Agent", UA),
    ("Accept", "text/html,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Cookie", "session=4f9a1c2e8b; theme=dark"),
]


def archetypes() -> dict[str, Request]:
    small = Request.from_raw("GET", "/products?id=42&sort=price&page=2", headers=BASE)
    beacon_args = "&".join(
        f"p{i}={urllib.parse.quote(f'value-{i}-{i * 7919 % 1000}')}" for i in range(40)
    )
    beacon = Request.from_raw("GET", "/collect?" + beacon_args, headers=BASE)
    form_body = "&".join(
        f"field{i}={urllib.parse.quote('Lorem ipsum dolor sit amet, consectetur ' + str(i))}"
        for i in range(36)
    ).encode()[:2048]
    form = Request.from_raw(
        "POST",
        "/checkout",
        headers=[
            *BASE,
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(len(form_body))),
        ],
        body=form_body,
    )
    items: list[dict[str, object]] = []
    json_body = b"{}"
    for i in range(1000):
        items.append(
            {
                "sku": f"SKU-{i:05d}",
                "name": f"Product number {i}",
                "qty": i % 5 + 1,
                "price": round(9.99 + i, 2),
                "tags": ["summer", "sale", f"t{i}"],
                "note": "gift wrap, please",
            }
        )
        candidate = json.dumps({"order": {"customer": "Ada Lovelace", "items": items}}).encode()
        if len(candidate) > 16384:
            break
        json_body = candidate
    json_req = Request.from_raw(
        "POST",
        "/api/orders",
        headers=[
            *BASE,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(json_body))),
        ],
        body=json_body,
    )
    return {
        "small GET (3 params)": small,
        "beacon GET (40 params)": beacon,
        f"form POST ({len(form_body)} B)": form,
        f"JSON POST ({len(json_body)} B)": json_req,
    }


def cpu_times(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()
    out = []
    for _ in range(rounds):
        start = time.process_time_ns()
        fn()
        out.append((time.process_time_ns() - start) / 1000.0)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


PEER_SCRIPT = r"""
import base64, glob, json, statistics, sys, time
import libmodsecurity as m

args = json.loads(sys.stdin.read())
ms = m.ModSecurity()
ms.set_log_callback(lambda line: None)
rules = m.RulesSet()
rules.load("SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 13107200\n"
           "SecRequestBodyNoFilesLimit 1048576\nSecRequestBodyLimitAction ProcessPartial\n"
           # the body processors of ModSecurity's recommended configuration
           'SecRule REQUEST_HEADERS:Content-Type "^application/json" '
           '"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"\n'
           'SecRule REQUEST_HEADERS:Content-Type "(?:application(?:/soap\\+|/)|text/)xml" '
           '"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"\n')
rules.load_from_uri(args["setup"])
for path in sorted(glob.glob(args["rules"] + "/*.conf")):
    if "910-IP-REPUTATION" in path:  # needs GeoIP, which the wheel is built without
        continue
    if rules.load_from_uri(path) < 0:
        raise SystemExit(rules.get_parser_error())

def inspect(r):
    tx = m.Transaction(ms, rules)
    tx.process_connection("198.51.100.7", 12345, "127.0.0.1", 80)
    tx.process_uri(r["target"], r["method"], "1.1")
    for k, v in r["headers"]:
        tx.add_request_header(k, v)
    tx.process_request_headers()
    body = base64.b64decode(r["body"])
    if body:
        tx.append_request_body(body)
    tx.process_request_body()
    return tx.intervention()

out = {}
for name, r in args["requests"].items():
    inspect(r)
    times = []
    for _ in range(args["rounds"]):
        t = time.process_time_ns()
        inspect(r)
        times.append((time.process_time_ns() - t) / 1000.0)
    times.sort()
    out[name] = [statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]]
print(json.dumps(out))
"""


def modsecurity_peer(
    python: str | None, setup: str | None, rules: str | None, rounds: int
) -> dict[str, list[float]] | None:
    """CPU p50/p99 of libmodsecurity + CRS per archetype, run in ``python`` (a separate venv that
    has the ``libmodsecurity`` wheel), or None with the reason printed."""
    if not (python and setup and rules):
        print(
            "peer: libmodsecurity + CRS not configured (--peer-python, --crs-setup, --crs-rules) - "
            "no oracle in this run"
        )
        return None
    requests = {
        name: {
            "method": r.method,
            "target": r.target,
            "headers": list(r.headers),
            "body": base64.b64encode(r.body).decode(),
        }
        for name, r in archetypes().items()
    }
    payload = json.dumps({"setup": setup, "rules": rules, "rounds": rounds, "requests": requests})
    done = subprocess.run(
        [python, "-c", PEER_SCRIPT], input=payload, capture_output=True, text=True
    )
    if done.returncode != 0:
        print(f"peer: libmodsecurity run failed: {done.stderr.strip()[-300:]}")
        return None
    result: dict[str, list[float]] = json.loads(done.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument(
        "--peer-python", default=None, help="python of a venv with the libmodsecurity wheel"
    )
    ap.add_argument("--crs-setup", default=None, help="crs-setup.conf of an OWASP CRS install")
    ap.add_argument("--crs-rules", default=None, help="rules/ directory of that CRS install")
    args = ap.parse_args()

    for mod in [m for m in sys.modules if m.startswith("cognitionos.waf")]:
        del sys.modules[mod]
    start = time.perf_counter()
    importlib.import_module("cognitionos.waf")
    fw_cls = sys.modules["cognitionos.waf"].Firewall
    fw = fw_cls()
    print(
        f"rule set import + compile: {1000 * (time.perf_counter() - start):.1f} ms "
        f"({len(fw.rules)} built-in rules at paranoia 1)"
    )

    fw = Firewall()
    peer = modsecurity_peer(
        args.peer_python, args.crs_setup, args.crs_rules, max(200, args.rounds // 5)
    )
    header = f"\n{'archetype':<28}{'p50 us':>9}{'p99 us':>9}{'req/s/core':>12}"
    print(header + (f"{'CRS p50':>10}{'CRS p99':>10}{'p50 ratio':>11}" if peer else ""))
    for name, req in archetypes().items():
        times = cpu_times(lambda r=req: fw.inspect(r), args.rounds)
        p50, p99 = statistics.median(times), pct(times, 0.99)
        line = f"{name:<28}{p50:>9.1f}{p99:>9.1f}{1e6 / statistics.mean(times):>12.0f}"
        if peer and name in peer:
            peer_p50, peer_p99 = peer[name]
            line += f"{peer_p50:>10.1f}{peer_p99:>10.1f}{peer_p50 / p50:>10.1f}x"
        print(line)

    worst = (0.0, "")
    for unit in [
        "\n",
        "$(",
        "${",
        "'",
        "<",
        "(",
        "%",
        "&#",
        "{{",
        "/*",
        "../",
        "|",
        "`",
        "a",
        "=",
        "[",
        "java.",
    ]:
        payload = (unit * (100_000 // len(unit) + 1))[:100_000]
        for ctype, body in (
            ("application/x-www-form-urlencoded", ("v=" + payload).encode()),
            ("application/json", json.dumps({"v": payload}).encode()),
        ):
            req = Request.from_raw(
                "POST", "/", headers=[("Host", "h"), ("Content-Type", ctype)], body=body
            )
            t = min(cpu_times(lambda r=req: fw.inspect(r), 3))
            worst = max(worst, (t, f"{unit!r} as {ctype}"))
    print(f"\nworst 100 KB adversarial body: {worst[0] / 1000:.1f} ms ({worst[1]})")


if __name__ == "__main__":
    main()
