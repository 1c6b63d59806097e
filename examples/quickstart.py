"""The main job on the embedded default: a SQLite file for durable state, memory for hot state.

Run: python examples/quickstart.py [--db PATH]

It opens both stores, shows each capability the engines build on (versioned
key-value with compare-and-set, counters with TTL, an append-only event log and
a change feed), checks the results, and prints what it did.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cognitionos.storage import Change, open_store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="cognitionos-")) / "cognitionos.db"

    durable = open_store(f"sqlite:///{db}")  # definitions, audit trails
    hot = open_store("memory://?max_keys=100000")  # per-request counters
    try:
        changes: list[Change] = []
        sub = durable.subscribe("config:", changes.append)

        # versioned configuration with optimistic concurrency
        v1 = durable.compare_and_set(
            "config:checkout", json.dumps({"on": False}).encode(), version=0
        )
        v2 = durable.compare_and_set(
            "config:checkout", json.dumps({"on": True}).encode(), version=1
        )
        stale = durable.compare_and_set("config:checkout", b"{}", version=1)
        assert (v1, v2, stale) == (1, 2, None)

        # an audit trail of who changed what
        durable.append("audit", json.dumps({"who": "ops@example.com", "flag": "checkout"}).encode())

        # hot counters that expire on their own
        for _ in range(3):
            hits = hot.incr("hits:203.0.113.9", ttl=60)

        deadline = time.monotonic() + 5
        while len(changes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.close()

        entry = durable.get("config:checkout")
        assert entry is not None
        print(f"sqlite store:  {db}")
        print(f"config:checkout = {entry.value.decode()} (version {entry.version})")
        print(f"stale write rejected: {stale is None}")
        print(f"audit events:  {[e.payload.decode() for e in durable.read('audit')]}")
        print(f"hits from 203.0.113.9 in the last minute: {hits}")
        print(f"change feed delivered: {[(c.key, c.version) for c in changes]}")
        return 0 if hits == 3 and len(changes) == 2 else 1
    finally:
        durable.close()
        hot.close()


if __name__ == "__main__":
    raise SystemExit(main())
