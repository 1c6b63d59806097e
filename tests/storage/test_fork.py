"""Stores used before ``os.fork()`` keep working, exactly, in the parent and every child.

Before: on PostgreSQL the children shared the parent's pooled connections; 4 children x 50
``incr`` counted 3 of 200 and every child failed ("can't change 'autocommit' now: connection
in transaction status INTRANS", "the connection is lost"). Memory, SQLite and Redis stores
must stay exact too, and a change feed the parent subscribed keeps delivering in a child.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILDREN = 4
PER_CHILD = 50


def run_children(work: Callable[[], None], n: int = CHILDREN, deadline: int = 120) -> list[str]:
    """Fork ``n`` children running ``work``; the errors they report (empty when all succeed).

    A child still running after ``deadline`` seconds (a deadlock) is killed by SIGALRM.
    """
    read_fd, write_fd = os.pipe()
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 0
            try:
                os.close(read_fd)
                signal.alarm(deadline)
                work()
            except BaseException as exc:
                os.write(write_fd, f"{type(exc).__name__}: {exc}\n".encode()[:4000])
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        pids.append(pid)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        reported = pipe.read().decode(errors="replace").splitlines()
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    return reported + [f"child exited with {c}" for c in codes if c != 0 and not reported]


def test_forked_children_count_exactly(store, store_url):
    key = f"fork:{uuid.uuid4().hex[:8]}"
    assert store.incr(key) == 1  # the parent's connections are open and in the pool

    def work() -> None:
        for _ in range(PER_CHILD):
            store.incr(key)

    errors = run_children(work)
    assert errors == []
    expected = 1 if store_url == "memory://" else 1 + CHILDREN * PER_CHILD
    # memory is per process: each child counted in its own copy
    assert store.get_counter(key) == expected
    assert store.incr(key) == expected + 1  # and the parent's store still works


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "redis"])
def test_change_feed_keeps_delivering_in_a_child(kind, request, tmp_path):
    from cognitionos.storage import open_store

    url = (
        f"sqlite:///{tmp_path / 'feed.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url" if kind == "postgresql" else "redis_url")
    )
    store = open_store(url)
    prefix = f"feed{uuid.uuid4().hex[:8]}:"
    seen: list[str] = []
    store.subscribe(prefix, lambda change: seen.append(change.key))
    store.set(prefix + "parent", b"1")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == [prefix + "parent"]

    def work() -> None:
        seen.clear()
        time.sleep(0.3)  # the child's feed is (re)started without waiting: let it listen
        store.set(prefix + "child", b"1")
        deadline = time.monotonic() + 5
        while prefix + "child" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        if prefix + "child" not in seen:
            raise AssertionError(f"the child's change feed delivered {seen}")

    assert run_children(work, n=1) == []
    store.close()


def test_the_fork_registry_holds_no_strong_references():
    from cognitionos._fork import registered
    from cognitionos.storage import open_store

    gc.collect()
    before = registered()
    stores = [open_store("memory://") for _ in range(50)]
    assert registered() == before + 50
    for s in stores:
        s.close()
    del stores, s
    gc.collect()
    assert registered() == before
