"""What adapters and key functions see of an HTTP request, whichever the server interface.

info = RequestInfo.from_scope(scope)      # ASGI
info = RequestInfo.from_environ(environ)  # WSGI
info.headers["user-agent"], info.peer
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["RequestInfo"]


@attrs.frozen(slots=True)
class RequestInfo:
    """What key functions see of a request, whichever the server interface."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    peer: str | None

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> RequestInfo:
        """From an ASGI HTTP scope."""
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        client = scope.get("client")
        return cls(
            scope.get("method", "GET"),
            scope.get("path", "/"),
            headers,
            client[0] if client else None,
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestInfo:
        """From a WSGI environ."""
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if k in environ:
                headers[k.replace("_", "-").lower()] = str(environ[k])
        return cls(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/"),
            headers,
            environ.get("REMOTE_ADDR"),
        )
