"""The main job on the embedded default: a SQLite file for durable state, memory for hot state.

Run: python examples/quickstart.py [--db PATH]

A small request pipeline assembled from the engines, as a service would embed them:
WAF (with an auto-blacklist kept in SQLite) -> rate limiter (memory) -> feature flags
(definitions in SQLite, with an audit trail). It replays a burst of traffic from three
clients, prints what each engine decided, and exits non-zero if a decision is wrong.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from cognitionos.flags import FlagDefinition, FlagEngine
from cognitionos.ratelimit import Limit, RateLimiter
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall, Request

TRAFFIC = [
    # (client ip, target as sent on the wire)
    *[("198.51.100.7", f"/products?page={n}") for n in range(8)],  # a busy but honest client
    *[("203.0.113.9", "/search?q=%27%20union%20select%20password%20from%20users--")] * 4,
    ("203.0.113.9", "/search?q=shoes"),  # benign, but this client is banned by now
    ("192.0.2.33", "/search?q=running+shoes"),
    ("192.0.2.33", "/checkout"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="cognitionos-")) / "cognitionos.db"

    durable = open_store(f"sqlite:///{db}")  # bans, flag definitions, audit trail
    firewall = Firewall(paranoia=1, threshold=5)
    blacklist = AutoBlacklist(durable, threshold=3, window=60, ban_seconds=600)
    limiter = RateLimiter("memory://", algorithm="sliding_log")  # exact: 5 in any second
    per_ip = Limit.parse("5/second")
    flags = FlagEngine(store=durable, actor="quickstart")
    flags.set_flag(FlagDefinition(key="new-checkout", default_value=True))

    outcomes: Counter[str] = Counter()
    try:
        for ip, target in TRAFFIC:
            request = Request.from_raw(
                "GET", target, headers=[("Host", "shop.example")], client_ip=ip
            )
            if blacklist.is_banned(request):
                outcome = "403 banned"
            else:
                verdict = firewall.inspect(request)
                blacklist.record(request, verdict)
                if verdict.blocked:
                    outcome = f"403 waf {','.join(sorted(verdict.categories))}"
                elif not (decision := limiter.hit(per_ip, f"ip:{ip}")).allowed:
                    outcome = f"429 retry after {decision.retry_after:.2f}s"
                elif target == "/checkout":
                    on = flags.is_on("new-checkout", {"id": ip})
                    outcome = f"200 checkout ({'new' if on else 'old'} flow)"
                else:
                    outcome = "200"
            outcomes[f"{ip} {outcome}"] += 1
            print(f"{ip:>14} {target[:48]:<48} -> {outcome}")

        bans = [ban.client for ban in blacklist.bans()]
        audit = flags.audit("new-checkout")
        print(f"\nsqlite store:  {db}")
        print(f"banned:        {bans}")
        print(f"flag audit:    {[(entry['actor'], entry['action']) for entry in audit]}")
        expected = {
            "198.51.100.7 200": 5,  # five per second pass, the rest wait
            "198.51.100.7 429": 3,
            "203.0.113.9 403 waf sqli": 3,  # three attacks earn a ban
            "203.0.113.9 403 banned": 2,
            "192.0.2.33 200": 1,
            "192.0.2.33 200 checkout (new flow)": 1,
        }
        got = Counter()
        for key, n in outcomes.items():
            got[key.split(" retry")[0]] += n
        ok = got == Counter(expected) and bans == ["203.0.113.9"] and len(audit) == 1
        print("all decisions as expected" if ok else f"unexpected decisions: {dict(got)}")
        return 0 if ok else 1
    finally:
        flags.close()
        durable.close()


if __name__ == "__main__":
    raise SystemExit(main())
