"""Auto-blacklist: clients that keep sending blocked requests are banned for a while.

``k`` blocked requests within ``window`` seconds ban the client for ``ban_seconds``.
Counters and bans live in a storage backend (counters with TTL + key-value with
TTL), so several processes or hosts sharing Redis or SQL share the bans::

    bl = AutoBlacklist(open_store("memory://"), threshold=5, window=60, ban_seconds=600)
    if bl.is_banned(req): ...                  # before inspecting
    bl.record(req, fw.inspect(req))            # after: counts blocked verdicts, may ban
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from cognitionos.clock import NS_PER_SECOND, Clock, SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.waf.models import Request, Verdict

__all__ = ["AutoBlacklist", "Ban"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen(slots=True)
class Ban:
    """A banned client: its key (IP, or IP + user-agent hash), why, and until when (epoch ns)."""

    client: str
    reason: str
    created_ns: int
    until_ns: int | None

    def remaining(self, now_ns: int) -> float:
        """Seconds left on the ban (``inf`` for a permanent ban)."""
        if self.until_ns is None:
            return float("inf")
        return max(0.0, (self.until_ns - now_ns) / NS_PER_SECOND)


#: longest ban accepted, in seconds (~31,700 years): past it the expiry overflows the clock
MAX_BAN_SECONDS = 1e12


def _check_seconds(seconds: object) -> None:
    ok = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not ok or not 0 < seconds < MAX_BAN_SECONDS:  # type: ignore[operator]
        raise ConfigurationError(
            f"ban duration must be a number of seconds in (0, {MAX_BAN_SECONDS:g}), got {seconds!r}"
        )


class AutoBlacklist:
    """Counts blocked requests per client and bans repeat offenders, in a shared store.

    ``by="ip+ua"`` keys clients by IP and user agent, so one attacker behind a NAT
    does not ban everyone sharing the address. ``allow`` lists IPs/networks that
    are never counted or banned.
    """

    def __init__(
        self,
        store: Any,
        *,
        threshold: int = 5,
        window: float = 60.0,
        ban_seconds: float = 600.0,
        allow: Iterable[str] = (),
        by: Literal["ip", "ip+ua"] = "ip",
        prefix: str = "waf:",
        clock: Clock | None = None,
        count_detect_only: bool = True,
    ) -> None:
        if isinstance(store, str):
            from cognitionos.storage import open_store

            store = open_store(store, clock=clock)
        numbers = (threshold, window, ban_seconds)
        if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers) or not (
            math.isfinite(window) and math.isfinite(ban_seconds)
        ):
            raise ConfigurationError(
                "threshold, window and ban_seconds must be finite numbers, got "
                f"{threshold!r}, {window!r}, {ban_seconds!r}"
            )
        if ban_seconds >= MAX_BAN_SECONDS:
            raise ConfigurationError(f"ban_seconds must be below {MAX_BAN_SECONDS:g}")
        if threshold < 1 or window <= 0 or ban_seconds <= 0:
            raise ConfigurationError("threshold must be >= 1 and window, ban_seconds > 0")
        if by not in ("ip", "ip+ua"):
            raise ConfigurationError(f"by must be 'ip' or 'ip+ua', got {by!r}")
        store.require("kv", "counters", needed_by="AutoBlacklist")
        self.store = store
        self.threshold = threshold
        self.window = float(window)
        self.ban_seconds = float(ban_seconds)
        self.by = by
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.count_detect_only = count_detect_only
        try:
            self.allow: tuple[_Network, ...] = tuple(
                ipaddress.ip_network(a, strict=False) for a in allow
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid allow-list entry: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"AutoBlacklist(threshold={self.threshold}, window={self.window}, "
            f"ban_seconds={self.ban_seconds}, by={self.by!r})"
        )

    # -- identity ---------------------------------------------------------------------------

    def client_key(self, client_ip: str | None, user_agent: str | None = None) -> str | None:
        """The key a client is counted and banned under; ``None`` if unknown or allow-listed."""
        if not client_ip:
            return None
        try:
            addr = ipaddress.ip_address(client_ip.strip())
        except ValueError:
            return None
        if any(addr in net for net in self.allow):
            return None
        key = addr.compressed
        if self.by == "ip+ua":
            digest = hashlib.sha256((user_agent or "").encode("utf-8", "replace")).hexdigest()[:16]
            key = f"{key}|{digest}"
        return key

    def _key_of(self, request: Request) -> str | None:
        return self.client_key(request.client_ip, request.header("user-agent"))

    def _ban_key(self, client: str) -> str:
        return f"{self.prefix}ban:{client}"

    # -- decisions --------------------------------------------------------------------------

    def is_banned(self, request: Request) -> Ban | None:
        """The active ban for the request's client, or ``None``."""
        client = self._key_of(request)
        return self.get_ban(client) if client else None

    def get_ban(self, client: str) -> Ban | None:
        """The active ban stored under ``client`` (a key from :meth:`client_key`), or ``None``."""
        entry = self.store.get(self._ban_key(client))
        if entry is None:
            return None
        return self._decode(client, entry.value)

    def record(self, request: Request, verdict: Verdict) -> Ban | None:
        """Count a blocked verdict for the client; returns the new ban at the threshold."""
        offending = verdict.blocked or (self.count_detect_only and verdict.would_block)
        if not offending:
            return None
        client = self._key_of(request)
        if client is None:
            return None
        count = self.store.incr(f"{self.prefix}hits:{client}", 1, ttl=self.window)
        if count < self.threshold:
            return None
        self.store.reset_counter(f"{self.prefix}hits:{client}")
        rules = ",".join(sorted(verdict.rule_ids))[:200]
        return self.ban(
            client,
            reason=f"{count} blocked requests in {self.window:g}s ({rules})",
            client_is_key=True,
        )

    def ban(
        self,
        client: str,
        *,
        seconds: float | None = None,
        reason: str = "manual",
        user_agent: str | None = None,
        client_is_key: bool = False,
        permanent: bool = False,
    ) -> Ban:
        """Ban ``client`` (an IP; with ``by="ip+ua"`` also pass ``user_agent``) for ``seconds``."""
        key = client if client_is_key else self.client_key(client, user_agent)
        if key is None:
            raise ConfigurationError(f"cannot ban {client!r}: invalid or allow-listed address")
        if seconds is not None and not permanent:
            _check_seconds(seconds)
        now = self.clock.time_ns()
        duration = None if permanent else (self.ban_seconds if seconds is None else float(seconds))
        until = None if duration is None else now + round(duration * NS_PER_SECOND)
        ban = Ban(client=key, reason=reason, created_ns=now, until_ns=until)
        payload = json.dumps({"reason": reason, "created_ns": now, "until_ns": until}).encode()
        self.store.set(self._ban_key(key), payload, ttl=duration)
        return ban

    def unban(self, client: str, *, user_agent: str | None = None) -> bool:
        """Lift a ban; ``client`` is an IP (plus ``user_agent`` in ip+ua mode) or a stored key."""
        key = client if "|" in client else self.client_key(client, user_agent)
        if key is None:
            return False
        return bool(self.store.delete(self._ban_key(key)))

    def bans(self, limit: int = 1000) -> list[Ban]:
        """Active bans, ordered by client key."""
        prefix = f"{self.prefix}ban:"
        return [
            self._decode(e.key[len(prefix) :], e.value)
            for e in self.store.scan(prefix, limit=limit)
        ]

    @staticmethod
    def _decode(client: str, raw: bytes) -> Ban:
        try:
            doc = json.loads(raw)
            return Ban(
                client=client,
                reason=str(doc.get("reason", "")),
                created_ns=int(doc.get("created_ns", 0)),
                until_ns=doc.get("until_ns"),
            )
        except (ValueError, TypeError):
            return Ban(client=client, reason="", created_ns=0, until_ns=None)
