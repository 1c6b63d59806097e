"""CPU cost of Firewall.inspect on four request archetypes, rule-set compile time and the
worst 100 KB adversarial body.

    python benchmarks/waf_perf.py [--rounds 2000] [--interleave 100] [--no-adversarial]
        [--only small,form]

Ours is measured twice per round: with the shipped shortcuts (``Firewall()``: numbers and 1-2
character tokens skip the detectors, proven equivalent by tests/waf/test_shortcuts.py) and with
them off (``Firewall(shortcuts=False)``: every detector on every value). Both sides inspect the
same parts of each request (see docs/waf.md, "What each side inspects").

The oracle, libmodsecurity + OWASP CRS, is measured in the same run when given: it runs in a
separate interpreter so it never becomes a dependency of ours, kept running so that its rounds
alternate with ours (``--interleave`` rounds per archetype; the ratio printed is the median of
the per-round ratios), e.g.

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


def cpu_times(fn: Callable[[], object], rounds: int, warm: int = 1) -> list[float]:
    for _ in range(warm):
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

args = json.loads(sys.stdin.readline())
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

# Serve rounds: each input line "name count" -> the CPU microseconds of count inspections.
for name, r in args["requests"].items():
    inspect(r)
print("ready", flush=True)
for line in sys.stdin:
    name, count = line.split("\t")
    r = args["requests"][name]
    for _ in range(max(3, int(count) // 4)):  # warm caches again after the other side's round
        inspect(r)
    times = []
    for _ in range(int(count)):
        t = time.process_time_ns()
        inspect(r)
        times.append((time.process_time_ns() - t) / 1000.0)
    print(json.dumps(times), flush=True)
"""


class ModSecurityPeer:
    """libmodsecurity + CRS in a separate interpreter (a venv with the ``libmodsecurity`` wheel),
    kept running so that its rounds interleave with ours: a burst of load on this shared machine
    then slows both sides of a round, not one side of the whole comparison."""

    def __init__(self, python: str, setup: str, rules: str) -> None:
        requests = {
            name: {
                "method": r.method,
                "target": r.target,
                "headers": list(r.headers),
                "body": base64.b64encode(r.body).decode(),
            }
            for name, r in archetypes().items()
        }
        self._proc = subprocess.Popen(
            [python, "-c", PEER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        config = {"setup": setup, "rules": rules, "requests": requests}
        self._proc.stdin.write(json.dumps(config) + "\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline().strip() != "ready":
            self._proc.kill()
            raise RuntimeError(self._proc.stderr.read().strip()[-300:] if self._proc.stderr else "")

    def times(self, name: str, count: int) -> list[float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{name}\t{count}\n")
        self._proc.stdin.flush()
        result: list[float] = json.loads(self._proc.stdout.readline())
        return result

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)


def modsecurity_peer(
    python: str | None, setup: str | None, rules: str | None
) -> ModSecurityPeer | None:
    """The oracle, or None with the reason printed."""
    if not (python and setup and rules):
        print(
            "peer: libmodsecurity + CRS not configured (--peer-python, --crs-setup, --crs-rules) - "
            "no oracle in this run"
        )
        return None
    try:
        return ModSecurityPeer(python, setup, rules)
    except (OSError, RuntimeError) as exc:
        print(f"peer: libmodsecurity run failed: {exc}")
        return None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=2000, help="our inspections per archetype")
    ap.add_argument(
        "--interleave", type=int, default=100, help="rounds, ours and the peer's alternating"
    )
    ap.add_argument(
        "--peer-python", default=None, help="python of a venv with the libmodsecurity wheel"
    )
    ap.add_argument("--crs-setup", default=None, help="crs-setup.conf of an OWASP CRS install")
    ap.add_argument("--crs-rules", default=None, help="rules/ directory of that CRS install")
    ap.add_argument(
        "--no-adversarial", action="store_true", help="skip the 100 KB adversarial bodies"
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated starts of archetype names to run (e.g. 'small,form'); default all",
    )
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
    full = Firewall(shortcuts=False)
    peer = modsecurity_peer(args.peer_python, args.crs_setup, args.crs_rules)
    header = f"\n{'archetype':<28}{'p50 us':>9}{'p99 us':>9}{'req/s/core':>12}{'p50 no-sc':>11}"
    print(
        header
        + (
            f"{'CRS p50':>10}{'CRS p99':>10}{'ratio':>8}{'no-sc':>8}{'rounds range':>16}"
            if peer
            else ""
        )
    )
    rounds = max(1, args.interleave)
    ours_per_round = max(1, args.rounds // rounds)
    only = tuple(part.strip() for part in args.only.split(",") if part.strip())
    for name, req in archetypes().items():
        if only and not name.startswith(only):
            continue
        times: list[float] = []
        full_times: list[float] = []
        peer_times: list[float] = []
        ratios: list[float] = []
        full_ratios: list[float] = []
        for _ in range(rounds):
            # both sides warm up again after the other's round (a quarter of the round)
            mine = cpu_times(lambda r=req: fw.inspect(r), ours_per_round, ours_per_round // 4)
            times += mine
            mine_full = cpu_times(
                lambda r=req: full.inspect(r), ours_per_round, ours_per_round // 4
            )
            full_times += mine_full
            if peer is not None:
                # the peer is ~10x slower: a fifth as many inspections keeps rounds comparable
                theirs = peer.times(name, max(3, ours_per_round // 5))
                peer_times += theirs
                ratios.append(statistics.median(theirs) / statistics.median(mine))
                full_ratios.append(statistics.median(theirs) / statistics.median(mine_full))
        p50, p99 = statistics.median(times), pct(times, 0.99)
        line = (
            f"{name:<28}{p50:>9.1f}{p99:>9.1f}{1e6 / statistics.mean(times):>12.0f}"
            f"{statistics.median(full_times):>11.1f}"
        )
        if peer is not None:
            spread = f"{min(ratios):.1f}-{max(ratios):.1f}x"
            line += (
                f"{statistics.median(peer_times):>10.1f}{pct(peer_times, 0.99):>10.1f}"
                f"{statistics.median(ratios):>7.1f}x{statistics.median(full_ratios):>7.1f}x"
                f"{spread:>16}"
            )
        print(line)
    if peer is not None:
        peer.close()
        print(
            "ratio: the median over rounds of (peer p50 / our p50) within a round; ours and the "
            "peer's rounds alternate; no-sc: ours with shortcuts=False"
        )
    if args.no_adversarial:
        return

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
