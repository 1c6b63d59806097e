"""Pure-ASGI and WSGI middleware that put a :class:`~cognitionos.waf.Firewall` in front of an app.

Blocked requests get ``403`` with a JSON body carrying an incident id; the
request body is read up to ``max_body_bytes`` (never unbounded) and replayed to
the app. In detect-only mode nothing is blocked and ``X-WAF-Would-Block`` /
``X-WAF-Score`` response headers show what block mode would have done::

    app = FirewallMiddleware(app, Firewall(paranoia=1), trusted_proxies=["10.0.0.0/8"])
    wsgi_app = FirewallWSGIMiddleware(wsgi_app, Firewall(mode="detect"))

``middleware.counters`` is the firewall's own ``firewall.counters`` (a
:class:`~cognitionos.metrics.CounterSet`: inspected, blocked, would_block, too_large, and
attacks per category); the firewall counts its decisions, the middleware adds only
``too_large`` (bodies refused before inspection). It is read at scrape time by
:class:`~cognitionos.integrations.prometheus.EngineCollector`.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from cognitionos.errors import ConfigurationError
from cognitionos.integrations.proxies import TrustedProxies
from cognitionos.metrics import CounterSet
from cognitionos.waf import AutoBlacklist, Firewall, Request, Verdict

__all__ = ["FirewallMiddleware", "FirewallWSGIMiddleware", "firewall_counters"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def firewall_counters(firewall: Firewall | None = None) -> CounterSet:
    """The counters of ``firewall`` (of a new default :class:`Firewall` when None).

    Kept for callers of earlier releases: the counters now live on the firewall
    (``firewall.counters``), so every front that shares a firewall shares its totals.
    """
    return (firewall or Firewall()).counters


class _Guard:
    """What the ASGI and WSGI fronts share: client identity, counting, response bodies."""

    def __init__(
        self,
        firewall: Firewall | None,
        blacklist: AutoBlacklist | None,
        max_body_bytes: int,
        trusted_proxies: Iterable[str] | TrustedProxies,
        counters: CounterSet | None,
    ) -> None:
        self.firewall = firewall or Firewall()
        if counters is not None and counters is not self.firewall.counters:
            raise ConfigurationError(
                "counters= is no longer separate from the firewall: read firewall.counters "
                "(or middleware.counters, the same object)"
            )
        self.blacklist = blacklist
        self.max_body_bytes = max_body_bytes
        self.proxies = (
            trusted_proxies
            if isinstance(trusted_proxies, TrustedProxies)
            else TrustedProxies(trusted_proxies)
        )
        #: The firewall's counters: it counts its decisions, the middleware adds ``too_large``.
        self.counters = self.firewall.counters

    def client_ip(self, peer: str | None, headers: list[tuple[str, str]]) -> str | None:
        """The client address; forwarded headers count only through trusted proxies."""
        if not peer:
            return peer
        forwarded_for = ", ".join(v for k, v in headers if k.lower() == "x-forwarded-for")
        forwarded = ", ".join(v for k, v in headers if k.lower() == "forwarded")
        ip = self.proxies.client_ip(
            peer, forwarded_for=forwarded_for or None, forwarded=forwarded or None
        )
        return peer if ip == "unknown" else ip


def _forbidden_body(incident: str, verdict: Verdict | None, reason: str) -> bytes:
    doc: dict[str, Any] = {"error": "forbidden", "reason": reason, "incident_id": incident}
    if verdict is not None:
        doc["categories"] = sorted(verdict.categories)
    return json.dumps(doc).encode()


class FirewallMiddleware(_Guard):
    """Pure ASGI middleware: inspect, then block (403 JSON) or pass the request through."""

    def __init__(
        self,
        app: ASGIApp,
        firewall: Firewall | None = None,
        *,
        blacklist: AutoBlacklist | None = None,
        max_body_bytes: int = 1_048_576,
        trusted_proxies: Iterable[str] | TrustedProxies = (),
        counters: CounterSet | None = None,
    ) -> None:
        super().__init__(firewall, blacklist, max_body_bytes, trusted_proxies, counters)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                self.counters.inc("too_large")
                await self._respond(send, 413, b'{"error": "request body too large"}', [])
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        raw_path = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
        query = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        client = scope.get("client")
        peer = client[0] if client else None
        request = Request.from_raw(
            scope.get("method", "GET"),
            target,
            headers=headers,
            body=body,
            client_ip=self.client_ip(peer, headers),
            http_version=scope.get("http_version", "1.1"),
        )
        if self.blacklist is not None:
            import anyio.to_thread

            ban = await anyio.to_thread.run_sync(self.blacklist.is_banned, request)
            if ban is not None:
                await self._respond(
                    send, 403, _forbidden_body(secrets.token_hex(8), None, "client banned"), []
                )
                return
        verdict = self.firewall.inspect(request)
        if self.blacklist is not None and verdict.would_block:
            import anyio.to_thread

            await anyio.to_thread.run_sync(self.blacklist.record, request, verdict)
        if verdict.blocked:
            incident = secrets.token_hex(8)
            await self._respond(
                send,
                403,
                _forbidden_body(incident, verdict, "request blocked by firewall"),
                [(b"x-waf-incident", incident.encode())],
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if self.firewall.mode == "detect":
            extra = [
                (b"x-waf-would-block", b"1" if verdict.would_block else b"0"),
                (b"x-waf-score", str(verdict.score).encode()),
            ]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + extra
                await send(message)

            await self.app(scope, replay, send_with_headers)
        else:
            await self.app(scope, replay, send)

    @staticmethod
    async def _respond(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class FirewallWSGIMiddleware(_Guard):
    """WSGI middleware for Flask/Django: same decisions as :class:`FirewallMiddleware`."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        firewall: Firewall | None = None,
        *,
        blacklist: AutoBlacklist | None = None,
        max_body_bytes: int = 1_048_576,
        trusted_proxies: Iterable[str] | TrustedProxies = (),
        counters: CounterSet | None = None,
    ) -> None:
        super().__init__(firewall, blacklist, max_body_bytes, trusted_proxies, counters)
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_body_bytes:
            self.counters.inc("too_large")
            return self._respond(
                start_response, "413 Payload Too Large", b'{"error": "request body too large"}', []
            )
        stream = environ.get("wsgi.input")
        if stream is not None and length:
            body = stream.read(length)
        elif stream is not None and environ.get("wsgi.input_terminated"):
            # chunked upload without Content-Length: read at most one byte past the cap
            body = stream.read(self.max_body_bytes + 1)
            if len(body) > self.max_body_bytes:
                self.counters.inc("too_large")
                return self._respond(
                    start_response,
                    "413 Payload Too Large",
                    b'{"error": "request body too large"}',
                    [],
                )
        else:
            body = b""
        if stream is not None:
            environ["wsgi.input"] = io.BytesIO(body)
        headers = [
            (key[5:].replace("_", "-").title(), str(value))
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers.append((name, str(environ[key])))
        path = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not path:
            from urllib.parse import quote

            path = quote(
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/"), safe="/;:@&=+$,%"
            )
            if environ.get("QUERY_STRING"):
                path += "?" + environ["QUERY_STRING"]
        protocol = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).split("/", 1)[-1]
        request = Request.from_raw(
            environ.get("REQUEST_METHOD", "GET"),
            path,
            headers=headers,
            body=body,
            client_ip=self.client_ip(environ.get("REMOTE_ADDR"), headers),
            http_version=protocol,
        )
        if self.blacklist is not None and self.blacklist.is_banned(request) is not None:
            return self._respond(
                start_response,
                "403 Forbidden",
                _forbidden_body(secrets.token_hex(8), None, "client banned"),
                [],
            )
        verdict = self.firewall.inspect(request)
        if self.blacklist is not None and verdict.would_block:
            self.blacklist.record(request, verdict)
        if verdict.blocked:
            incident = secrets.token_hex(8)
            return self._respond(
                start_response,
                "403 Forbidden",
                _forbidden_body(incident, verdict, "request blocked by firewall"),
                [("X-WAF-Incident", incident)],
            )
        if self.firewall.mode == "detect":
            extra = [
                ("X-WAF-Would-Block", "1" if verdict.would_block else "0"),
                ("X-WAF-Score", str(verdict.score)),
            ]

            def start_with_headers(
                status: str, response_headers: list[tuple[str, str]], *exc: Any
            ) -> Any:
                return start_response(status, list(response_headers) + extra, *exc)

            return self.app(environ, start_with_headers)
        return self.app(environ, start_response)

    @staticmethod
    def _respond(
        start_response: Callable[..., Any], status: str, body: bytes, headers: list[tuple[str, str]]
    ) -> list[bytes]:
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
        )
        return [body]
