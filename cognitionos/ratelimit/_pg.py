"""The SQL limiter's own PostgreSQL connections for decisions, each one bounded in time.

A decision on PostgreSQL used to run on a connection of the store's pool. A server that stops
answering (a stuck backend process, a frozen VM, a network partition that keeps the socket
open) then blocked ``hit()`` forever: the pool's pre-ping and the query both wait on a socket
read with no deadline, and ``on_backend_error`` never got to decide. These connections are
the limiter's own, as the Redis backend keeps its own channels:

- opened with libpq's ``connect_timeout`` (whole seconds, at least 2: libpq's own floor) and
  the session settings ``statement_timeout`` and ``lock_timeout`` set to the limiter's
  ``timeout``, so a decision waiting on a row lock or a slow statement is cancelled by the
  server itself and the connection stays usable;
- watched while in use: a :class:`Watchdog` thread shuts the socket down when a decision
  outlives ``timeout`` plus a grace period (the server did not answer even its own
  cancellation), which makes the blocked read fail at once;
- kept in a small LIFO pool of idle connections (``max_idle``), so a thread-per-request
  server does not hold one connection per thread; a connection that failed is closed, never
  reused. A reused connection that fails before its first statement ran (e.g. the server
  restarted while it sat idle) is replaced by a fresh one once, within the same decision.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

__all__ = ["PgChannels", "Watchdog"]

#: Extra seconds the watchdog leaves the server to cancel a statement itself.
GRACE = 0.25
#: Application name of the limiter's own sessions (visible in ``pg_stat_activity``).
APPLICATION_NAME = "cognitionos-ratelimit"


class Watchdog:
    """Shuts down the socket of a guarded section that outlives its deadline.

    One daemon thread per watchdog, started on first use, asleep while nothing is guarded,
    ended by :meth:`stop` (the limiter's ``close()``); a later ``guard`` starts a new one.
    ``guard(fd)`` costs a lock and a heap push; the cut happens under the same lock as the
    end of the section, so a connection already handed back is never cut.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._cond = threading.Condition(threading.Lock())
        self._active: dict[int, tuple[float, int]] = {}
        self._heap: list[tuple[float, int]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: sections cut so far (the caller turns them into a timeout error)
        self.cut: set[int] = set()

    @contextmanager
    def guard(self, fd: int) -> Iterator[int]:
        """Run the block with ``fd`` cut after ``seconds``; yields the section's token."""
        token = next(self._ids)
        deadline = time.monotonic() + self.seconds
        with self._cond:
            was_idle = not self._active
            self._active[token] = (deadline, fd)
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="cognitionos-ratelimit-watchdog", daemon=True
                )
                self._thread.start()
            elif was_idle:
                self._cond.notify()
        try:
            yield token
        finally:
            with self._cond:
                self._active.pop(token, None)

    def was_cut(self, token: int) -> bool:
        """Whether the section ``token`` ran out of time (forgets it)."""
        with self._cond:
            if token in self.cut:
                self.cut.discard(token)
                return True
            return False

    def stop(self) -> None:
        """End the thread once nothing is guarded (sections still running keep their cut)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                while not self._active:
                    self._heap.clear()
                    if self._stopping:
                        self._thread = None
                        return
                    cond.wait()
                deadline, token = self._heap[0]
                if token not in self._active:
                    heapq.heappop(self._heap)
                    continue
                wait = deadline - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                _, fd = self._active.pop(token)
                self.cut.add(token)
                _shutdown(fd)


def _shutdown(fd: int) -> None:
    """Shut the TCP/Unix socket behind ``fd`` down for both directions (the fd stays open)."""
    with suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


class PgChannels:
    """Idle PostgreSQL DB-API connections of one limiter, opened from an SQLAlchemy engine."""

    def __init__(
        self, engine: Any, *, timeout: float, connect_timeout: float, max_idle: int = 8
    ) -> None:
        self.timeout = timeout
        self.watchdog = Watchdog(timeout + GRACE)
        self._dialect = engine.dialect
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        ms = max(1, round(timeout * 1000))
        options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        if cparams.get("options"):
            options = f"{cparams['options']} {options}"
        cparams = {
            **cparams,
            "options": options,
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            "application_name": cparams.get("application_name", APPLICATION_NAME),
        }
        self._cargs, self._cparams = cargs, cparams
        #: one list object for the channels' lifetime (cleared in place, never replaced), so
        #: that disposing of the engine or collecting the limiter closes what sits in it
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.max_idle = max_idle
        idle = self._idle

        def close_idle(*_: Any) -> None:
            while idle:
                PgChannels.discard(idle.pop())

        from sqlalchemy import event

        event.listen(engine, "engine_disposed", close_idle)
        weakref.finalize(self, close_idle)

    def connect(self) -> Any:
        """A new connection (raises the driver's error when the server cannot be reached)."""
        return self._dialect.loaded_dbapi.connect(*self._cargs, **self._cparams)

    def get(self) -> tuple[Any, bool]:
        """An idle connection, else a new one; and whether it was reused."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self.connect(), False

    def put(self, conn: Any) -> None:
        """Hand a healthy connection back (closed when enough are idle)."""
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        self.discard(conn)

    @staticmethod
    def discard(conn: Any) -> None:
        """Close a connection that failed or is not wanted."""
        with suppress(Exception):
            conn.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them."""
        self._lock = threading.Lock()
        self._idle.clear()  # the parent's: never close them here (that would end its sessions)
        self.watchdog = Watchdog(self.watchdog.seconds)

    def close(self) -> None:
        """Close every idle connection and end the watchdog's thread."""
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
        for conn in idle:
            self.discard(conn)
        self.watchdog.stop()
