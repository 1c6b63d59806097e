"""``application/problem+json`` (RFC 9457) for every error the server returns.

FastAPI's own 404/405/422 and unexpected exceptions go through the same handlers, so a
client never sees HTML, a bare ``{"detail": ...}`` or a stack trace.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = [
    "PROBLEM",
    "ApiError",
    "install_handlers",
    "invalid_body",
    "problem_bytes",
    "problem_response",
]

PROBLEM = "application/problem+json"
log = logging.getLogger("cognitionos.server")


class ApiError(Exception):
    """An error answer: ``raise ApiError(404, "no flag 'x' in this tenant")``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.type = type_
        self.extra = extra or {}


def invalid_body(exc: Any, what: str) -> ApiError:
    """422 for a body part a model refused (a pydantic ``ValidationError``), with the path of
    every field as a JSON pointer and as a dotted location."""
    errors = [
        {
            "pointer": "/" + "/".join(str(p) for p in e.get("loc", ())),
            "location": ".".join(["body", *(str(p) for p in e.get("loc", ()))]),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return ApiError(422, f"invalid {what}", extra={"errors": errors})


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_bytes(status: int, detail: str, *, type_: str = "about:blank", **extra: Any) -> bytes:
    """The problem document as JSON bytes."""
    doc = {"type": type_, "title": _title(status), "status": status, "detail": detail, **extra}
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def problem_response(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
    **extra: Any,
) -> Response:
    """A problem+json response."""
    return Response(
        problem_bytes(status, detail, type_=type_, **extra),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def install_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return problem_response(
            exc.status, exc.detail, headers=exc.headers, type_=exc.type, **exc.extra
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "pointer": "/" + "/".join(str(p) for p in e.get("loc", ())[1:])
                if e.get("loc", ("",))[0] == "body"
                else None,
                "location": ".".join(str(p) for p in e.get("loc", ())),
                "message": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        for e in errors:
            if e["pointer"] is None:
                del e["pointer"]
        where = ", ".join(str(e["location"]) for e in errors[:5])
        return problem_response(422, f"invalid request: {where}", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal error; the server log has the details")
