"""Counter increment and KV get/set per backend, µs per op (median of repeats).

The memory backend is compared with a plain dict guarded by a threading.Lock,
measured in the same run: the ratio is the price of TTLs, versions, the LRU
cap and key validation.

    python benchmarks/storage_bench.py --backends memory,sqlite,postgresql,redis
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cognitionos.errors import CognitionError
from cognitionos.storage import open_store

URLS = {
    "memory": "memory://",
    "sqlite": "sqlite:///{tmp}/bench.db",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "redis": "redis://127.0.0.1:6379/1",
}


class DictBaseline:
    """What a hand-rolled in-process store costs: a dict and a lock, nothing else."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, object] = {}

    def incr(self, key: str, amount: int = 1) -> int:
        with self.lock:
            value = int(self.data.get(key, 0)) + amount  # type: ignore[call-overload]
            self.data[key] = value
            return value

    def set(self, key: str, value: bytes) -> None:
        with self.lock:
            self.data[key] = value

    def get(self, key: str) -> object:
        with self.lock:
            return self.data.get(key)


def per_op_us(fn: Callable[[int], object], ops: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(ops):
            fn(i)
        samples.append((time.perf_counter() - t0) / ops * 1e6)
    return statistics.median(samples)


def bench(store: object, ops: int, repeats: int, ttl: bool) -> dict[str, float]:
    ns = uuid.uuid4().hex[:8]
    keys = [f"{ns}:k{i % 100}" for i in range(ops)]
    kw = {"ttl": 60} if ttl else {}
    incr, set_, get = store.incr, store.set, store.get  # type: ignore[attr-defined]
    return {
        "incr": per_op_us(lambda i: incr(keys[i], 1, **kw), ops, repeats),
        "set": per_op_us(lambda i: set_(keys[i], b"value", **kw), ops, repeats),
        "get": per_op_us(lambda i: get(keys[i]), ops, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,sqlite,postgresql,redis")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rows: list[tuple[str, dict[str, float]]] = []
    baseline = bench(DictBaseline(), args.ops * 10, args.repeats, ttl=False)
    rows.append(("dict+lock baseline", baseline))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backends.split(","):
            url = URLS[name].format(tmp=Path(tmp))
            try:
                store = open_store(url)
            except CognitionError as exc:
                print(f"{name}: skipped ({exc})")
                continue
            ops = args.ops * 10 if name == "memory" else args.ops
            try:
                rows.append((name, bench(store, ops, args.repeats, ttl=True)))
            finally:
                store.close()

    header = f"{'backend':<20} {'incr µs':>10} {'set µs':>10} {'get µs':>10}"
    print(f"\n{header}   (median of {args.repeats})")
    for name, r in rows:
        print(f"{name:<20} {r['incr']:>10.2f} {r['set']:>10.2f} {r['get']:>10.2f}")
    mem = dict(rows).get("memory")
    if mem:
        ratios = "  ".join(f"{op} {mem[op] / baseline[op]:.2f}x" for op in ("incr", "set", "get"))
        print(f"\nmemory vs dict+lock (same run): {ratios}")


if __name__ == "__main__":
    main()
