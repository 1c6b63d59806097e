"""enforce() throughput: cognitionos.authz against pycasbin in the same run.

Run:  python benchmarks/authz_perf.py [--quick]

Scenarios (the same model text and policy rows are given to both enforcers, and
both answer the same requests; the decisions are compared before timing):

1. acl - basic ACL, 100 rows, requests hitting and missing.
2. rbac-domains - RBAC with domains (our server's shape): 20 tenants x 3 roles,
   role rows per tenant, keyMatch2 on the path, 2-level role inheritance.
3. restful - keyMatch2 + regexMatch on 50 RESTful rows.

Each scenario times N enforce() calls per repetition; the table shows the median
microseconds per call over repetitions and the ratio pycasbin / ours (higher is
better for us). Both sides do equal work: parse nothing, evaluate the matcher
over the rows in order and stop at the first allow (some(where allow)).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from cognitionos.authz import Enforcer

ACL = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""
DOMAINS = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj) && r.act == p.act
"""
REST = """
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)
"""


def acl() -> tuple[str, list[tuple[str, ...]], list[tuple[str, ...]]]:
    rows = [("p", f"user{i}", f"data{i % 10}", "read") for i in range(100)]
    requests = [
        (f"user{i}", f"data{i % 10}", act) for i in range(0, 120, 3) for act in ("read", "write")
    ]
    return ACL, rows, requests


def domains() -> tuple[str, list[tuple[str, ...]], list[tuple[str, ...]]]:
    rows: list[tuple[str, ...]] = []
    for t in range(20):
        dom = f"t{t}"
        rows += [
            ("p", "viewer", dom, "/v1/flags/:key", "GET"),
            ("p", "developer", dom, "/v1/flags/*", "PUT"),
            ("p", "admin", dom, "/v1/keys/*", "POST"),
            ("g", "admin", "developer", dom),
            ("g", "developer", "viewer", dom),
            ("g", f"u{t}a", "admin", dom),
            ("g", f"u{t}d", "developer", dom),
            ("g", f"u{t}v", "viewer", dom),
        ]
    requests = [
        (f"u{t}{r}", f"t{(t + shift) % 20}", path, method)
        for t, r, shift in itertools.product(range(0, 20, 4), "adv", (0, 1))
        for path, method in (
            ("/v1/flags/new-ui", "GET"),
            ("/v1/flags/new-ui", "PUT"),
            ("/v1/keys/k1", "POST"),
        )
    ]
    return DOMAINS, rows, requests


def restful() -> tuple[str, list[tuple[str, ...]], list[tuple[str, ...]]]:
    rows = [("p", f"svc{i % 5}", f"/api/r{i}/:id", "(GET)|(POST)") for i in range(50)]
    requests = [
        (f"svc{i % 5}", f"/api/r{i}/{i * 7}", method)
        for i in range(0, 60, 2)
        for method in ("GET", "DELETE")
    ]
    return REST, rows, requests


def peer(model_text: str, rows: Sequence[Sequence[str]]) -> Any:
    import casbin
    from casbin.persist.adapters.string_adapter import StringAdapter

    model = casbin.model.Model()
    model.load_model_from_text(model_text)
    return casbin.Enforcer(model, StringAdapter("\n".join(", ".join(r) for r in rows)))


def timed(fn: Callable[..., bool], requests: list[tuple[str, ...]], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        for request in requests:
            fn(*request)
    return (time.perf_counter() - start) / (loops * len(requests)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    logging.getLogger("casbin").setLevel(logging.CRITICAL)
    try:
        import casbin  # noqa: F401
    except ImportError:
        print("pycasbin is not installed: pip install 'cognitionos[peers]'", file=sys.stderr)
        return 2
    print(f"{'scenario':<14} {'ours µs':>10} {'pycasbin µs':>12} {'ratio':>8}  requests")
    for name, build in (("acl", acl), ("rbac-domains", domains), ("restful", restful)):
        model_text, rows, requests = build()
        ours, theirs = Enforcer(model_text, rows), peer(model_text, rows)
        decisions = [ours.enforce(*r) for r in requests]
        if decisions != [bool(theirs.enforce(*r)) for r in requests]:
            print(f"{name}: decisions differ; not timing", file=sys.stderr)
            return 1
        loops_ours, loops_peer = (20, 1) if args.quick else (100, 3)
        ours_us = statistics.median(
            timed(ours.enforce, requests, loops_ours) for _ in range(repeat)
        )
        peer_us = statistics.median(
            timed(theirs.enforce, requests, loops_peer) for _ in range(repeat)
        )
        allowed = sum(decisions)
        print(
            f"{name:<14} {ours_us:>10.2f} {peer_us:>12.2f} {peer_us / ours_us:>7.1f}x"
            f"  {len(requests)} ({allowed} allowed), {len(rows)} rows"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
