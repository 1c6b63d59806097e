"""ASGI/WSGI middleware, key functions and the IETF RateLimit header fields."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from cognitionos.clock import ManualClock
from cognitionos.integrations.ratelimit import (
    ABNORMAL_USAGE,
    QUOTA_EXCEEDED,
    ClientIP,
    RateLimitMiddleware,
    RequestInfo,
    WSGIRateLimitMiddleware,
    api_key,
    decision_headers,
    route_key,
)
from cognitionos.ratelimit import AsyncRateLimiter, Limit, RateLimiter

from .conftest import T0

# draft-ietf-httpapi-ratelimit-headers: sf-list items "name";param=int...
ITEM = r'"[^"]*"(;[a-z]+=(\d+|"[^"]*"|:[A-Za-z0-9+/=]*:))+'
FIELD = re.compile(rf"^{ITEM}(,[ \t]*{ITEM})*$")


def info(peer, xff=None, **headers):
    h = {k.replace("_", "-"): v for k, v in headers.items()}
    if xff is not None:
        h["x-forwarded-for"] = xff
    return RequestInfo("GET", "/items", h, peer)


def test_client_ip_trusts_forwarded_for_only_through_trusted_proxies():
    from cognitionos.integrations import TrustedProxies

    key = ClientIP(TrustedProxies(["10.0.0.0/8"], ipv6_prefix=64))
    assert key(info("203.0.113.7", xff="1.1.1.1")) == "ip:203.0.113.7"  # spoof ignored
    assert key(info("10.0.0.2", xff="6.6.6.6, 198.51.100.4, 10.0.0.9")) == "ip:198.51.100.4"
    assert key(info("2001:db8:1:2:aaaa::1")) == "ip:2001:db8:1:2::/64"
    assert key(info(None)) is None
    bare = ClientIP()
    assert bare(info("10.0.0.2", xff="198.51.100.4")) == "ip:10.0.0.2"
    assert bare(info(None)) is None


def test_other_key_functions():
    assert api_key()(info("1.2.3.4", x_api_key="k1")) == "key:k1"
    assert api_key()(info("1.2.3.4")) is None
    assert route_key(ClientIP())(info("1.2.3.4")) == "route:GET /items|ip:1.2.3.4"


def test_headers_follow_the_ietf_draft_syntax(data_file):
    examples = json.loads(data_file("ratelimit/ratelimit_headers_draft_examples.json").read_text())
    for example in examples["valid_policy_examples"] + examples["valid_ratelimit_examples"]:
        assert FIELD.match(example), example  # the checker accepts the draft's own examples
    limiter = RateLimiter(clock=ManualClock(T0))
    d = limiter.hit_many(
        [(Limit(amount=2, period=60, name="permin"), "a"), (Limit(amount=100, period=3600), "a")]
    )
    headers = dict(decision_headers(d))
    assert headers["RateLimit-Policy"] == '"permin";q=2;w=60, "100-per-3600s";q=100;w=3600'
    hour_left = 3600 - T0 % 3600  # clock-aligned windows: T0 is minute- but not hour-aligned
    assert headers["RateLimit"] == f'"permin";r=1;t=60, "100-per-3600s";r=99;t={hour_left}'
    assert FIELD.match(headers["RateLimit-Policy"]) and FIELD.match(headers["RateLimit"])
    assert "Retry-After" not in headers


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _call_asgi(app, scope):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _scope(peer="192.0.2.5"):
    return {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (peer, 1234)}


@pytest.mark.parametrize("make", [RateLimiter, AsyncRateLimiter])
def test_asgi_middleware_limits_and_answers_429_problem_json(make):
    clock = ManualClock(T0)
    app = RateLimitMiddleware(
        _app, limiter=make(clock=clock), limits="2/minute", legacy_headers=True
    )
    for remaining in (1, 0):
        start, body = _call_asgi(app, _scope())
        headers = dict(start["headers"])
        assert start["status"] == 200 and body["body"] == b"ok"
        assert headers[b"x-app"] == b"1"
        assert headers[b"ratelimit"] == f'"2-per-60s";r={remaining};t=60'.encode()
        assert headers[b"x-ratelimit-reset"] == str(T0 + 60).encode()
    clock.advance(0.5)
    start, body = _call_asgi(app, _scope())
    headers = dict(start["headers"])
    assert start["status"] == 429
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"retry-after"] == b"60"  # 59.5 s rounded up
    problem = json.loads(body["body"])
    assert problem["type"] == QUOTA_EXCEEDED and problem["status"] == 429
    assert problem["violated-policies"] == ["2-per-60s"]
    # another client is not affected; non-http scopes pass through
    assert _call_asgi(app, _scope("192.0.2.6"))[0]["status"] == 200
    assert _call_asgi(app, {"type": "lifespan"})[0]["status"] == 200


def test_asgi_banned_client_gets_abnormal_usage_problem():
    limiter = AsyncRateLimiter(clock=ManualClock(T0))
    asyncio.run(limiter.ban("ip:192.0.2.5", 90))
    app = RateLimitMiddleware(_app, limiter=limiter, limits="100/minute")
    start, body = _call_asgi(app, _scope())
    assert start["status"] == 429
    assert dict(start["headers"])[b"retry-after"] == b"90"
    assert json.loads(body["body"])["type"] == ABNORMAL_USAGE


def test_wsgi_middleware():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = WSGIRateLimitMiddleware(
        app, limiter=RateLimiter(clock=ManualClock(T0)), limits="1/second"
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": "192.0.2.1"}
    seen = []

    def start_response(status, headers, *exc):
        seen.append((status, dict(headers)))

    assert wrapped(environ, start_response) == [b"ok"]
    assert seen[-1][0] == "200 OK" and seen[-1][1]["RateLimit"] == '"1-per-1s";r=0;t=1'
    body = wrapped(environ, start_response)
    assert seen[-1][0] == "429 Too Many Requests"
    assert seen[-1][1]["Retry-After"] == "1"
    assert json.loads(body[0])["type"] == QUOTA_EXCEEDED


def test_fastapi_dependency():
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    from cognitionos.integrations.ratelimit import RateLimit

    app = fastapi.FastAPI()
    limiter = AsyncRateLimiter(clock=ManualClock(T0))

    @app.get("/", dependencies=[fastapi.Depends(RateLimit("1/minute", limiter=limiter))])
    async def root():
        return {"ok": True}

    client = testclient.TestClient(app)
    first = client.get("/")
    assert first.status_code == 200 and first.headers["ratelimit"] == '"1-per-60s";r=0;t=60'
    second = client.get("/")
    assert second.status_code == 429 and second.headers["retry-after"] == "60"


def test_fastapi_dependency_logic_without_fastapi(monkeypatch):
    """The dependency's own work (key, decision, headers) runs without FastAPI installed."""
    import sys
    from types import SimpleNamespace

    from cognitionos.errors import MissingDependency
    from cognitionos.integrations.ratelimit import RateLimit

    for top in ("fastapi", "starlette"):  # as if neither were installed
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, top, None)
    dep = RateLimit("1/minute", limiter=AsyncRateLimiter(clock=ManualClock(T0)))
    request = SimpleNamespace(scope=_scope())
    response = SimpleNamespace(headers={})
    decision = asyncio.run(dep(request, response))
    assert decision.allowed
    assert response.headers["RateLimit"] == '"1-per-60s";r=0;t=60'
    with pytest.raises(MissingDependency, match="server"):
        asyncio.run(dep(request, SimpleNamespace(headers={})))
    with pytest.raises(MissingDependency):
        _ = dep.__signature__
