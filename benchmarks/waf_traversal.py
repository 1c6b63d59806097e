"""Recall of the WAF on generated path-traversal payloads, and false positives on file paths.

    python benchmarks/waf_traversal.py [--count 3000] [--seed 7] [--paranoia 1] [--show-misses 20]

Payloads come from :mod:`cognitionos.testing.traversal` (our own generator: percent, double and
invalid escapes, ``%uXXXX`` and look-alike dots and slashes, overlong UTF-8 in 2-, 3- and 4-byte
forms, hex spelled as text, mixed and doubled separators; Unix and Windows target files). They
are split with a fixed seed into a dev part (used to improve detection) and a held-back part
(only reported). Benign: generated file paths users legitimately send.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from cognitionos.testing.traversal import (
    benign_file_paths,
    split_payloads,
    traversal_payloads,
)
from cognitionos.waf import Firewall, Request

HEADERS = [
    ("Host", "app.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "*/*"),
]

#: The generator's defaults the test and docs/waf.md figures use.
COUNT = 3000
SEED = 7


def request(target: str) -> Request:
    """A browser-like GET of ``target``."""
    return Request.from_raw("GET", target, headers=HEADERS, client_ip="198.51.100.7")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=COUNT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--paranoia", type=int, default=1)
    ap.add_argument("--show-misses", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fw = Firewall(paranoia=args.paranoia)
    dev, held = split_payloads(traversal_payloads(args.count, seed=args.seed), seed=args.seed)
    summary: dict[str, float] = {}
    for name, part in (("dev", dev), ("held-back", held)):
        by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        misses: list[str] = []
        climbs = 0
        for p in part:
            verdict = fw.inspect(request(p.target))
            blocked = verdict.blocked
            # 930100 is the "../" rule: did the climb itself get recognised, not only the file?
            climbs += "930100" in verdict.rule_ids
            for key in (p.family, p.os, "all"):
                by[key][0] += blocked
                by[key][1] += 1
            if not blocked:
                misses.append(p.target)
        print(f"== {name}: {len(part)} payloads, paranoia {args.paranoia}")
        for key, (h, n) in sorted(by.items()):
            print(f"   {key:<10}{n:>6}  {100 * h / n:6.2f} % blocked")
        print(f"   {'../ seen':<10}{len(part):>6}  {100 * climbs / len(part):6.2f} % (rule 930100)")
        summary[f"recall:{name}"] = by["all"][0] / by["all"][1]
        summary[f"climb:{name}"] = climbs / len(part)
        for target in misses[: args.show_misses]:
            print("   miss:", target)
    benign = benign_file_paths(1000, seed=args.seed)
    fps = [t for t in benign if fw.inspect(request(t)).blocked]
    summary["fp:benign-paths"] = len(fps) / len(benign)
    print(f"== benign file paths: {len(benign)}, {100 * len(fps) / len(benign):.2f} % blocked")
    for target in fps[: args.show_misses]:
        print("   false positive:", target)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
