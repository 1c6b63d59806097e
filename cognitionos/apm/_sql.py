"""Slow-query and N+1 detection over normalized SQL.

Statements are normalized so that one query shape is one series: comments dropped, string
and number literals and bind parameters (``%s``, ``?``, ``:name``, ``$1``) become ``?``,
``IN (?, ?, ?)`` becomes ``IN (?)``, whitespace collapses, keywords are upper-cased.

A statement slower than ``threshold`` seconds is *slow*. Inside one request scope
(:meth:`SlowQueryDetector.request`), a shape run ``n_plus_one`` times or more is an N+1
finding; it carries the first ``file:line`` outside SQLAlchemy and this module that issued
it. Hooks: :meth:`SlowQueryDetector.instrument` listens to a SQLAlchemy engine's
``before/after_cursor_execute`` events, which fire per statement executed (fetching rows
from a server-side cursor does not fire them, so it is never mistaken for N+1).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cognitionos.apm._sketch import LatencySketch, SketchDecodeError
from cognitionos.apm._store import DEFAULT_NAMESPACE, cas_update, open_kv, prefix
from cognitionos.apm.models import SlowQuery
from cognitionos.errors import ConfigurationError

__all__ = ["SlowQueryDetector", "normalize_sql", "read_slow_queries"]

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_PARAMS = re.compile(r"%\([A-Za-z_]\w*\)s|%s|\$\d+|(?<![:\w]):[A-Za-z_]\w*|\?")
_NUMBERS = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.I)
_VALUES_ROWS = re.compile(
    r"\bVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))+", re.I
)
_KEYWORDS = re.compile(
    r"\b(select|from|where|and|or|not|in|insert|into|values|update|set|delete|join|left|right|"
    r"inner|outer|on|group|by|order|limit|offset|having|as|distinct|returning|is|null|like|"
    r"between|exists|union|all|case|when|then|else|end|asc|desc)\b",
    re.I,
)
_SKIP_MODULES = ("sqlalchemy", "cognitionos.apm", "contextlib", "threading")


def normalize_sql(statement: str) -> str:
    """One canonical shape for a statement.

    >>> normalize_sql("select * from t where id = 42 and name = 'x'")
    'SELECT * FROM t WHERE id = ? AND name = ?'
    """
    if not isinstance(statement, str):
        raise ConfigurationError(f"SQL statement must be a str, got {type(statement).__name__}")
    text = _COMMENTS.sub(" ", statement)
    text = _STRINGS.sub("?", text)
    text = _PARAMS.sub("?", text)
    text = _NUMBERS.sub("?", text)
    text = _IN_LIST.sub("IN (?)", text)
    text = _VALUES_ROWS.sub(r"VALUES \1", text)
    text = _KEYWORDS.sub(lambda m: m.group(1).upper(), text)
    return " ".join(text.split())


def _shape_id(sql: str) -> str:
    return hashlib.sha1(sql.encode("utf-8")).hexdigest()[:20]


def _caller_location() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith(_SKIP_MODULES):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


class _Aggregate:
    __slots__ = ("count", "locations", "n_plus_one", "routes", "sketch", "slow", "sql")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.count = 0
        self.slow = 0
        self.n_plus_one = 0
        self.sketch = LatencySketch()
        self.locations: list[str] = []
        self.routes: list[str] = []

    def note(self, seq: list[str], value: str | None, cap: int = 10) -> None:
        if value and value not in seq and len(seq) < cap:
            seq.append(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "count": self.count,
            "slow": self.slow,
            "n_plus_one": self.n_plus_one,
            "sketch": base64.b64encode(self.sketch.to_bytes()).decode("ascii"),
            "locations": self.locations,
            "routes": self.routes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Aggregate:
        agg = cls(str(data["sql"]))
        agg.count = int(data["count"])
        agg.slow = int(data["slow"])
        agg.n_plus_one = int(data["n_plus_one"])
        agg.sketch = LatencySketch.from_bytes(base64.b64decode(data["sketch"]))
        agg.locations = [str(x) for x in data.get("locations", [])]
        agg.routes = [str(x) for x in data.get("routes", [])]
        return agg

    def absorb(self, other: _Aggregate) -> None:
        self.count += other.count
        self.slow += other.slow
        self.n_plus_one += other.n_plus_one
        self.sketch.merge(other.sketch)
        for loc in other.locations:
            self.note(self.locations, loc)
        for route in other.routes:
            self.note(self.routes, route)

    def report(self) -> SlowQuery:
        sk = self.sketch
        return SlowQuery(
            sql=self.sql,
            count=self.count,
            slow_count=self.slow,
            n_plus_one_count=self.n_plus_one,
            p50=sk.quantile(0.5) if sk.count else 0.0,
            p99=sk.quantile(0.99) if sk.count else 0.0,
            max=sk.max if sk.count else 0.0,
            locations=tuple(self.locations),
            routes=tuple(self.routes),
        )


class _Scope:
    __slots__ = ("counts", "first_location", "route")

    def __init__(self, route: str | None) -> None:
        self.route = route
        self.counts: dict[str, int] = {}
        self.first_location: dict[str, str] = {}


class SlowQueryDetector:
    """Times statements, keeps slow and N+1 ones per normalized shape.

    ::

        detector = SlowQueryDetector(store="sqlite:///apm.db", threshold=0.1)
        detector.instrument(sqlalchemy_engine)
        with detector.request("GET /orders"):
            ...  # queries issued here are checked for N+1
        detector.flush()

    Only shapes that were slow or N+1 at least once are kept (``report()``, the store).
    """

    def __init__(
        self,
        store: Any = None,
        *,
        threshold: float = 0.1,
        n_plus_one: int = 5,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise ConfigurationError(f"threshold must be >= 0 seconds, got {threshold!r}")
        if isinstance(n_plus_one, bool) or not isinstance(n_plus_one, int) or n_plus_one < 2:
            raise ConfigurationError(f"n_plus_one must be an int >= 2, got {n_plus_one!r}")
        self._prefix = prefix(namespace, "sql")
        self.threshold = float(threshold)
        self.n_plus_one = n_plus_one
        self._lock = threading.Lock()
        self._aggs: dict[str, _Aggregate] = {}
        self._scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
            "cognitionos_apm_sql_scope", default=None
        )
        self._store: Any
        self._owns: bool
        self._store, self._owns = (
            (None, False) if store is None else open_kv(store, "SlowQueryDetector")
        )

    @contextmanager
    def request(self, route: str | None = None) -> Iterator[None]:
        """A request scope: statements repeated ``n_plus_one`` times in it are N+1."""
        scope = _Scope(route)
        token = self._scope.set(scope)
        try:
            yield
        finally:
            self._scope.reset(token)
            for sql, n in scope.counts.items():
                if n >= self.n_plus_one:
                    with self._lock:
                        agg = self._aggs.get(sql) or self._aggs.setdefault(sql, _Aggregate(sql))
                        agg.n_plus_one += 1
                        agg.note(agg.locations, scope.first_location.get(sql))
                        agg.note(agg.routes, route)

    def observe(self, statement: str, seconds: float, *, location: str | None = None) -> bool:
        """Account one executed statement; True when it was slow."""
        sql = normalize_sql(statement)
        scope = self._scope.get()
        route = scope.route if scope is not None else None
        if scope is not None:
            scope.counts[sql] = scope.counts.get(sql, 0) + 1
            if sql not in scope.first_location:
                scope.first_location[sql] = location or _caller_location()
        slow = seconds >= self.threshold
        with self._lock:
            agg = self._aggs.get(sql)
            if agg is None and (slow or scope is not None):
                agg = self._aggs.setdefault(sql, _Aggregate(sql))
            if agg is not None:
                agg.count += 1
                agg.sketch.add(seconds)
                if slow:
                    agg.slow += 1
                    agg.note(agg.locations, location or _caller_location())
                    agg.note(agg.routes, route)
        return slow

    def instrument(self, engine: Any) -> Any:
        """Listen to a SQLAlchemy ``Engine``; returns a callable that removes the hooks."""
        from sqlalchemy import event

        started = threading.local()

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            stack = getattr(started, "stack", None)
            if stack is None:
                stack = started.stack = []
            stack.append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            stack = getattr(started, "stack", None)
            if stack:
                self.observe(statement, time.perf_counter() - stack.pop())

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)

        def remove() -> None:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

        return remove

    def report(self) -> list[SlowQuery]:
        """Kept shapes (slow or N+1 at least once), slowest p99 first."""
        with self._lock:
            rows = [a.report() for a in self._aggs.values() if a.slow or a.n_plus_one]
        return sorted(rows, key=lambda r: (-r.p99, -r.count))

    def flush(self) -> int:
        """Merge kept shapes into the store (compare-and-set); returns entries written."""
        if self._store is None:
            return 0
        with self._lock:
            kept = {k: a for k, a in self._aggs.items() if a.slow or a.n_plus_one}
            self._aggs = {k: a for k, a in self._aggs.items() if k not in kept}
        for sql, agg in kept.items():

            def merge(raw: bytes | None, agg: _Aggregate = agg) -> bytes:
                base = _Aggregate(agg.sql)
                if raw is not None:
                    try:
                        base = _Aggregate.from_json(json.loads(raw))
                    except (ValueError, KeyError, TypeError, SketchDecodeError):
                        base = _Aggregate(agg.sql)
                base.absorb(agg)
                return json.dumps(base.to_json(), separators=(",", ":")).encode("utf-8")

            cas_update(self._store, self._prefix + _shape_id(sql), merge)
        return len(kept)

    def close(self) -> None:
        """Flush, then close the store if it was opened from a URL."""
        if self._store is not None:
            self.flush()
            if self._owns:
                self._store.close()


def read_slow_queries(
    store: Any, *, namespace: str = DEFAULT_NAMESPACE, limit: int = 10_000
) -> list[SlowQuery]:
    """Slow/N+1 shapes kept in ``store``, slowest p99 first; unreadable entries skipped."""
    rows = []
    for entry in store.scan(prefix(namespace, "sql"), limit=limit):
        try:
            rows.append(_Aggregate.from_json(json.loads(entry.value)).report())
        except (ValueError, KeyError, TypeError, SketchDecodeError):
            continue
    return sorted(rows, key=lambda r: (-r.p99, -r.count))
