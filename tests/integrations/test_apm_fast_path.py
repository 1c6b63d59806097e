"""TracingMiddleware's fast request path gives the span the propagator + OTel API path gives."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace

from cognitionos.apm import (
    ALWAYS_OFF,
    InMemorySpanExporter,
    LatencyRecorder,
    ParentBased,
    Span,
    TraceContextPropagator,
    TraceIdRatioBased,
    TracerProvider,
)
from cognitionos.integrations.apm import CognitionMiddleware, TracingMiddleware

VECTORS = "apm/w3c_trace_context_selftest_vectors.json"


class _Route:
    path_format = "/orders/{id}"


def serve(mw, headers, seen=None):
    async def app(scope, receive, send):
        if seen is not None:
            seen.append(trace.get_current_span())
            seen.append(baggage.get_all())
        scope["route"] = _Route()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        return None

    mw.app = app
    scope = {"type": "http", "method": "GET", "path": "/orders/7", "headers": headers}
    asyncio.run(mw(scope, receive, send))


def one_span(provider, exporter):
    assert provider.force_flush(5000)
    (span,) = exporter.spans
    exporter.clear()
    return span


def maybe_span(provider, exporter):
    """The request's span, or None when it was not sampled."""
    assert provider.force_flush(5000)
    spans = list(exporter.spans)
    exporter.clear()
    assert len(spans) <= 1
    return spans[0] if spans else None


def shape(span):
    if span is None:
        return None
    return (
        span.name,
        span.parent_id,
        span.parent_remote,
        list(span.trace_state.items()),
        span.attributes,
    )


def pair(**provider_options):
    """The same middleware twice: the fast path on, and forced off."""
    out = []
    for fast in (True, False):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(exporter=exporter, **provider_options)
        mw = TracingMiddleware(None, tracer_provider=provider)  # type: ignore[arg-type]
        assert mw._fast
        mw._fast = fast
        out.append((mw, provider, exporter))
    return out


def test_every_w3c_vector_gives_the_same_span_on_both_paths(data_file):
    vectors = json.loads(data_file(VECTORS).read_text("utf-8"))
    (fast, fp, fe), (slow, sp, se) = pair(seed=1)
    prop = TraceContextPropagator()
    checked_valid = unsampled = 0
    for case in vectors:
        # ASGI sends header names in lower case
        headers = [(k.lower().encode(), v.encode()) for k, v in case["headers"]]
        serve(fast, headers)
        serve(slow, headers)
        a, b = maybe_span(fp, fe), maybe_span(sp, se)
        assert shape(a) == shape(b), case
        remote = trace.get_current_span(prop.extract(headers)).get_span_context()
        if a is None:
            assert remote.is_valid and not remote.trace_flags.sampled
            unsampled += 1
        elif remote.is_valid:
            checked_valid += 1
            assert (a.trace_id, a.parent_id, a.parent_remote) == (
                remote.trace_id,
                remote.span_id,
                True,
            )
        else:
            assert a.parent_id == 0 and not a.parent_remote
    assert checked_valid >= 10 and checked_valid + unsampled >= 20
    assert fp.stats()["spans_not_sampled"] == sp.stats()["spans_not_sampled"] == unsampled


_HEX = "0123456789abcdefABCDEF"


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(["00", "01", "ff", "0", "cc"]),
    trace_id=st.text(_HEX, min_size=31, max_size=33),
    span_id=st.text(_HEX, min_size=15, max_size=17),
    flags=st.text(_HEX, min_size=1, max_size=3),
    pad=st.sampled_from(["", " ", "\t", "-x"]),
)
def test_traceparent_like_values_agree_on_both_paths(version, trace_id, span_id, flags, pad):
    value = f"{version}-{trace_id}-{span_id}-{flags}{pad}".encode()
    (fast, fp, fe), (slow, sp, se) = pair()
    serve(fast, [(b"host", b"x"), (b"traceparent", value)])
    serve(slow, [(b"host", b"x"), (b"traceparent", value)])
    a, b = maybe_span(fp, fe), maybe_span(sp, se)
    assert shape(a) == shape(b)
    if a is not None and a.parent_id:
        assert a.trace_id == b.trace_id


