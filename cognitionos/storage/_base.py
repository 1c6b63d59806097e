"""Behaviour shared by the built-in backends: key checks, capability checks, TTL arithmetic."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from cognitionos.clock import NS_PER_SECOND
from cognitionos.errors import ConfigurationError
from cognitionos.storage._types import MAX_KEY_LENGTH, Capability, Change, _check_capabilities

__all__ = [
    "BaseStore",
    "FeedSubscription",
    "Subscribers",
    "check_key",
    "check_payload",
    "decode_change",
    "deliver",
    "ttl_to_ns",
]

log = logging.getLogger("cognitionos.storage")


def check_key(key: str, what: str = "key") -> str:
    """Validate a key or stream name: a non-empty str of at most MAX_KEY_LENGTH characters."""
    if type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH:
        return key
    if not isinstance(key, str):
        raise ConfigurationError(f"{what} must be a str, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ConfigurationError(
            f"{what} must be 1..{MAX_KEY_LENGTH} characters, got {len(key)}: {key[:40]!r}"
        )
    return key


def check_payload(value: bytes) -> bytes:
    """Values and payloads are bytes; engines serialise their own structures."""
    if type(value) is bytes:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ConfigurationError(f"values must be bytes, got {type(value).__name__}")
    return bytes(value)


def ttl_to_ns(ttl: float | None) -> int | None:
    """Seconds to integer nanoseconds; None (no expiry) stays None. Must be > 0."""
    if ttl is None:
        return None
    if (type(ttl) is int or type(ttl) is float) and 0 < ttl < 1e12:
        return max(1, round(ttl * NS_PER_SECOND))
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or math.isnan(ttl) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return max(1, round(ttl * NS_PER_SECOND))


def deliver(callback: Callable[[Change], None], change: Change) -> None:
    """Run a change-feed callback; a failing callback is logged, never propagated to the writer."""
    try:
        callback(change)
    except Exception:
        log.exception("change feed callback %r failed on %r", callback, change)


def decode_change(payload: str | bytes) -> Change | None:
    """A change published as ``{"k": key, "v": version, "d": deleted}`` (Redis, PostgreSQL).

    Malformed payloads are logged and yield None: a stranger on the channel cannot
    break the feed.
    """
    try:
        data = json.loads(payload)
        return Change(str(data["k"]), int(data["v"]), bool(data["d"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring malformed change message %r", payload)
        return None


class FeedSubscription:
    """One change-feed subscription; ``close()`` stops delivery (idempotent)."""

    __slots__ = ("_owner", "callback", "prefix")

    def __init__(self, owner: Subscribers, prefix: str, callback: Callable[[Change], None]) -> None:
        self._owner = owner
        self.prefix = prefix
        self.callback = callback

    def close(self) -> None:
        """Stop delivering changes to the callback."""
        self._owner.remove(self)


class Subscribers:
    """The subscriptions of one store and their dispatch.

    Copy-on-write: dispatch reads a tuple without taking the lock, so a callback may
    subscribe or close without deadlocking the backend thread that delivers.
    """

    __slots__ = ("_lock", "_subs")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[FeedSubscription, ...] = ()

    def add(self, prefix: str, callback: Callable[[Change], None]) -> FeedSubscription:
        """Register ``callback`` for keys starting with ``prefix``."""
        sub = FeedSubscription(self, prefix, callback)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def remove(self, sub: FeedSubscription) -> None:
        """Unregister ``sub`` (no error if it already was)."""
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it at the fork)."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Unregister everyone."""
        with self._lock:
            self._subs = ()

    def dispatch(self, change: Change) -> None:
        """Deliver ``change`` to every subscription whose prefix matches."""
        for sub in self._subs:
            if change.key.startswith(sub.prefix):
                deliver(sub.callback, change)

    def __bool__(self) -> bool:
        return bool(self._subs)


class BaseStore:
    """Common part of the built-in backends."""

    backend: ClassVar[str] = "base"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def require(self, *capabilities: Capability | str, needed_by: str | None = None) -> None:
        """Raise UnsupportedCapability unless every capability is offered."""
        _check_capabilities(self.backend, self.capabilities, capabilities, needed_by)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]
