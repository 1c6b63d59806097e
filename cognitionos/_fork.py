"""Fork safety: objects holding connections reset them in a forked child.

Servers fork workers after the app is built (gunicorn ``--preload``, uWSGI's default of
loading the app in the master, multiprocessing with the ``fork`` start method). A child
that goes on using its parent's sockets interleaves its protocol messages with the
parent's: PostgreSQL transactions break ("connection in transaction status INTRANS", "the
connection is lost") and increments are lost. Every store, rate-limit backend and tracer
therefore registers here, and in each forked child its
``_after_fork_in_child()`` runs before anything else can use it: it drops (without
closing) what belongs to the parent, renews its locks and restarts its feed threads::

    class MyStore:
        def __init__(self) -> None:
            ...
            reset_after_fork(self)

        def _after_fork_in_child(self) -> None:
            self.engine.dispose(close=False)

The registry holds weak references, so registering never keeps an object alive, and one
``os.register_at_fork`` hook serves every object (hooks cannot be unregistered, so one
per object would leak). It is process-wide by nature: a fork is.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import weakref
from typing import Any, Protocol

__all__ = ["ForkAware", "registered", "reset_after_fork"]

log = logging.getLogger("cognitionos")


class ForkAware(Protocol):
    """Anything with an ``_after_fork_in_child()`` method (called in each forked child)."""

    def _after_fork_in_child(self) -> None: ...


# process-wide on purpose: os.fork() is process-wide, and so is the hook that serves it
_objects: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_tokens = itertools.count()
_hooked = False
_hook_lock = threading.Lock()


#: the process whose objects were last reset (the at-fork hook and uWSGI's may both run)
_reset_pid = os.getpid()


def _in_child() -> None:
    global _hook_lock, _reset_pid
    _reset_pid = os.getpid()
    _hook_lock = threading.Lock()  # another thread may have held it at the fork
    # oldest first: a store is reset before the limiter that was built on it
    for _, obj in sorted(_objects.items(), key=lambda item: item[0]):
        try:
            obj._after_fork_in_child()
        except Exception:  # one object's failure must not leave the others shared
            log.exception("resetting %r after fork failed", obj)


def _hook_uwsgi() -> None:
    """Inside uWSGI, also reset from its post-fork hook (chained to any hook already set).

    uWSGI forks its workers in C, so ``os.register_at_fork`` hooks do not run there unless
    the server is started with ``--py-call-uwsgi-fork-hooks``; its ``post_fork_hook`` does.
    """
    try:
        import uwsgi  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork() -> None:
        if _reset_pid != os.getpid():  # not already done by the at-fork hook
            _in_child()
        if callable(previous):
            previous()

    uwsgi.post_fork_hook = post_fork


def reset_after_fork(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked while ``obj`` lives."""
    global _hooked
    with _hook_lock:
        if not _hooked and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_in_child)
            _hook_uwsgi()
            _hooked = True
        _objects[next(_tokens)] = obj


def registered() -> int:
    """How many live objects are registered (tests check nothing leaks)."""
    return len(_objects)
