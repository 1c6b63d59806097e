"""Audit log cost: append per backend, proofs, verification; against bare hashing.

Run:  python benchmarks/audit_perf.py [--store URL ...] [--entries 10000] [--quick]

What is measured (median over repetitions, microseconds per operation):

1. append - ``AuditLog.append`` (canonical JSON + leaf hash + one event-log
   append) on each store given (memory:// and a temporary SQLite file by
   default), next to the floor: the canonical JSON and SHA-256 of the same
   entry without any store (``hashlib`` alone).
2. inclusion / consistency proof generation on a log of ``--entries`` entries
   (the in-memory tree of cached complete subtrees), and their verification by
   the independent verifier.
3. verify_log - the verifier recomputing every leaf and the root of the whole
   exported log, per entry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cognitionos.audit import AuditLog, HmacSigner
from cognitionos.audit.verify import verify_consistency, verify_inclusion, verify_log


def per_op(fn: Callable[[], object], n: int, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", default=[], help="extra store URLs")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 5
    n_append = 100 if args.quick else 300
    tmp = Path(tempfile.mkdtemp(prefix="audit_bench_"))
    stores = ["memory://", f"sqlite:///{tmp / 'bench.db'}", *args.store]
    diff = {"before": {"enabled": False}, "after": {"enabled": True}}

    def floor() -> None:
        leaf = json.dumps(
            {
                "v": 1,
                "tenant": "t",
                "actor": "a",
                "action": "flag.toggle",
                "target": "f",
                "diff": diff,
                "at": "2026-01-01T00:00:00.000000Z",
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        hashlib.sha256(b"\x00" + leaf).digest()

    base = per_op(floor, n_append * 10, repeat)
    print(f"{'operation':<34} {'µs/op':>10} {'x floor':>9}")
    print(f"{'floor: canonical JSON + SHA-256':<34} {base:>10.2f} {1.0:>8.1f}x")
    for url in stores:
        log = AuditLog(url, stream=f"bench-{random.getrandbits(32):08x}")
        us = per_op(
            lambda log=log: log.append("t", "a", "flag.toggle", "f", diff), n_append, repeat
        )
        name = url.split("://")[0]
        print(f"{'append (' + name + ')':<34} {us:>10.2f} {us / base:>8.1f}x")
        log.close()

    log = AuditLog("memory://", signer=HmacSigner(b"k" * 32), stream="bench-proofs")
    entries = [log.append("t", "a", "x", str(i), {"i": i}) for i in range(args.entries)]
    size = log.size()
    root = log.root_hash()
    rng = random.Random(6962)
    picks = [rng.randrange(size) for _ in range(200)]
    it = iter(picks * 100)
    print(f"log of {size} entries:")
    us = per_op(lambda: log.inclusion_proof(next(it), size), 200, repeat)
    print(f"{'  inclusion proof (writer)':<34} {us:>10.2f}")
    proofs = {i: log.inclusion_proof(i, size) for i in picks}
    it = iter(picks * 100)

    def check_inclusion() -> None:
        i = next(it)
        assert verify_inclusion(entries[i].leaf, i, size, proofs[i], root)

    us = per_op(check_inclusion, 200, repeat)
    print(f"{'  inclusion verify (verifier)':<34} {us:>10.2f}")
    firsts = [rng.randrange(1, size) for _ in range(200)]
    it = iter(firsts * 100)
    us = per_op(lambda: log.consistency_proof(next(it), size), 200, repeat)
    print(f"{'  consistency proof (writer)':<34} {us:>10.2f}")
    roots = {m: log.root_hash(m) for m in firsts}
    cproofs = {m: log.consistency_proof(m, size) for m in firsts}
    it = iter(firsts * 100)

    def check_consistency() -> None:
        m = next(it)
        assert verify_consistency(m, size, roots[m], root, cproofs[m])

    us = per_op(check_consistency, 200, repeat)
    print(f"{'  consistency verify (verifier)':<34} {us:>10.2f}")
    sth = log.sign_tree_head()
    exported = [e.to_json() for e in log.entries()]
    start = time.perf_counter()
    verdict = verify_log(exported, sth, hmac_key=b"k" * 32)
    elapsed = time.perf_counter() - start
    assert verdict.ok
    print(
        f"{'  verify_log, per entry':<34} {elapsed / size * 1e6:>10.2f}"
        f"   ({elapsed:.2f} s for the whole log)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
