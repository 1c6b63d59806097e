"""Pure-ASGI layers of the server that run before any route (never ``BaseHTTPMiddleware``).

- :class:`BodyGuard`: bodies over the limit get 413 (declared length or counted while
  streaming), bodies that are not JSON get 415; both as problem+json.
- :class:`ProblemFirewall`: the WAF adapter, answering its refusals as problem+json.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cognitionos.integrations.waf import FirewallMiddleware
from cognitionos.server._problems import PROBLEM, problem_bytes

__all__ = ["BodyGuard", "ProblemFirewall"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _send_problem(send: Any, status: int, detail: str, headers: list[Any] = ()) -> None:  # type: ignore[assignment]
    body = problem_bytes(status, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyGuard:
    """413 for bodies over ``max_body_bytes``; 415 for a body that is not ``application/json``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length_text = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        try:
            length = int(length_text) if length_text is not None else None
        except ValueError:
            await _send_problem(send, 400, "Content-Length is not a number")
            return
        if length is not None and length > self.max_body_bytes:
            await _send_problem(
                send, 413, f"request body of {length} bytes exceeds {self.max_body_bytes}"
            )
            return
        has_body = (length or 0) > 0 or chunked
        if has_body and not _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            await _send_problem(
                send,
                415,
                "request bodies must be application/json",
                [(b"accept-post", b"application/json")],
            )
            return
        limit = self.max_body_bytes
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    raise _TooLarge
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooLarge:
            if not started:
                await _send_problem(send, 413, f"request body exceeds {limit} bytes")
        except Exception:
            if refused and not started:
                await _send_problem(send, 413, f"request body exceeds {limit} bytes")
                return
            raise


class _TooLarge(Exception):
    """A streamed body passed the limit."""


class _Asked:
    """``send`` of one request, carrying what the request asked (for the incident record)."""

    __slots__ = ("incidents", "scope", "send")

    def __init__(self, send: Any, scope: Scope, incidents: Any) -> None:
        self.send = send
        self.scope = scope
        self.incidents = incidents

    async def __call__(self, message: Message) -> None:
        await self.send(message)


class ProblemFirewall(FirewallMiddleware):
    """:class:`FirewallMiddleware` whose 403/413 answers are problem+json documents.

    With ``incidents`` (a bounded deque) each refusal is also noted there: incident id,
    time, peer address, method, path, status, reason and rule categories.
    """

    def __init__(self, app: Any, *args: Any, incidents: Any = None, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self.incidents = incidents

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.incidents is not None and scope["type"] == "http":
            send = _Asked(send, scope, self.incidents)
        await super().__call__(scope, receive, send)

    @staticmethod
    async def _respond(
        send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        reason = str(doc.get("reason") or doc.get("error") or "refused")
        extra = {k: v for k, v in doc.items() if k in ("incident_id", "categories")}
        if isinstance(send, _Asked):
            import time

            client = send.scope.get("client")
            send.incidents.append(
                {
                    "incident_id": doc.get("incident_id"),
                    "at_ns": time.time_ns(),
                    "client": client[0] if client else None,
                    "method": send.scope.get("method"),
                    "path": send.scope.get("path"),
                    "status": status,
                    "reason": reason,
                    "categories": list(doc.get("categories") or []),
                }
            )
        payload = problem_bytes(status, reason, **extra)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
