"""Dump the verdict of every dev-corpus request, or compare two dumps request by request.

    python benchmarks/waf_verdicts.py dump before.jsonl [--paranoia 1] [--no-shortcuts]
    python benchmarks/waf_verdicts.py diff before.jsonl after.jsonl

A refactoring must leave every line identical; ``diff`` lists each request whose verdict
(blocked, score, sorted rule ids) changed. The corpus is payloads_dev.jsonl (as ``GET /?q=``)
and every row of crs_tests.jsonl (request phase or not: they are all requests), replayed as
``benchmarks/waf_eval.py`` replays them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from waf_eval import crs_request, dev_request, load_jsonl

from cognitionos.testing import shared_data
from cognitionos.waf import Firewall


def dump(out: Path, paranoia: int, shortcuts: bool) -> None:
    fw = Firewall(paranoia=paranoia, shortcuts=shortcuts)
    with out.open("w", encoding="utf-8") as fh:
        for row in load_jsonl(shared_data("waf/payloads_dev.jsonl")):
            v = fw.inspect(dev_request(row["sent"], row.get("encoding", "raw")))
            fh.write(json.dumps([row["id"], v.blocked, v.score, sorted(v.rule_ids)]) + "\n")
        for row in load_jsonl(shared_data("waf/crs_tests.jsonl")):
            try:
                req = crs_request(row)
            except (ValueError, IndexError) as exc:  # a row the replay cannot build
                fh.write(json.dumps([row["id"], "unbuildable", type(exc).__name__]) + "\n")
                continue
            v = fw.inspect(req)
            fh.write(json.dumps([row["id"], v.blocked, v.score, sorted(v.rule_ids)]) + "\n")


def diff(before: Path, after: Path) -> int:
    changed = 0
    a_lines = before.read_text(encoding="utf-8").splitlines()
    b_lines = after.read_text(encoding="utf-8").splitlines()
    for a, b in zip(a_lines, b_lines, strict=True):
        if a != b:
            changed += 1
            print(f"- {a}\n+ {b}")
    print(f"{changed} of {len(a_lines)} verdicts changed", file=sys.stderr)
    return 1 if changed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--paranoia", type=int, default=1)
    d.add_argument("--no-shortcuts", action="store_true")
    c = sub.add_parser("diff")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.cmd == "dump":
        dump(args.out, args.paranoia, not args.no_shortcuts)
    else:
        sys.exit(diff(args.before, args.after))


if __name__ == "__main__":
    main()
