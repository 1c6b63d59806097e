"""Tail-based sampling: whole traces kept when they failed or were slow, decided at the root."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry import context, trace
from opentelemetry.trace import StatusCode

from cognitionos.apm import (
    ALWAYS_ON,
    BatchSpanProcessor,
    InMemorySpanExporter,
    TailSamplingProcessor,
    TraceIdRatioBased,
    TracerProvider,
)
from cognitionos.errors import ConfigurationError


def make(**options):
    exporter = InMemorySpanExporter()
    tail = TailSamplingProcessor(BatchSpanProcessor(exporter), **options)
    provider = TracerProvider(processor=tail)
    return provider, tail, exporter, provider.get_tracer("t")


def fail_inside(tracer, *names, late=None):
    """Nested current spans ``names``; the innermost raises RuntimeError("down")."""
    if not names:
        if late is not None:
            late.append(tracer.start_span(f"late-of-{late[0]}"))
        raise RuntimeError("down")
    with tracer.start_as_current_span(names[0]):
        fail_inside(tracer, *names[1:], late=late)


def exported(provider, exporter):
    assert provider.force_flush(5000)
    return sorted(s.name for s in exporter.spans)


def test_fast_successful_traces_are_dropped_and_counted():
    provider, _tail, exporter, tracer = make(slow=10.0)
    with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
        pass
    assert exported(provider, exporter) == []
    stats = provider.stats()
    assert stats["traces_dropped"] == 1
    assert stats["tail_spans_dropped"] == 2
    assert stats["traces_kept"] == 0


def test_a_failed_child_keeps_the_whole_trace():
    provider, _tail, exporter, tracer = make(slow=None)
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("ok-child"):
            pass
        with pytest.raises(KeyError), tracer.start_as_current_span("bad-child"):
            raise KeyError("x")
    assert exported(provider, exporter) == ["bad-child", "ok-child", "root"]
    assert provider.stats()["traces_kept"] == 1
    assert provider.stats()["tail_spans_kept"] == 3


def test_errors_are_not_kept_when_told_not_to():
    provider, _tail, exporter, tracer = make(slow=None, keep_errors=False)
    with pytest.raises(RuntimeError, match="down"):
        fail_inside(tracer, "root")
    assert exported(provider, exporter) == []


def test_a_slow_root_keeps_the_trace_a_fast_one_does_not():
    provider, _tail, exporter, tracer = make(slow=0.5)
    fast = tracer.start_span("fast", start_time=1_000_000_000)
    fast.end(1_400_000_000)  # 0.4 s
    slow = tracer.start_span("slow", start_time=1_000_000_000)
    child = tracer.start_span("slow-child", context=trace.set_span_in_context(slow))
    child.end(1_100_000_000)
    slow.end(1_500_000_000)  # exactly 0.5 s
    assert exported(provider, exporter) == ["slow", "slow-child"]


def test_the_baseline_keeps_the_same_traces_as_the_head_sampler_of_that_ratio():
    ratio = TraceIdRatioBased(0.5)
    provider, _tail, exporter, tracer = make(slow=None, baseline=ratio)
    ids = []
    for i in range(200):
        span = tracer.start_span(f"r{i}")
        ids.append((span.get_span_context().trace_id, f"r{i}"))
        span.end()
    expected = sorted(name for tid, name in ids if ratio.should_sample(None, tid, name))
    assert 60 < len(expected) < 140
    assert exported(provider, exporter) == expected


def test_a_remote_parent_makes_the_local_root():
    provider, _tail, exporter, tracer = make(slow=None)
    remote = trace.NonRecordingSpan(
        trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1))
    )
    token = context.attach(trace.set_span_in_context(remote))
    try:
        with pytest.raises(RuntimeError, match="down"):
            fail_inside(tracer, "server", "inner")
    finally:
        context.detach(token)
    assert exported(provider, exporter) == ["inner", "server"]


def test_spans_ending_after_their_root_follow_the_decision():
    provider, _tail, exporter, tracer = make(slow=None)
    late: list = ["kept"]
    with pytest.raises(RuntimeError, match="down"):
        fail_inside(tracer, "kept-root", late=late)
    late_kept = late[1]
    with tracer.start_as_current_span("dropped-root"):
        late_dropped = tracer.start_span("late-of-dropped")
    late_kept.end()
    late_dropped.end()
    assert exported(provider, exporter) == ["kept-root", "late-of-kept"]
    # the late span of the dropped trace is counted with the dropped ones
    assert provider.stats()["tail_spans_dropped"] == 2


def test_a_trace_buffers_at_most_max_spans_and_counts_the_rest(caplog):
    provider, _tail, exporter, tracer = make(slow=None, max_spans_per_trace=3)
    root = tracer.start_span("root")
    inside = trace.set_span_in_context(root)
    with caplog.at_level(logging.WARNING, "cognitionos.apm"):
        for i in range(5):
            tracer.start_span(f"c{i}", context=inside).end()
        last = tracer.start_span("last-fails", context=inside)  # overflows, still marks failed
        last.set_status(StatusCode.ERROR, "x")
        last.end()
        root.end()
    names = exported(provider, exporter)
    assert names == ["c0", "c1", "c2"]  # the root itself overflowed the buffer
    assert provider.stats()["tail_spans_overflow"] == 4
    assert provider.stats()["traces_kept"] == 1
    assert "dropping more" in caplog.text


def test_waiting_traces_are_bounded_the_oldest_evicted():
    provider, tail, exporter, tracer = make(slow=None, max_traces=2)
    roots = [tracer.start_span(f"root{i}") for i in range(3)]
    for i, root in enumerate(roots):
        child = tracer.start_span(f"child{i}", context=trace.set_span_in_context(root))
        child.set_status(StatusCode.ERROR)
        child.end()
    assert tail.pending_traces() == 2
    assert provider.stats()["tail_traces_evicted"] == 1
    for root in roots:
        root.end()
    # trace 0 lost its failed child to the eviction: its root alone decides (fast, OK)
    assert exported(provider, exporter) == ["child1", "child2", "root1", "root2"]


def test_shutdown_passes_on_failed_unfinished_traces_and_drops_the_rest():
    provider, tail, exporter, tracer = make(slow=None)
    ok_root = tracer.start_span("open-ok")
    tracer.start_span("ok-child", context=trace.set_span_in_context(ok_root)).end()
    bad_root = tracer.start_span("open-bad")
    bad = tracer.start_span("bad-child", context=trace.set_span_in_context(bad_root))
    bad.set_status(StatusCode.ERROR, "x")
    bad.end()
    assert tail.pending_traces() == 2
    assert provider.shutdown(5)
    assert sorted(s.name for s in exporter.spans) == ["bad-child"]
    assert provider.stats()["traces_dropped"] == 1


def test_a_5xx_behind_the_middleware_is_kept():
    from cognitionos.integrations.apm import TracingMiddleware

    provider, _tail, exporter, _ = make(slow=None)

    async def app(scope, receive, send):
        status = 503 if scope["path"] == "/fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = TracingMiddleware(app, tracer_provider=provider)

    async def call(path):
        async def receive():
            return {"type": "http.request"}

        async def send(message):
            return None

        await mw({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send)

    asyncio.run(call("/ok"))
    asyncio.run(call("/fail"))
    (span,) = exporter.spans if provider.force_flush(5000) else ()
    assert span.attributes["http.response.status_code"] == 503


def test_refuses_bad_settings():
    exporter = InMemorySpanExporter()
    good = BatchSpanProcessor(exporter)
    with pytest.raises(ConfigurationError, match="span processor"):
        TailSamplingProcessor(exporter)
    with pytest.raises(ConfigurationError, match="slow"):
        TailSamplingProcessor(good, slow=-1)
    with pytest.raises(ConfigurationError, match="baseline"):
        TailSamplingProcessor(good, baseline=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_traces"):
        TailSamplingProcessor(good, max_traces=0)
    assert TailSamplingProcessor(good, baseline=ALWAYS_ON).baseline is ALWAYS_ON
