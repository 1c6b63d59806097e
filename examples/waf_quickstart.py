"""Quickstart: inspect requests with the WAF and ban repeat offenders (runs as a test)."""

from __future__ import annotations

from cognitionos.clock import ManualClock
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall, Request

fw = Firewall(paranoia=1, threshold=5)
attack = Request.from_raw(
    "GET",
    "/search?q=%27%20or%201%3D1--",
    headers=[("Host", "shop.example")],
    client_ip="203.0.113.9",
)
verdict = fw.inspect(attack)
print(
    verdict.blocked, verdict.score, [(m.rule_id, m.category, m.location) for m in verdict.matches]
)

clock = ManualClock(start=1_700_000_000)
bans = AutoBlacklist(
    open_store("memory://", clock=clock), threshold=3, window=60, ban_seconds=600, clock=clock
)
for _ in range(3):
    bans.record(attack, fw.inspect(attack))
print("banned:", bans.is_banned(attack) is not None)

assert verdict.blocked and "sqli" in verdict.categories
assert bans.is_banned(attack) is not None
