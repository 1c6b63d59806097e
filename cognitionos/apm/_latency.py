"""Per-route latency over time windows, merged fleet-wide through a store.

Each process keeps one :class:`LatencySketch` per (time window, route template) and, on
``flush()``, merges them into the store with compare-and-set; readers merge the windows of
a time range, so ``cognitionos apm top`` shows percentiles of every process together. The
merge is exact: the fleet's p99 is the p99 of all requests, within the sketch's accuracy.

Routes are templates (``GET /orders/{id}``), never raw paths; past ``max_routes`` distinct
routes further ones are counted under ``"<overflow>"`` so cardinality stays bounded.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Iterable
from typing import Any

from cognitionos.apm._sketch import LatencySketch, SketchDecodeError
from cognitionos.apm._store import DEFAULT_NAMESPACE, cas_update, open_kv, prefix, safe_key
from cognitionos.apm.models import RouteLatency
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.metrics import CounterSet

__all__ = ["OVERFLOW_ROUTE", "LatencyRecorder", "read_route_latencies", "summarize"]

OVERFLOW_ROUTE = "<overflow>"
_BATCH = 256


class LatencyRecorder:
    """Records request durations per route and publishes them to a store.

    ::

        recorder = LatencyRecorder(store="redis://cache:6379/0", window=60)
        recorder.record("GET /orders/{id}", 0.0123)
        recorder.flush()                 # e.g. every few seconds, from a background task
    """

    def __init__(
        self,
        store: Any = None,
        *,
        window: float = 60.0,
        max_routes: int = 500,
        relative_accuracy: float = 0.01,
        retention: float = 7 * 86400,
        clock: Clock | None = None,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 1:
            raise ConfigurationError(f"window must be >= 1 second, got {window!r}")
        if isinstance(max_routes, bool) or not isinstance(max_routes, int) or max_routes < 1:
            raise ConfigurationError(f"max_routes must be an int >= 1, got {max_routes!r}")
        self._prefix = prefix(namespace, "latency")
        self.window = int(window)
        self.max_routes = max_routes
        self.relative_accuracy = relative_accuracy
        LatencySketch(relative_accuracy)  # validates the accuracy now, not at first record
        self.retention = retention
        self._clock = clock or SystemClock()
        # the system clock is read directly (one C call) on the request path
        self._time = _time.time if type(self._clock) is SystemClock else self._clock.time
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, str], LatencySketch] = {}
        # request path: one list append per duration into the current window's buffer of
        # its route; the buffers are folded into sketches in batches (``add_many``), when
        # one holds _BATCH values, when the window rolls over, and before any read
        self._buffers: dict[str, list[float]] = {}
        self._window_start = 0
        self._window_end = 0.0
        self.counters = CounterSet("apm_latency", ("recorded", "overflow", "flushes"))
        self._count_overflow = self.counters.incrementer("overflow")
        self._count_recorded = self.counters.incrementer("recorded")
        # per route since start: what Prometheus reads (histograms only grow)
        self._totals: dict[str, LatencySketch] = {}
        self.counters.histogram(
            "request_duration_seconds",
            "route",
            read=self._read_totals,
            help="Request duration per route template (sketch, 1 % relative error)",
        )
        self._store: Any
        self._owns: bool
        self._store, self._owns = (
            (None, False) if store is None else open_kv(store, "LatencyRecorder")
        )

    def record(self, route: str, seconds: float) -> None:
        """Add one duration (seconds) for ``route`` (in the window of the current time)."""
        try:
            if seconds - seconds:  # NaN and +-inf give NaN (true); finite numbers give 0
                raise ConfigurationError(f"latencies must be finite numbers, got {seconds!r}")
        except TypeError:
            raise ConfigurationError(f"latencies must be finite numbers, got {seconds!r}") from None
        if not self._window_start <= self._time() < self._window_end:
            self._roll()
        buffer = self._buffers.get(route)
        if buffer is None:
            buffer = self._new_route(route)
        buffer.append(seconds)
        if len(buffer) >= _BATCH:
            self._fold(route)

    def _new_route(self, route: str) -> list[float]:
        with self._lock:
            buffers = self._buffers
            if route not in buffers:
                if len(buffers) >= self.max_routes:
                    self._count_overflow()
                    route = OVERFLOW_ROUTE
                    if route in buffers:
                        return buffers[route]
                buffers[route] = []
            return buffers[route]

    def _roll(self) -> None:
        """Fold everything buffered into the window that is ending; start the current one."""
        with self._lock:
            now = self._time()
            if self._window_start <= now < self._window_end:
                return  # another thread rolled first
            self._fold_all_locked()
            start = int(now) // self.window * self.window
            self._window_start = start
            self._window_end = float(start + self.window)

    def _fold(self, route: str) -> None:
        with self._lock:
            self._fold_locked(route)

    def _fold_locked(self, route: str) -> None:
        buffer = self._buffers.get(route)
        if not buffer:
            return
        # copy then delete the copied prefix (each atomic under the GIL): a value appended
        # by another thread in between stays in the buffer for the next fold
        values = buffer[:]
        del buffer[: len(values)]
        batch = LatencySketch(self.relative_accuracy)
        batch.add_many(values)
        # the batch goes to its window and to the process totals: merging adds bucket
        # counts, cheaper than computing every value's bucket twice
        key = (self._window_start, route)
        sketch = self._pending.get(key)
        if sketch is None:
            self._pending[key] = batch.copy()
        else:
            sketch.merge(batch)
        total = self._totals.get(route)
        if total is None:
            self._totals[route] = batch
        else:
            total.merge(batch)
        count = self._count_recorded
        for _ in values:
            count()

    def _fold_all_locked(self) -> None:
        for route in list(self._buffers):
            self._fold_locked(route)

    def totals(self) -> dict[str, LatencySketch]:
        """Every duration this process recorded since it started, per route (copies)."""
        with self._lock:
            self._fold_all_locked()
            return {route: sk.copy() for route, sk in self._totals.items()}

    def _read_totals(self) -> dict[tuple[str, ...], LatencySketch]:
        return {(route,): sk for route, sk in self.totals().items()}

    def local(self) -> dict[str, LatencySketch]:
        """What this process recorded and has not flushed, merged per route."""
        out: dict[str, LatencySketch] = {}
        with self._lock:
            self._fold_all_locked()
            items = [(route, sk.copy()) for (_, route), sk in self._pending.items()]
        for route, sk in items:
            if route in out:
                out[route].merge(sk)
            else:
                out[route] = sk
        return out

    def flush(self) -> int:
        """Merge pending windows into the store; returns how many entries were written."""
        if self._store is None:
            return 0
        with self._lock:
            self._fold_all_locked()
            pending, self._pending = self._pending, {}
        written = 0
        for (start, route), sketch in pending.items():

            def merge(raw: bytes | None, sketch: LatencySketch = sketch) -> bytes:
                if raw is None:
                    return sketch.to_bytes()
                try:
                    stored = LatencySketch.from_bytes(raw)
                except SketchDecodeError:
                    return sketch.to_bytes()  # a corrupt entry is replaced, not propagated
                stored.merge(sketch)
                return stored.to_bytes()

            cas_update(
                self._store,
                _key(self._prefix, start, self.window, route),
                merge,
                ttl=self.retention,
            )
            written += 1
        self.counters.inc("flushes")
        return written

    def close(self) -> None:
        """Flush, then close the store if it was opened from a URL."""
        if self._store is not None:
            self.flush()
            if self._owns:
                self._store.close()


def _key(head: str, start: int, window: int, route: str) -> str:
    return safe_key(f"{head}{start:012d}:{window:06d}:", route)


def read_route_latencies(
    store: Any,
    *,
    since: float | None = None,
    until: float | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    limit: int = 100_000,
) -> dict[str, LatencySketch]:
    """Sketches per route merged over the windows that overlap ``[since, until)`` (seconds)."""
    out: dict[str, LatencySketch] = {}
    head = prefix(namespace, "latency")
    for entry in store.scan(head, limit=limit):
        rest = entry.key[len(head) :]
        stamp, _, rest = rest.partition(":")
        length, _, route = rest.partition(":")
        try:
            start = int(stamp)
            end = start + int(length)
            sketch = LatencySketch.from_bytes(entry.value)
        except (ValueError, SketchDecodeError):
            continue
        if (since is not None and end <= since) or (until is not None and start >= until):
            continue
        if route in out:
            try:
                out[route].merge(sketch)
            except ConfigurationError:
                continue
        else:
            out[route] = sketch
    return out


def summarize(
    sketches: dict[str, LatencySketch] | Iterable[tuple[str, LatencySketch]],
) -> list[RouteLatency]:
    """:class:`RouteLatency` rows, slowest p99 first."""
    items = sketches.items() if isinstance(sketches, dict) else sketches
    rows = [
        RouteLatency(
            route=route,
            count=sk.count,
            p50=sk.quantile(0.5),
            p95=sk.quantile(0.95),
            p99=sk.quantile(0.99),
            p999=sk.quantile(0.999),
            max=sk.max,
        )
        for route, sk in items
        if sk.count
    ]
    return sorted(rows, key=lambda r: -r.p99)
