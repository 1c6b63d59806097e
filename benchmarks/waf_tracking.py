"""False positives on generated tracking traffic, per shape and paranoia level.

    python benchmarks/waf_tracking.py [--n 4000] [--seed 20241203] [--paranoia 1,2]

The corpus is ``cognitionos.testing.tracking.tracking_requests``: analytics collect calls
(GA4, Universal Analytics, Snowplow, Matomo, Adobe, Mixpanel), ad and social pixels, ad-click
landing pages, signed storage URLs (AWS SigV4, GCS V2/V4, CloudFront, Azure SAS), JWTs and
OAuth/OIDC redirects. The suite asserts <= 0.3 % at paranoia 1 (tests/waf/test_tracking_traffic.py).
"""

from __future__ import annotations

import argparse
from collections import Counter

from cognitionos.testing.tracking import tracking_requests
from cognitionos.waf import Firewall, Request


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=20241203)
    ap.add_argument("--paranoia", default="1,2")
    ap.add_argument("--show", type=int, default=5, help="blocked examples printed per level")
    args = ap.parse_args()
    corpus = tracking_requests(args.n, seed=args.seed)
    totals = Counter(s.shape for s in corpus)
    for level in (int(p) for p in args.paranoia.split(",")):
        fw = Firewall(paranoia=level)
        blocked: Counter[str] = Counter()
        rules: Counter[tuple[str, str]] = Counter()
        shown = 0
        for sample in corpus:
            request = Request.from_raw(
                sample.method,
                sample.target,
                headers=list(sample.headers),
                body=sample.body,
                client_ip="198.51.100.7",
            )
            verdict = fw.inspect(request)
            if not verdict.blocked:
                continue
            blocked[sample.shape] += 1
            for m in verdict.matches:
                rules[(m.rule_id, m.location.split(":", 1)[0])] += 1
            if shown < args.show:
                shown += 1
                where = [(m.rule_id, m.location) for m in verdict.matches]
                print(f"  blocked {sample.shape}: {where}")
        n_blocked = sum(blocked.values())
        rate = n_blocked / len(corpus)
        print(f"== paranoia {level}: {n_blocked} / {len(corpus)} blocked = {rate:.2%}")
        for shape in sorted(totals):
            print(f"   {shape:24} {blocked[shape]:5} / {totals[shape]:5}")
        for (rule, where), count in rules.most_common(8):
            print(f"   rule {rule} in {where}: {count}")


if __name__ == "__main__":
    main()
