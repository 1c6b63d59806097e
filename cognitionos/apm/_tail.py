"""Tail-based sampling: keep whole traces that failed or were slow, decided when they end.

A head sampler decides at a trace's first span, before anyone knows whether it will fail.
:class:`TailSamplingProcessor` sits in front of the exporting processor and holds the
ended spans of each local trace in a bounded buffer until its local root ends (the span
with no parent, or a remote one: the request span). Then it decides once for the trace:

- kept when any of its spans has an ERROR status (an exception escaped, a 5xx), when the
  root lasted at least ``slow`` seconds, or when ``baseline`` keeps the trace id (a
  :class:`TraceIdRatioBased`, so every service keeps the same share of ordinary traces);
- otherwise dropped, and counted.

Spans that end after their root (a background task) follow the decision already made;
the last ``max_traces`` decisions are remembered. Memory is bounded twice: a trace holds
at most ``max_spans_per_trace`` spans (further ones are dropped, counted, but still mark
the trace as failed when they failed), and at most ``max_traces`` traces wait for their
root (past that the oldest waiting trace is dropped and counted). Losses, as opposed to
sampling decisions, log a warning at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import StatusCode

from cognitionos.apm._sampling import ALWAYS_OFF, Sampler
from cognitionos.errors import ConfigurationError
from cognitionos.metrics import CounterSet

if TYPE_CHECKING:
    from cognitionos.apm._tracer import Span

__all__ = ["TailSamplingProcessor"]

log = logging.getLogger("cognitionos.apm")

_WARN_EVERY_S = 60.0
_ERROR = StatusCode.ERROR

_COUNTERS = (
    "traces_kept",
    "traces_dropped",
    "tail_spans_kept",
    "tail_spans_dropped",
    "tail_spans_overflow",
    "tail_traces_evicted",
)


class _Pending:
    __slots__ = ("failed", "spans")

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.failed = False


class TailSamplingProcessor:
    """Buffers each trace until its root ends, then keeps it (errors, slow) or drops it.

    ::

        processor = TailSamplingProcessor(BatchSpanProcessor(exporter), slow=0.5)
        provider = TracerProvider(processor=processor)   # head sampler: keep everything

    ``next`` is the processor that exports kept spans (a :class:`BatchSpanProcessor`).
    """

    def __init__(
        self,
        next: Any,
        *,
        slow: float | None = 1.0,
        keep_errors: bool = True,
        baseline: Sampler = ALWAYS_OFF,
        max_spans_per_trace: int = 256,
        max_traces: int = 10_000,
    ) -> None:
        for method in ("on_end", "force_flush", "shutdown"):
            if not callable(getattr(next, method, None)):
                raise ConfigurationError(
                    f"next must be a span processor with {method}(), got {type(next).__name__}"
                )
        if slow is not None and (
            isinstance(slow, bool) or not isinstance(slow, (int, float)) or not slow >= 0
        ):
            raise ConfigurationError(f"slow must be seconds >= 0 or None, got {slow!r}")
        if not isinstance(baseline, Sampler):
            raise ConfigurationError(f"baseline must be a Sampler, got {type(baseline).__name__}")
        for name, value in (
            ("max_spans_per_trace", max_spans_per_trace),
            ("max_traces", max_traces),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
        self.next = next
        self.slow = slow
        self._slow_ns = None if slow is None else int(slow * 1e9)
        self.keep_errors = keep_errors
        self.baseline = baseline
        self.max_spans_per_trace = max_spans_per_trace
        self.max_traces = max_traces
        self.counters = CounterSet("apm_tail", _COUNTERS)
        self._count = {name: self.counters.incrementer(name) for name in _COUNTERS}
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}  # insertion order = age
        self._decided: dict[int, bool] = {}
        self._last_warning = 0.0

    # -- hot path ---------------------------------------------------------------------------

    def on_end(self, span: Span) -> None:
        """Buffer ``span``; at its trace's local root, decide and pass the trace on or drop it."""
        trace_id = span.trace_id
        failed = span.status.status_code is _ERROR
        is_root = not span.parent_id or span.parent_remote
        with self._lock:
            decided = self._decided.get(trace_id)
            if decided is not None:  # a late span of a trace already decided
                batch = [span] if decided else None
            elif not is_root:
                pending = self._pending.get(trace_id)
                if pending is None:
                    pending = self._admit(trace_id)
                if failed:
                    pending.failed = True
                self._buffer(pending, span)
                return
            else:
                pending = self._pending.pop(trace_id, None)
                if pending is None:  # a trace of one span: nothing was buffered
                    pending = _Pending()
                self._buffer(pending, span)
                keep = self._keep(span, failed or pending.failed)
                self._remember(trace_id, keep)
                batch = pending.spans if keep else None
                self._count["traces_kept" if keep else "traces_dropped"]()
                if not keep:
                    drop = self._count["tail_spans_dropped"]
                    for _ in pending.spans:
                        drop()
        if batch is None:
            if decided is not None:
                self._count["tail_spans_dropped"]()
            return
        on_end = self.next.on_end
        keep_one = self._count["tail_spans_kept"]
        for kept in batch:
            keep_one()
            on_end(kept)

    def _buffer(self, pending: _Pending, span: Span) -> None:
        if len(pending.spans) < self.max_spans_per_trace:
            pending.spans.append(span)
        else:
            self._count["tail_spans_overflow"]()
            self._warn("a trace holds %d spans: dropping more", self.max_spans_per_trace)

    def _admit(self, trace_id: int) -> _Pending:
        pending = self._pending
        if len(pending) >= self.max_traces:
            oldest = next(iter(pending))
            evicted = pending.pop(oldest)
            self._count["tail_traces_evicted"]()
            drop = self._count["tail_spans_dropped"]
            for _ in evicted.spans:
                drop()
            self._warn("%d traces wait for their root: dropping the oldest", self.max_traces)
        entry = pending[trace_id] = _Pending()
        return entry

    def _keep(self, root: Span, failed: bool) -> bool:
        if failed and self.keep_errors:
            return True
        if self._slow_ns is not None and root.end_time - root.start_time >= self._slow_ns:
            return True
        return self.baseline.should_sample(None, root.trace_id, root.name)

    def _remember(self, trace_id: int, keep: bool) -> None:
        decided = self._decided
        if len(decided) >= self.max_traces:
            del decided[next(iter(decided))]
        decided[trace_id] = keep

    def _warn(self, message: str, value: int) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning(message, value)

    # -- lifecycle --------------------------------------------------------------------------

    def pending_traces(self) -> int:
        """How many traces wait for their root span."""
        return len(self._pending)

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Flush the next processor (traces still waiting for their root stay buffered)."""
        return bool(self.next.force_flush(timeout))

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Decide the traces whose root never ended, then shut the next processor down.

        Failed ones are passed on (an error is worth an incomplete trace); the rest are
        dropped and counted.
        """
        with self._lock:
            left = list(self._pending.values())
            self._pending.clear()
        drop = self._count["tail_spans_dropped"]
        for pending in left:
            if pending.failed and self.keep_errors:
                self._count["traces_kept"]()
                for span in pending.spans:
                    self._count["tail_spans_kept"]()
                    self.next.on_end(span)
            else:
                self._count["traces_dropped"]()
                for _ in pending.spans:
                    drop()
        return bool(self.next.shutdown(timeout))
