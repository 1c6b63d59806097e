"""TracerProvider behind the opentelemetry-api: span trees, context, exceptions, export."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from cognitionos.apm import (
    ALWAYS_OFF,
    ALWAYS_ON,
    BatchSpanProcessor,
    InMemorySpanExporter,
    ParentBased,
    TraceContextPropagator,
    TraceIdRatioBased,
    TracerProvider,
)
from cognitionos.errors import ConfigurationError


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter):
    p = TracerProvider(exporter=exporter, service_name="shop")
    yield p
    p.shutdown()


def finished(provider, exporter):
    assert provider.force_flush(5000)
    return {s.name: s for s in exporter.spans}


def test_is_an_opentelemetry_tracer_provider(provider):
    assert isinstance(provider, trace.TracerProvider)
    tracer = trace.get_tracer("lib", tracer_provider=provider)
    assert isinstance(tracer, trace.Tracer)
    assert provider.get_tracer("lib") is provider.get_tracer("lib")


def test_api_code_builds_the_expected_tree(provider, exporter):
    # code written only against the OTel API
    tracer = trace.get_tracer("orders", "1.2", tracer_provider=provider)
    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/orders/{id}")
        assert trace.get_current_span() is root
        with tracer.start_as_current_span("db.query", attributes={"db.system": "postgresql"}):
            inner = trace.get_current_span()
            inner.add_event("rows", {"n": 3})
            with tracer.start_as_current_span("decode"):
                pass
        assert trace.get_current_span() is root
        sibling = tracer.start_span("render")
        sibling.end()
    assert not trace.get_current_span().get_span_context().is_valid
    spans = finished(provider, exporter)
    assert set(spans) == {"GET /orders/{id}", "db.query", "decode", "render"}
    root_s, db, dec, ren = (spans[n] for n in ("GET /orders/{id}", "db.query", "decode", "render"))
    assert root_s.parent_id == 0
    assert db.parent_id == root_s.span_id
    assert dec.parent_id == db.span_id
    assert ren.parent_id == root_s.span_id
    assert len({s.trace_id for s in spans.values()}) == 1
    assert root_s.kind is SpanKind.SERVER
    assert root_s.attributes == {"http.route": "/orders/{id}"}
    assert db.attributes == {"db.system": "postgresql"}
    assert db.events[0].name == "rows" and db.events[0].attributes == {"n": 3}
    assert root_s.start_time <= db.start_time <= dec.start_time <= dec.end_time <= root_s.end_time
    assert root_s.scope.name == "orders" and root_s.scope.version == "1.2"


def test_exceptions_are_recorded_and_reraised(provider, exporter):
    tracer = provider.get_tracer("t")
    with pytest.raises(KeyError), tracer.start_as_current_span("boom"):
        raise KeyError("order-42")
    span = finished(provider, exporter)["boom"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "KeyError: 'order-42'"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "KeyError"
    assert event.attributes["exception.escaped"] == "True"
    assert "raise KeyError" in event.attributes["exception.stacktrace"]
    assert isinstance(span.exception, KeyError)


def test_exception_recording_can_be_turned_off(provider, exporter):
    tracer = provider.get_tracer("t")
    with (
        pytest.raises(ValueError, match="x"),
        tracer.start_as_current_span(
            "quiet", record_exception=False, set_status_on_exception=False
        ),
    ):
        raise ValueError("x")
    span = finished(provider, exporter)["quiet"]
    assert not span.events
    assert span.status.status_code is StatusCode.UNSET


def test_status_rules(provider):
    span = provider.get_tracer("t").start_span("s")
    span.set_status(StatusCode.ERROR, "bad")
    span.set_status(StatusCode.UNSET)
    assert span.status.status_code is StatusCode.ERROR
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR, "later")
    assert span.status.status_code is StatusCode.OK
    span.end()
    span.set_attribute("after", 1)
    span.update_name("renamed")
    assert "after" not in span.attributes and span.name == "s"
    assert not span.is_recording()


def test_context_follows_await_and_tasks(provider, exporter):
    tracer = provider.get_tracer("t")

    async def child(name):
        await asyncio.sleep(0)
        with tracer.start_as_current_span(name):
            await asyncio.sleep(0)

    async def main():
        with tracer.start_as_current_span("parent"):
            await asyncio.gather(child("a"), child("b"))
        assert not trace.get_current_span().get_span_context().is_valid

    asyncio.run(main())
    spans = finished(provider, exporter)
    assert spans["a"].parent_id == spans["parent"].span_id
    assert spans["b"].parent_id == spans["parent"].span_id


def test_context_follows_copy_context_into_threads(provider, exporter):
    tracer = provider.get_tracer("t")

    def work():
        with tracer.start_as_current_span("in-thread"):
            pass

    with tracer.start_as_current_span("parent"), ThreadPoolExecutor(2) as pool:
        ctx = contextvars.copy_context()
        pool.submit(ctx.run, work).result()
        # without the copied context a thread starts a new trace
        pool.submit(lambda: tracer.start_span("orphan").end()).result()
    spans = finished(provider, exporter)
    assert spans["in-thread"].parent_id == spans["parent"].span_id
    assert spans["orphan"].parent_id == 0
    assert spans["orphan"].trace_id != spans["parent"].trace_id


def test_generators_do_not_leak_the_current_span(provider):
    tracer = provider.get_tracer("t")

    def gen():
        with tracer.start_as_current_span("gen"):
            yield 1
            yield 2

    g = gen()
    next(g)
    # the generator's span is current only while it runs... this is the API's contract too:
    # the with-block inside a suspended generator keeps its context attached, so a
    # generator must be exhausted or closed before the caller's span ends
    g.close()
    assert not trace.get_current_span().get_span_context().is_valid


def test_remote_parent_from_the_propagator_and_injection(provider, exporter):
    tracer = provider.get_tracer("t")
    prop = TraceContextPropagator()
    incoming = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "congo=t61rcWkgMzE",
    }
    with tracer.start_as_current_span("handler", context=prop.extract(incoming)) as span:
        out: dict[str, str] = {}
        prop.inject(out)
    s = finished(provider, exporter)["handler"]
    assert s.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert s.parent_id == 0xB7AD6B7169203331
    assert s.parent_remote
    assert out["traceparent"] == f"00-0af7651916cd43dd8448eb211c80319c-{s.span_id:016x}-01"
    assert out["tracestate"] == "congo=t61rcWkgMzE"
    assert span.get_span_context().trace_state.get("congo") == "t61rcWkgMzE"


def test_not_sampled_spans_propagate_but_are_not_exported(exporter):
    provider = TracerProvider(exporter=exporter, sampler=ALWAYS_OFF)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("dropped") as span:
        assert not span.is_recording()
        out: dict[str, str] = {}
        TraceContextPropagator().inject(out)
        assert out["traceparent"].endswith("-00")
        with tracer.start_as_current_span("child") as child:
            assert child.get_span_context().trace_id == span.get_span_context().trace_id
    provider.shutdown()
    assert exporter.spans == []
    assert provider.stats()["spans_not_sampled"] == 2


def test_parent_based_follows_a_remote_unsampled_parent(exporter):
    provider = TracerProvider(exporter=exporter, sampler=ParentBased(ALWAYS_ON))
    ctx = TraceContextPropagator().extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    )
    span = provider.get_tracer("t").start_span("x", context=ctx)
    assert not span.is_recording()
    provider.shutdown()


def test_attribute_limits_truncate_and_count(exporter):
    provider = TracerProvider(exporter=exporter, max_attributes=2, max_attribute_length=5)
    span = provider.get_tracer("t").start_span("s")
    span.set_attribute("a", "0123456789")
    span.set_attribute("b", [1, 2])
    span.set_attribute("c", 3)
    span.set_attribute("a", "x")  # overwriting an existing key is allowed
    span.end()
    assert span.attributes == {"a": "x", "b": (1, 2)}
    stats = provider.stats()
    assert stats["attributes_truncated"] == 1
    assert stats["attributes_dropped"] == 1
    provider.shutdown()


def test_full_queue_drops_and_counts_without_blocking(caplog):
    gate = threading.Event()

    class Blocking(InMemorySpanExporter):
        def export(self, spans):
            gate.wait(5)
            return super().export(spans)

    exporter = Blocking()
    processor = BatchSpanProcessor(
        exporter, max_queue_size=10, max_export_batch_size=5, schedule_delay=0.01
    )
    provider = TracerProvider(processor=processor)
    tracer = provider.get_tracer("t")
    started = time.perf_counter()
    for i in range(100):
        tracer.start_span(f"s{i}").end()
    assert time.perf_counter() - started < 1.0
    gate.set()
    assert provider.force_flush(5000)
    stats = provider.stats()
    assert stats["spans_dropped"] > 0
    assert stats["spans_dropped"] + stats["spans_exported"] == 100
    assert len(exporter.spans) == stats["spans_exported"]
    assert "dropping spans" in caplog.text
    provider.shutdown()


def test_shutdown_meets_its_deadline_when_the_exporter_hangs():
    class Hanging(InMemorySpanExporter):
        def export(self, spans):
            time.sleep(10)
            return True

    provider = TracerProvider(exporter=Hanging())
    tracer = provider.get_tracer("t")
    for _ in range(600):  # more than one batch: the export thread wakes and hangs
        tracer.start_span("s").end()
    started = time.perf_counter()
    assert provider.shutdown(timeout=0.3) is False
    assert time.perf_counter() - started < 1.5
    assert provider.stats()["spans_dropped"] > 0


def test_exporter_errors_are_counted_not_raised(caplog):
    class Failing(InMemorySpanExporter):
        def export(self, spans):
            raise OSError("collector down")

    provider = TracerProvider(exporter=Failing())
    provider.get_tracer("t").start_span("s").end()
    provider.force_flush(2000)
    assert provider.stats()["spans_failed"] == 1
    assert provider.stats()["export_errors"] == 1
    provider.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_exports_and_draws_fresh_ids(exporter):
    provider = TracerProvider(exporter=exporter)
    tracer = provider.get_tracer("t")
    tracer.start_span("before").end()  # the export thread now runs in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            span = tracer.start_span("child")
            span.end()
            ok = provider.force_flush(2000)
            names = [s.name for s in exporter.spans]
            os.write(write, f"{ok},{'child' in names},{span.trace_id}".encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    ok, exported, child_trace = os.read(read, 200).decode().split(",")
    os.close(read)
    parent_span = tracer.start_span("parent-after")
    parent_span.end()
    assert ok == "True" and exported == "True"
    assert int(child_trace) != parent_span.trace_id
    provider.shutdown()


def test_bad_configuration_is_refused(exporter):
    with pytest.raises(ConfigurationError, match="sampler"):
        TracerProvider(sampler="always")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        TracerProvider(exporter=exporter, processor=BatchSpanProcessor(exporter))
    with pytest.raises(ConfigurationError, match="max_attribute_length"):
        TracerProvider(max_attribute_length=0)
    with pytest.raises(ConfigurationError, match="ratio"):
        TraceIdRatioBased(1.5)
    with pytest.raises(ConfigurationError, match="tracer name"):
        TracerProvider().get_tracer("")
    with pytest.raises(ConfigurationError, match="exporter"):
        BatchSpanProcessor(object())  # type: ignore[arg-type]


# -- differential: the SDK's samplers decide the same ------------------------------------------

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)


@pytest.mark.peers
@settings(max_examples=300, deadline=None)
@given(trace_ids, st.floats(min_value=0, max_value=1))
def test_ratio_sampler_matches_the_sdk(trace_id, ratio):
    from opentelemetry.sdk.trace import sampling

    theirs = sampling.TraceIdRatioBased(ratio).should_sample(None, trace_id, "n")
    ours = TraceIdRatioBased(ratio).should_sample(None, trace_id, "n")
    assert ours == theirs.decision.is_sampled()


@pytest.mark.peers
@settings(max_examples=300, deadline=None)
@given(trace_ids, st.floats(min_value=0, max_value=1), st.booleans(), st.booleans(), st.booleans())
def test_parent_based_sampler_matches_the_sdk(trace_id, ratio, has_parent, remote, sampled):
    from opentelemetry.sdk.trace import sampling
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    parent = None
    ctx = None
    if has_parent:
        parent = SpanContext(trace_id, 0xABC, remote, TraceFlags(1 if sampled else 0))
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    theirs = sampling.ParentBased(sampling.TraceIdRatioBased(ratio)).should_sample(
        ctx, trace_id, "n"
    )
    ours = ParentBased(TraceIdRatioBased(ratio)).should_sample(parent, trace_id, "n")
    assert ours == theirs.decision.is_sampled()


def test_run_in_executor_keeps_the_parent_with_in_current_context(provider, exporter):
    from cognitionos.apm import in_current_context

    tracer = provider.get_tracer("t")

    def work(label):
        with tracer.start_as_current_span(label):
            return trace.get_current_span().get_span_context().trace_id

    async def main():
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(2) as pool, tracer.start_as_current_span("request"):
            kept = await loop.run_in_executor(pool, in_current_context(work), "wrapped")
            lost = await loop.run_in_executor(pool, work, "bare")
        return kept, lost

    kept, lost = asyncio.run(main())
    spans = finished(provider, exporter)
    assert spans["wrapped"].parent_id == spans["request"].span_id
    assert kept == spans["request"].trace_id
    assert spans["bare"].parent_id == 0 and lost != spans["request"].trace_id
