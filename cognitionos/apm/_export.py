"""Getting finished spans out of the process without slowing the request path.

:class:`BatchSpanProcessor` keeps ended spans in a bounded ``deque``: ``on_end`` is one
length check and one append (atomic under the GIL, no lock). A daemon thread wakes every
``schedule_delay`` seconds, or as soon as a full batch is waiting, and hands batches to the
exporter. When the queue is full the span is dropped and counted, and a warning is logged
at most once a minute. ``shutdown(timeout)`` flushes within a deadline and never hangs,
even when the exporter blocks (the thread is a daemon; what is left is counted as dropped).

An exporter is anything with ``export(spans) -> bool`` and ``shutdown()``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cognitionos.errors import ConfigurationError
from cognitionos.metrics import CounterSet

if TYPE_CHECKING:
    from cognitionos.apm._tracer import Span

__all__ = ["BatchSpanProcessor", "InMemorySpanExporter", "SpanExporter"]

log = logging.getLogger("cognitionos.apm")

_WARN_EVERY_S = 60.0


@runtime_checkable
class SpanExporter(Protocol):
    """Where finished spans go: ``export`` returns True when the batch was accepted."""

    def export(self, spans: Sequence[Span]) -> bool:
        """Send one batch; return False on failure (the batch is counted as failed)."""
        ...

    def shutdown(self) -> None:
        """Release connections; called once by the processor's shutdown."""
        ...


class InMemorySpanExporter:
    """Keeps exported spans in a list (tests, examples, benchmarks)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self.shut_down = False

    def export(self, spans: Sequence[Span]) -> bool:
        """Append the batch."""
        with self._lock:
            self.spans.extend(spans)
        return True

    def shutdown(self) -> None:
        """Mark as shut down (spans stay readable)."""
        self.shut_down = True

    def clear(self) -> None:
        """Forget the spans seen so far."""
        with self._lock:
            self.spans.clear()


class BatchSpanProcessor:
    """Bounded queue + background export thread (see the module docstring)."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 5.0,
    ) -> None:
        if not hasattr(exporter, "export") or not hasattr(exporter, "shutdown"):
            raise ConfigurationError(
                f"exporter must have export() and shutdown(), got {type(exporter).__name__}"
            )
        for name, value in (
            ("max_queue_size", max_queue_size),
            ("max_export_batch_size", max_export_batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
        if max_export_batch_size > max_queue_size:
            raise ConfigurationError("max_export_batch_size must not exceed max_queue_size")
        if not isinstance(schedule_delay, (int, float)) or not 0 < schedule_delay < 3600:
            raise ConfigurationError(
                f"schedule_delay must be in (0, 3600) s, got {schedule_delay!r}"
            )
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay = float(schedule_delay)
        self.counters = CounterSet(
            "apm_export", ("spans_dropped", "spans_exported", "spans_failed", "export_errors")
        )
        self._count_dropped = self.counters.incrementer("spans_dropped")
        self._last_warning = 0.0
        self._init_state()
        from cognitionos._fork import reset_after_fork

        reset_after_fork(self)

    def _init_state(self) -> None:
        self._queue: deque[Span] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition(threading.Lock())
        self._exporting = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def _after_fork_in_child(self) -> None:
        # the parent's thread does not exist here; its queued spans are the parent's to send
        self._init_state()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopping:
            thread = threading.Thread(target=self._run, name="cognitionos-apm-export", daemon=True)
            self._thread = thread
            thread.start()

    # -- hot path ---------------------------------------------------------------------------

    def on_end(self, span: Span) -> None:
        """Queue a finished span (drop and count when the queue is full)."""
        queue = self._queue
        n = len(queue)
        if n >= self.max_queue_size or self._stopping:
            self._count_dropped()
            self._warn_dropped()
            return
        queue.append(span)
        if self._thread is None:
            self._ensure_thread()
        # Event.set takes a lock and notifies: once per batch, not once per span. The
        # length climbs one append at a time, so it passes the batch size exactly once on
        # the way up; the woken thread drains until the queue is empty.
        if n + 1 == self.max_export_batch_size:
            self._wake.set()

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning(
                "span queue full (%d): dropping spans; %d dropped so far",
                self.max_queue_size,
                self.counters.snapshot()["spans_dropped"],
            )

    # -- export thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            self._drain()

    def _drain(self, deadline: float | None = None) -> bool:
        with self._idle:
            self._exporting = True
        try:
            queue = self._queue
            while queue:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                batch = []
                pop = queue.popleft
                try:
                    for _ in range(self.max_export_batch_size):
                        batch.append(pop())
                except IndexError:
                    pass
                self._export(batch)
            return True
        finally:
            with self._idle:
                self._exporting = False
                self._idle.notify_all()

    def _export(self, batch: list[Span]) -> None:
        try:
            ok = self.exporter.export(batch)
        except Exception:
            log.exception("span exporter %r failed", self.exporter)
            ok = False
            self.counters.inc("export_errors")
        self.counters.add("spans_exported" if ok else "spans_failed", len(batch))

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export everything queued now; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        if self._thread is None or not self._thread.is_alive():
            return self._drain(deadline)
        self._wake.set()
        with self._idle:
            while self._queue or self._exporting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
                if self._queue and not self._exporting:
                    self._wake.set()
        return True

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush within ``timeout`` seconds, stop the thread, shut the exporter down.

        Returns False when spans were left behind (they are counted as dropped).
        """
        deadline = time.monotonic() + timeout
        flushed = self.force_flush(max(0.0, timeout))
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = len(self._queue)
        self._queue.clear()
        for _ in range(left):
            self._count_dropped()
        try:
            self.exporter.shutdown()
        except Exception:
            log.exception("span exporter %r failed to shut down", self.exporter)
        return flushed and left == 0