def test_fast_path_span_is_current_with_remote_ids_and_baggage_goes_the_long_way():
    (fast, provider, exporter), _ = pair()
    seen: list = []
    calls: list = []
    extract = fast.propagator.extract
    fast.propagator.extract = lambda carrier: calls.append(carrier) or extract(carrier)
    parent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    serve(fast, [(b"traceparent", parent)], seen)
    span = one_span(provider, exporter)
    assert seen[0] is span and type(span) is Span
    assert span.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent_id == 0xB7AD6B7169203331
    assert span.name == "GET /orders/{id}"
    assert span.attributes == {
        "http.request.method": "GET",
        "url.path": "/orders/7",
        "url.scheme": "http",
        "http.route": "/orders/{id}",
        "http.response.status_code": 200,
    }
    assert calls == []  # the plain header never reached the propagator
    seen.clear()
    serve(fast, [(b"traceparent", parent), (b"baggage", b"tenant=acme")], seen)
    assert len(calls) == 1
    assert seen[1] == {"tenant": "acme"}
    assert one_span(provider, exporter).parent_id == 0xB7AD6B7169203331


def test_an_unsampled_remote_parent_builds_no_span_but_propagates_and_is_timed():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(exporter=exporter)
    recorder = LatencyRecorder()
    mw = TracingMiddleware(None, tracer_provider=provider, recorder=recorder)  # type: ignore[arg-type]
    seen: list = []
    serve(mw, [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")], seen)
    assert provider.force_flush(5000) and exporter.spans == []
    ctx = seen[0].get_span_context()
    assert not seen[0].is_recording()
    assert ctx.trace_id == 0x0AF7651916CD43DD8448EB211C80319C and not ctx.trace_flags.sampled
    out: dict[str, str] = {}
    TraceContextPropagator().inject(out, context=trace.set_span_in_context(seen[0]))
    assert out["traceparent"].endswith("-00")
    assert recorder.local()["GET /orders/{id}"].count == 1
    assert provider.stats()["spans_not_sampled"] == 1


@pytest.mark.parametrize(
    "sampler",
    [
        TraceIdRatioBased(0.5),
        ParentBased(TraceIdRatioBased(0.5), remote_parent_sampled=TraceIdRatioBased(0.5)),
        ParentBased(ALWAYS_OFF),
    ],
    ids=["ratio", "parent-based-ratio", "parent-based-off"],
)
def test_other_samplers_decide_the_same_on_both_paths(sampler):
    (fast, fp, fe), (slow, sp, se) = pair(sampler=sampler)
    kept = 0
    ids = random.Random(7)
    for i in range(60):
        value = f"00-{ids.getrandbits(127) + 1:032x}-{i + 7:016x}-01".encode()
        serve(fast, [(b"traceparent", value)])
        serve(slow, [(b"traceparent", value)])
        fp.force_flush(5000)
        sp.force_flush(5000)
        assert len(fe.spans) == len(se.spans), i
        kept += len(fe.spans)
        fe.clear()
        se.clear()
    assert fp.stats()["spans_not_sampled"] == sp.stats()["spans_not_sampled"]
    if isinstance(sampler, ParentBased) and sampler.root is ALWAYS_OFF:
        assert kept == 60  # remote sampled parents are followed
    else:
        assert 10 < kept < 50


def test_odd_header_shapes_never_break_a_request():
    (fast, provider, exporter), _ = pair()
    for headers in ([[b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"]], (), None):
        serve(fast, headers)
        span = one_span(provider, exporter)
        assert span.name == "GET /orders/{id}"
    serve(fast, [(b"traceparent",)])  # not a pair: the propagator copes
    assert one_span(provider, exporter).parent_id == 0


def test_span_names_are_cached_per_route_and_capped():
    provider = TracerProvider(exporter=InMemorySpanExporter())
    mw = TracingMiddleware(None, tracer_provider=provider, max_span_names=2)  # type: ignore[arg-type]
    assert mw._span_name("GET", "/a") == "GET /a"
    assert mw._span_name("POST", "/a") == "POST /a"
    assert mw._span_name("GET", "/b") == "GET /b"
    assert mw._span_name("GET", "/c") == "GET /c"  # past the cap: built, not kept
    assert set(mw._names) == {"/a", "/b"}
    assert mw._span_name("GET", None) == "GET"


def test_cognition_middleware_with_only_apm_is_the_tracing_layer_itself():
    provider = TracerProvider(exporter=InMemorySpanExporter())
    mw = CognitionMiddleware(None, tracer_provider=provider)  # type: ignore[arg-type]
    assert isinstance(mw, TracingMiddleware) and mw.annotate is None and mw.app is None
    bare = CognitionMiddleware(None)  # type: ignore[arg-type]
    assert not bare._tracing


def test_latency_recording_is_the_same_on_both_paths(monkeypatch):
    """Both request paths record the same durations: windows, folds, per-route sketches
    and overflow agree (seeded request stamps, a manual clock rolling the windows)."""
    import itertools

    import cognitionos.integrations.apm as apm_mw
    from cognitionos.clock import ManualClock

    routes = ["/a/{id}", "/b", "/c/{x}/{y}", "/d", "/e"]

    def run(fast):
        rng = random.Random(42)
        # request stamps (ns) from a seeded walk: the same durations on both paths
        stamps = itertools.accumulate(rng.randrange(1_000, 90_000_000) for _ in range(10_000))
        monkeypatch.setattr(apm_mw, "_time_ns", stamps.__next__)
        clock = ManualClock(start=1_000)
        recorder = LatencyRecorder(clock=clock, window=60, max_routes=4)  # /e overflows
        mw = TracingMiddleware(
            None,  # type: ignore[arg-type]
            tracer_provider=TracerProvider(exporter=InMemorySpanExporter()),
            recorder=recorder,
        )
        mw._fast = fast
        picks = random.Random(7)

        async def app(scope, receive, send):
            scope["cognitionos.route"] = scope["path"]
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        async def receive():
            return {"type": "http.request"}

        async def send(message):
            return None

        mw.app = app

        async def many():
            for _ in range(1_500):  # crosses the 256-value fold several times per route
                scope = {"type": "http", "method": "GET", "path": picks.choice(routes)}
                scope["headers"] = []
                await mw(scope, receive, send)
                clock.advance(picks.choice([0, 0, 0, 0.5, 7]))  # windows roll over

        asyncio.run(many())
        with recorder._lock:
            recorder._fold_all_locked()
        pending = {key: sk.to_bytes() for key, sk in recorder._pending.items()}
        totals = {route: sk.to_bytes() for route, sk in recorder.totals().items()}
        return pending, totals, recorder.counters.snapshot()

    fast, slow = run(True), run(False)
    assert fast == slow
    pending, totals, counters = fast
    assert len({start for start, _ in pending}) > 3  # several windows were used
    assert "/e" not in totals and counters["overflow"] > 0
    from cognitionos.apm import LatencySketch

    assert sum(LatencySketch.from_bytes(raw).count for raw in totals.values()) == 1_500


class _FlagsSeen:
    def __init__(self, values):
        self._values = values

    def evaluations(self):
        return {k: type("Ev", (), {"value": v})() for k, v in self._values.items()}


def _remaining_by_hand(value: bytes):
    """The RateLimit header's ``r`` parameter read part by part (the reference)."""
    out = None
    for part in value.decode("latin-1").split(";"):
        key, _, number = part.strip(" \t").partition("=")
        if key == "r" and number and all(c in "0123456789" for c in number):
            out = int(number)
    return out


@pytest.mark.parametrize("max_attributes", [128, 5])
def test_stage_attributes_in_bulk_equal_set_attribute_one_by_one(max_attributes):
    """CognitionMiddleware writes the stages' answers into our span's dict in one update
    when they fit; a span of another type takes set_attribute per key. Both must agree,
    including truncation of long flag values and the attribute cap."""

    class _Slow(Span):  # same layout, not ``type(span) is Span``: the one-by-one path
        __slots__ = ()

    provider = TracerProvider(
        exporter=InMemorySpanExporter(), max_attributes=max_attributes, max_attribute_length=16
    )
    mw = CognitionMiddleware(None, tracer_provider=provider)  # type: ignore[arg-type]
    mw._waf_on = mw._limit_on = mw._flags_on = True
    tracer = provider.get_tracer("t")
    cases = [
        (200, [(b"RateLimit", b'"default";r=5;t=30')], {"a": True}),
        (403, [(b"x-waf-incident", b"abc"), (b"ratelimit", b"r=1;r=2")], {}),
        (429, [(b"ratelimit", b' "p" ; r=abc ; t=1')], {"long": "x" * 40, "n": 3}),
        (None, [], {"a": "short"}),
    ]
    for status, headers, flag_values in cases:
        spans = []
        for slow in (False, True):
            span = tracer.start_span("s", attributes={"k1": 1, "k2": 2, "k3": 3})
            if slow:
                span.__class__ = _Slow
            scope = {"state": {"flags": _FlagsSeen(flag_values)}}
            mw._annotate(scope, status, headers, span)
            spans.append(dict(span.attributes))
        fast, slow_attrs = spans
        assert fast == slow_attrs
        remaining = next(
            (_remaining_by_hand(v) for k, v in headers if k.lower() == b"ratelimit"), None
        )
        if len(fast) < max_attributes:
            assert fast.get("cognitionos.ratelimit.remaining") == remaining
            assert fast["cognitionos.waf.blocked"] == (status == 403)
    stats = provider.stats()
    if max_attributes == 128:  # the 40-character flag value was cut to 16, on both paths
        assert stats["attributes_truncated"] == 2
    else:  # past the cap of 5, on both paths
        assert stats["attributes_dropped"] > 0
