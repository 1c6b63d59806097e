"""Error grouping: one fingerprint per kind of failure, however its details vary.

The fingerprint hashes three parts, in the spirit of Sentry's grouping:

1. the exception type (module-qualified);
2. the stack's **in-app** frames as ``module.function`` (no line numbers: an edit above a
   function must not split its group). Frames are in-app when their module starts with one
   of ``in_app`` prefixes or, without prefixes, when they are neither in the standard
   library nor in site-packages. A stack without in-app frames falls back to all frames;
   an exception never raised (no traceback) to none;
3. the message with its variable parts replaced: UUIDs, e-mail addresses, IP addresses,
   hex ids, quoted strings and numbers become ``<uuid>``, ``<email>``, ``<ip>``, ``<hex>``,
   ``<str>``, ``<num>``.

Chained exceptions (``raise ... from``) group by the outermost exception.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import sysconfig
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from cognitionos.apm._store import DEFAULT_NAMESPACE, cas_update, open_kv, prefix, safe_key
from cognitionos.apm.models import ErrorGroup
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError

__all__ = ["ErrorGrouper", "normalize_message"]

_PATTERNS = [
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "<email>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"(?<![\w<])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "<num>"),
]
_MAX_MESSAGE = 300
# IPv6 candidates (incl. "::" compression) are confirmed by the ipaddress module
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "<ip>"


def normalize_message(message: str) -> str:
    """``message`` with its variable parts replaced by placeholders.

    >>> normalize_message("order 42 of 'bob' failed at 10.0.0.1")
    'order <num> of <str> failed at <ip>'
    """
    text = _IPV6.sub(_ipv6, str(message)[:2000])
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())[:_MAX_MESSAGE]


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(name, "") for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(d for d in dirs if d))


class ErrorGrouper:
    """Groups exceptions by fingerprint and keeps per-group counts, first/last seen, samples.

    ::

        grouper = ErrorGrouper(store="sqlite:///apm.db", in_app=("shop",))
        try:
            handle(request)
        except Exception as exc:
            group = grouper.record(exc, trace_id=span_trace_id, route="GET /orders/{id}")

    Without a store the groups live in this object; with one, every process merges into
    the same groups (compare-and-set), and ``cognitionos apm errors`` lists them.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        in_app: Sequence[str] = (),
        clock: Clock | None = None,
        max_samples: int = 5,
        max_routes: int = 20,
        ttl: float | None = 30 * 86400,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        if isinstance(in_app, str) or not all(isinstance(p, str) and p for p in in_app):
            raise ConfigurationError(
                f"in_app must be a sequence of module prefixes, got {in_app!r}"
            )
        self.in_app = tuple(in_app)
        self._prefix = prefix(namespace, "errors")
        self.namespace = namespace
        self._clock = clock or SystemClock()
        self.max_samples = max_samples
        self.max_routes = max_routes
        self.ttl = ttl
        self._libdirs = _library_dirs()
        self._lock = threading.Lock()
        self._local: dict[str, ErrorGroup] = {}
        self._store: Any
        self._owns: bool
        self._store, self._owns = (None, False) if store is None else open_kv(store, "ErrorGrouper")

    # -- fingerprinting ----------------------------------------------------------------------

    def _is_in_app(self, module: str, filename: str) -> bool:
        if self.in_app:
            return any(module == p or module.startswith(p + ".") for p in self.in_app)
        if filename.startswith("<"):
            return False
        return not any(filename.startswith(d) for d in self._libdirs)

    def frames(self, exc: BaseException) -> list[str]:
        """The ``module.function`` names that enter the fingerprint (innermost last)."""
        everything: list[str] = []
        in_app: list[str] = []
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            module = str(frame.f_globals.get("__name__", "?"))
            name = f"{module}.{frame.f_code.co_name}"
            everything.append(name)
            if self._is_in_app(module, frame.f_code.co_filename):
                in_app.append(name)
            tb = tb.tb_next
        return in_app or everything

    def fingerprint(self, exc: BaseException) -> str:
        """A 32-hex-digit fingerprint of ``exc``."""
        if not isinstance(exc, BaseException):
            raise ConfigurationError(f"expected an exception, got {type(exc).__name__}")
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        parts = [kind, *self.frames(exc), normalize_message(str(exc))]
        return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:32]

    # -- recording ---------------------------------------------------------------------------

    def record(
        self, exc: BaseException, *, trace_id: str | int | None = None, route: str | None = None
    ) -> ErrorGroup:
        """Count ``exc`` in its group and return the group as it stands now."""
        fp = self.fingerprint(exc)
        now = self._clock.time_ns()
        frames = self.frames(exc)
        if isinstance(trace_id, int):
            trace_id = f"{trace_id:032x}"
        seed = ErrorGroup(
            fingerprint=fp,
            type=type(exc).__qualname__,
            message=normalize_message(str(exc)),
            culprit=frames[-1] if frames else "",
            count=1,
            first_seen_ns=now,
            last_seen_ns=now,
            trace_ids=(trace_id,) if trace_id else (),
            routes=(route,) if route else (),
        )
        if self._store is None:
            with self._lock:
                group = self._merge(self._local.get(fp), seed)
                self._local[fp] = group
            return group

        def merge(raw: bytes | None) -> bytes:
            return _dump(self._merge(_load(raw) if raw else None, seed))

        return _load(cas_update(self._store, safe_key(self._prefix, fp), merge, ttl=self.ttl))

    def _merge(self, old: ErrorGroup | None, new: ErrorGroup) -> ErrorGroup:
        if old is None:
            return new
        traces = old.trace_ids
        for t in new.trace_ids:
            if t not in traces and len(traces) < self.max_samples:
                traces = (*traces, t)
        routes = old.routes
        for r in new.routes:
            if r not in routes and len(routes) < self.max_routes:
                routes = (*routes, r)
        return ErrorGroup(
            fingerprint=old.fingerprint,
            type=old.type,
            message=old.message,
            culprit=old.culprit,
            count=old.count + new.count,
            first_seen_ns=min(old.first_seen_ns, new.first_seen_ns),
            last_seen_ns=max(old.last_seen_ns, new.last_seen_ns),
            trace_ids=traces,
            routes=routes,
        )

    def groups(self) -> list[ErrorGroup]:
        """Every group, most frequent first."""
        if self._store is None:
            with self._lock:
                found = list(self._local.values())
        else:
            found = read_error_groups(self._store, namespace=self.namespace)
        return sorted(found, key=lambda g: (-g.count, -g.last_seen_ns))

    def close(self) -> None:
        """Close the store if this grouper opened it from a URL."""
        if self._owns and self._store is not None:
            self._store.close()


def read_error_groups(
    store: Any, *, namespace: str = DEFAULT_NAMESPACE, limit: int = 10_000
) -> list[ErrorGroup]:
    """The error groups kept in ``store``; unreadable entries are skipped."""
    out = []
    for entry in store.scan(prefix(namespace, "errors"), limit=limit):
        try:
            out.append(_load(entry.value))
        except ConfigurationError:
            continue
    return out


def _dump(group: ErrorGroup) -> bytes:
    return json.dumps(group.to_dict(), separators=(",", ":")).encode("utf-8")


def _load(raw: bytes) -> ErrorGroup:
    try:
        data = json.loads(raw)
        return ErrorGroup(
            fingerprint=str(data["fingerprint"]),
            type=str(data["type"]),
            message=str(data["message"]),
            culprit=str(data["culprit"]),
            count=int(data["count"]),
            first_seen_ns=int(data["first_seen_ns"]),
            last_seen_ns=int(data["last_seen_ns"]),
            trace_ids=tuple(str(t) for t in data.get("trace_ids", ())),
            routes=tuple(str(r) for r in data.get("routes", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"stored error group is malformed: {exc!r}") from exc
