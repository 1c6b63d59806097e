"""ASGI and WSGI middleware: 403 JSON with incident id, body replay, size cap, detect headers."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.integrations.waf import FirewallMiddleware, FirewallWSGIMiddleware
from cognitionos.metrics import CounterSet
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall, Request


async def echo_app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"echo:" + body})


def call(
    app, method="GET", path="/", query=b"", body=b"", headers=None, client=("198.51.100.7", 1234)
):
    hdrs = (
        headers
        if headers is not None
        else [(b"host", b"h"), (b"accept", b"*/*"), (b"user-agent", b"t")]
    )
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": hdrs,
        "client": client,
        "http_version": "1.1",
    }
    chunks = [body[i : i + 10] for i in range(0, len(body), 10)] or [b""]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    headers_out = dict(sent[0].get("headers", []))
    return status, headers_out, b"".join(m.get("body", b"") for m in sent[1:])


def test_blocked_request_gets_403_json_with_incident_id():
    status, headers, body = call(FirewallMiddleware(echo_app), query=b"q=%27%20or%201%3D1--")
    doc = json.loads(body)
    assert status == 403 and doc["error"] == "forbidden" and "sqli" in doc["categories"]
    assert (
        len(doc["incident_id"]) == 16 and headers[b"x-waf-incident"].decode() == doc["incident_id"]
    )


def test_clean_request_passes_with_body_replayed():
    status, _, body = call(
        FirewallMiddleware(echo_app),
        method="POST",
        body=b"a=1&b=hello world",
        headers=[
            (b"host", b"h"),
            (b"accept", b"*/*"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
    )
    assert (status, body) == (200, b"echo:a=1&b=hello world")


def test_attack_in_chunked_body_is_seen():
    status, _, _ = call(
        FirewallMiddleware(echo_app),
        method="POST",
        body=b"comment=<script>alert(1)</script>",
        headers=[
            (b"host", b"h"),
            (b"accept", b"*/*"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
    )
    assert status == 403


def test_body_over_cap_is_413_without_buffering_it_all():
    status, _, _ = call(
        FirewallMiddleware(echo_app, max_body_bytes=50), method="POST", body=b"x" * 500
    )
    assert status == 413


def test_detect_mode_passes_and_adds_headers():
    status, headers, _ = call(
        FirewallMiddleware(echo_app, Firewall(mode="detect")), query=b"q=%3Cscript%3E"
    )
    assert (
        status == 200
        and headers[b"x-waf-would-block"] == b"1"
        and int(headers[b"x-waf-score"]) >= 5
    )


def test_non_http_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(FirewallMiddleware(app)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


def test_blacklist_bans_after_repeated_attacks_and_honours_trusted_proxy():
    clock = ManualClock(start=1000)
    bl = AutoBlacklist(open_store("memory://", clock=clock), threshold=2, clock=clock)
    mw = FirewallMiddleware(echo_app, blacklist=bl, trusted_proxies=["10.0.0.0/8"])
    via_proxy = [(b"host", b"h"), (b"accept", b"*/*"), (b"x-forwarded-for", b"203.0.113.50")]
    for _ in range(2):
        call(mw, query=b"q=%27%20or%201%3D1--", headers=via_proxy, client=("10.0.0.2", 1))
    status, _, body = call(mw, query=b"q=hello", headers=via_proxy, client=("10.0.0.2", 1))
    assert status == 403 and json.loads(body)["reason"] == "client banned"
    assert bl.get_ban("203.0.113.50") is not None  # the client, not the proxy, is banned
    totals = mw.counters.snapshot()
    assert totals["inspected"] == 2 and totals["blocked"] == 2 and totals["would_block"] == 2
    assert mw.counters.families()["attacks"].snapshot() == {("sqli",): 2}


def wsgi_app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"echo:" + body]


def wsgi_call(app, query="", body=b"", method="GET"):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/x",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "h",
        "HTTP_ACCEPT": "*/*",
        "REMOTE_ADDR": "198.51.100.7",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.input": io.BytesIO(body),
    }
    captured = {}

    def start_response(status, headers, *exc):
        captured["status"], captured["headers"] = status, dict(headers)

    out = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], out


def test_wsgi_block_pass_and_detect():
    status, headers, out = wsgi_call(
        FirewallWSGIMiddleware(wsgi_app), query="q=..%2F..%2Fetc%2Fpasswd"
    )
    assert status.startswith("403") and json.loads(out)["incident_id"] == headers["X-WAF-Incident"]
    status, _, out = wsgi_call(FirewallWSGIMiddleware(wsgi_app), method="POST", body=b"name=Ada")
    assert status.startswith("200") and out == b"echo:name=Ada"
    status, headers, _ = wsgi_call(
        FirewallWSGIMiddleware(wsgi_app, Firewall(mode="detect")), query="q=%3Cscript%3E"
    )
    assert status.startswith("200") and headers["X-WAF-Would-Block"] == "1"
    status, _, _ = wsgi_call(
        FirewallWSGIMiddleware(wsgi_app, max_body_bytes=4), method="POST", body=b"0123456789"
    )
    assert status.startswith("413")


def test_wsgi_chunked_upload_is_inspected_and_replayed():
    mw = FirewallWSGIMiddleware(wsgi_app, max_body_bytes=64)
    seen = {}

    def start_response(status, headers, *exc):
        seen["status"] = status

    def environ(body):
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/submit",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "198.51.100.4",
            "HTTP_HOST": "app.example.com",
            "HTTP_ACCEPT": "*/*",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,  # chunked: no Content-Length
        }

    out = b"".join(mw(environ(b"name=alice"), start_response))
    assert seen["status"] == "200 OK" and out == b"echo:name=alice"
    out = b"".join(mw(environ(b"name=%27%20or%201%3D1--"), start_response))
    assert seen["status"] == "403 Forbidden"
    out = b"".join(mw(environ(b"a=" + b"x" * 100), start_response))
    assert seen["status"] == "413 Payload Too Large"
    assert mw.counters.snapshot()["too_large"] == 1


def test_the_middleware_reads_the_firewall_counters():
    fw = Firewall()
    asgi = FirewallMiddleware(echo_app, fw)
    wsgi = FirewallWSGIMiddleware(wsgi_app, fw)
    assert asgi.counters is fw.counters and wsgi.counters is fw.counters
    call(asgi, query=b"q=%3Cscript%3Ealert(1)%3C/script%3E")
    call(asgi, query=b"q=hello")
    fw.inspect(Request.from_raw("GET", "/?q=%27%20or%201%3D1--", headers=[("Host", "h")]))
    totals = fw.counters.snapshot()
    assert (totals["inspected"], totals["blocked"], totals["would_block"]) == (3, 2, 2)
    assert fw.counters.families()["attacks"].snapshot() == {("xss",): 1, ("sqli",): 1}
    with pytest.raises(ConfigurationError):
        FirewallMiddleware(echo_app, fw, counters=CounterSet("waf", ()))
