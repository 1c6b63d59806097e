"""Robustness figures of the rate limiter and the stores, printed (never asserted here).

Run::

    python benchmarks/robustness.py hung                 # SIGSTOPped redis, locked SQLite
    python benchmarks/robustness.py fork --postgres URL --redis URL

``hung`` starts its own ``redis-server`` on a free port (``redis-server`` on PATH), makes
one hit, SIGSTOPs the server and times the next ``hit()`` of the sync and async limiters
(``on_backend_error="open"``, default timeouts); then it write-locks a SQLite file from
another connection and times a hit there. A hit still blocked after ``--cap`` seconds is
reported as such. ``fork`` uses a store and a limiter before ``os.fork()``, then 4 children
make 50 ``incr`` (store) and 50 ``hit`` (limiter) each; it prints the totals seen by the
parent (exact: 200) and the errors the children raised.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from cognitionos.ratelimit import AsyncRateLimiter, Limit, RateLimiter

LIMIT = Limit.parse("1000/minute")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(fn: Callable[[], Any], cap: float) -> str:
    out: dict[str, Any] = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            out["result"] = f"allowed={fn().allowed}"
        except Exception as exc:  # reported, not raised: this is a measurement
            out["result"] = type(exc).__name__
        out["seconds"] = time.perf_counter() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(cap)
    if "seconds" not in out:
        return f"still blocked after {cap:.0f} s"
    return f"{out['seconds']:.2f} s ({out['result']})"


def _timed_async(make: Callable[[], Any], cap: float) -> str:
    async def run() -> str:
        start = time.perf_counter()
        try:
            d = await asyncio.wait_for(make(), cap)
        except TimeoutError:
            return f"still blocked after {cap:.0f} s"
        return f"{time.perf_counter() - start:.2f} s (allowed={d.allowed})"

    return asyncio.run(run())


def hung(cap: float) -> None:
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        sync = RateLimiter(url, on_backend_error="open")
        sync.hit(LIMIT, "warm")

        async def async_case() -> str:
            limiter = AsyncRateLimiter(url, on_backend_error="open")
            await limiter.hit(LIMIT, "warm")
            os.kill(server.pid, signal.SIGSTOP)
            start = time.perf_counter()
            try:
                d = await asyncio.wait_for(limiter.hit(LIMIT, "k"), cap)
            except TimeoutError:
                return f"still blocked after {cap:.0f} s"
            return f"{time.perf_counter() - start:.2f} s (allowed={d.allowed})"

        print(f"redis SIGSTOP, async hit(): {asyncio.run(async_case())}")
        print(f"redis SIGSTOP, sync hit():  {_timed(lambda: sync.hit(LIMIT, 'k'), cap)}")
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait()
    path = os.path.join(tempfile.mkdtemp(), "rl.db")
    url = f"sqlite:///{path}"
    sync = RateLimiter(url, on_backend_error="open")
    asyn = AsyncRateLimiter(url, on_backend_error="open")
    sync.hit(LIMIT, "warm")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    print(f"sqlite locked, sync hit():  {_timed(lambda: sync.hit(LIMIT, 'k'), cap)}")
    print(f"sqlite locked, async hit(): {_timed_async(lambda: asyn.hit(LIMIT, 'k'), cap)}")
    holder.rollback()


def _fork_round(name: str, before: Callable[[], Any], child: Callable[[], None]) -> None:
    before()
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child()
            except BaseException as exc:
                print(f"  child error: {type(exc).__name__}: {exc}", file=sys.stderr)
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = sum(1 for pid in pids if os.waitpid(pid, 0)[1] != 0)
    print(f"{name}: {failed} of 4 children failed")


def fork_one(url: str) -> None:
    """Use a store and a limiter on ``url``, fork 4 children x 50, print what the parent sees."""
    from cognitionos.storage import open_store

    kind = url.split(":", 1)[0]
    store = open_store(url)
    key = f"fork-{uuid.uuid4().hex[:8]}"

    def incr_50() -> None:
        for _ in range(50):
            store.incr(key)

    _fork_round(f"{kind} store", lambda: store.incr(key, 0), incr_50)
    print(f"  {kind} store: counter {store.get_counter(key)} of 200")
    store.close()
    limiter = RateLimiter(url, prefix=f"fk{uuid.uuid4().hex[:6]}_")
    lim = Limit(amount=10_000, period=3600)

    def hit_50() -> None:
        for _ in range(50):
            limiter.hit(lim, key)

    _fork_round(f"{kind} limiter", lambda: limiter.hit(lim, key, cost=0), hit_50)
    used = lim.amount - limiter.stats(lim, key).remaining
    print(f"  {kind} limiter: {used} of 200 hits counted")
    limiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["hung", "fork"])
    parser.add_argument("--cap", type=float, default=45.0, help="give up waiting after (s)")
    parser.add_argument("--postgres", default=os.environ.get("COGNITIONOS_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("COGNITIONOS_REDIS_URL"))
    parser.add_argument("--sqlite", default=f"sqlite:///{tempfile.mkdtemp()}/fork.db")
    args = parser.parse_args()
    if args.what == "hung":
        hung(args.cap)
    else:
        for url in (args.sqlite, args.postgres, args.redis):
            if url:
                fork_one(url)
    sys.stdout.flush()
    os._exit(0)  # a stopped server's threads may linger: do not wait for them


if __name__ == "__main__":
    main()
