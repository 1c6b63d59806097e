"""One structured JSON log line per request, with the request's W3C trace id.

:class:`AccessLog` is the outermost layer (pure ASGI), so requests the body guard, the WAF or
a rate limit refuse are logged too. The trace id comes from the caller's ``traceparent``
when it is valid; otherwise one is generated and a ``traceparent`` is added to the request,
so the APM stage further in (``cognitionos.integrations.apm.TracingMiddleware``) continues
the same trace and the log line and the server span share one trace id. Every answer
carries ``traceparent`` naming the trace and the server span (the parent's id when the
request was refused before the APM stage).

A line (logger ``cognitionos.server.access``, level INFO, the message is the JSON)::

    {"ts": "2026-01-01T12:00:00.123Z", "level": "info", "event": "request",
     "method": "POST", "path": "/v1/flags/beta/evaluate", "route": "/v1/flags/{key}/evaluate",
     "status": 200, "duration_ms": 2.41, "bytes": 97, "trace_id": "4bf9...", "span_id": "00f0...",
     "client": "127.0.0.1", "key_id": "AbCd1234"}

Secrets never appear: the key id is the public part of an API key; bodies and query
strings are not logged.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace as otel_trace

from cognitionos.apm import parse_traceparent
from cognitionos.integrations.apm import route_template
from cognitionos.server._keys import parse_token

__all__ = ["ACCESS_LOGGER", "AccessLog", "configure_access_log", "note_span"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

#: name of the logger the lines go to
ACCESS_LOGGER = "cognitionos.server.access"
_HOLDER = "cognitionos.access"


def note_span(scope: Scope, _status: int | None, _headers: Any, span: Any) -> None:
    """``annotate`` hook of the APM stage: remember the server span's id for the log line."""
    holder = scope.get(_HOLDER)
    if isinstance(holder, dict):
        holder["span_id"] = f"{span.get_span_context().span_id:016x}"


def _key_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                token = parse_token(text[7:].strip())
                return token.key_id if token is not None else None
    return None


class AccessLog:
    """Pure ASGI: one JSON line per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = list(scope.get("headers", ()))
        parent = None
        for name, value in headers:
            if name.lower() == b"traceparent":
                parent = parse_traceparent(value.decode("latin-1"))
                break
        if parent is not None:
            trace_id, parent_span = f"{parent[0]:032x}", f"{parent[1]:016x}"
        else:
            # no (valid) caller context: start a trace here and hand it to the APM stage
            trace_id, parent_span = secrets.token_hex(16), secrets.token_hex(8)
            headers = [(n, v) for n, v in headers if n.lower() != b"traceparent"]
            headers.append((b"traceparent", f"00-{trace_id}-{parent_span}-01".encode()))
            scope["headers"] = headers
        holder: dict[str, Any] = {}
        scope[_HOLDER] = holder
        status = 500
        sent = 0

        async def logged_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # the APM stage's server span is current while it sends (absent if refused)
                current = otel_trace.get_current_span().get_span_context()
                if current.is_valid and f"{current.trace_id:032x}" == trace_id:
                    holder.setdefault("span_id", f"{current.span_id:016x}")
                span_id = holder.get("span_id") or parent_span
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"traceparent", f"00-{trace_id}-{span_id}-01".encode()),
                ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                line = {
                    "ts": datetime.now(UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "level": "info" if status < 500 else "error",
                    "event": "request",
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "route": route_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "bytes": sent,
                    "trace_id": trace_id,
                    "span_id": holder.get("span_id"),
                    "client": client[0] if client else None,
                    "key_id": _key_id(headers),
                }
                self.logger.info(json.dumps(line, separators=(",", ":")))


def configure_access_log(stream: Any = None) -> logging.Handler:
    """Send the access lines to ``stream`` (stderr), one JSON object per line, once."""
    logger = logging.getLogger(ACCESS_LOGGER)
    for handler in logger.handlers:
        if getattr(handler, "_cognitionos_access", False):
            return handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._cognitionos_access = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
