"""Feature flags in web apps: ``request.state.flags`` (ASGI), ``environ["cognitionos.flags"]``
(WSGI) and a FastAPI dependency, all over one :class:`~cognitionos.flags.FlagEngine`.

Each request gets a :class:`RequestFlags`: the user's attributes are computed once,
flags are evaluated only when asked, and every answer is remembered for the rest
of the request, so a page asking the same flag five times evaluates it once::

    app = FlagsMiddleware(app, engine, attributes=lambda info: {"id": info.headers.get("x-user")})

    @app.get("/checkout")
    async def checkout(request: Request):
        if request.state.flags.is_on("new-checkout"): ...

    # FastAPI, without the middleware:
    async def checkout(flags: RequestFlags = Depends(Flags(engine, attributes=user_of))): ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from cognitionos._optional import require
from cognitionos.flags import Evaluation, FlagEngine
from cognitionos.integrations.request import RequestInfo

__all__ = ["Flags", "FlagsMiddleware", "FlagsWSGIMiddleware", "RequestFlags", "default_attributes"]

Attributes = Callable[[RequestInfo], Mapping[str, Any]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WSGI_KEY = "cognitionos.flags"


def default_attributes(info: RequestInfo) -> dict[str, Any]:
    """Attributes every request has: ``ip``, ``path``, ``method``, ``userAgent`` (and ``id``
    from an ``X-User-Id`` header when present). Pass your own function to add the user."""
    attrs: dict[str, Any] = {"ip": info.peer, "path": info.path, "method": info.method}
    if "user-agent" in info.headers:
        attrs["userAgent"] = info.headers["user-agent"]
    if "x-user-id" in info.headers:
        attrs["id"] = info.headers["x-user-id"]
    return attrs


class RequestFlags:
    """The flags of one request: evaluated on first use, remembered for the request."""

    __slots__ = ("_cache", "_engine", "attributes")

    def __init__(self, engine: FlagEngine, attributes: Mapping[str, Any]) -> None:
        self._engine = engine
        self.attributes = attributes
        self._cache: dict[str, Evaluation] = {}

    def evaluate(self, key: str, default: Any = None) -> Evaluation:
        """The full :class:`~cognitionos.flags.Evaluation` of ``key`` for this request's user."""
        ev = self._cache.get(key)
        if ev is None:
            ev = self._cache[key] = self._engine.evaluate(key, self.attributes, default)
        return ev

    def value(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (``default`` when the flag is unknown or fails)."""
        return self.evaluate(key, default).value

    def is_on(self, key: str) -> bool:
        """True when ``key`` evaluates to a truthy value."""
        return bool(self.evaluate(key, False).value)

    def evaluations(self) -> dict[str, Evaluation]:
        """The flags this request evaluated so far (e.g. for the request's trace span)."""
        return dict(self._cache)

    def all(self) -> dict[str, Any]:
        """Every flag's value for this user, e.g. to bootstrap a browser client."""
        return {k: ev.value for k, ev in self._engine.evaluate_all(self.attributes).items()}


class FlagsMiddleware:
    """Pure ASGI: puts a :class:`RequestFlags` at ``scope["state"]["flags"]``
    (``request.state.flags`` in Starlette and FastAPI). Non-HTTP scopes pass through."""

    def __init__(
        self, app: ASGIApp, engine: FlagEngine, *, attributes: Attributes = default_attributes
    ) -> None:
        self.app = app
        self.engine = engine
        self.attributes = attributes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            flags = RequestFlags(self.engine, self.attributes(RequestInfo.from_scope(scope)))
            scope.setdefault("state", {})["flags"] = flags
        await self.app(scope, receive, send)


class FlagsWSGIMiddleware:
    """WSGI (Flask, Django): puts a :class:`RequestFlags` at ``environ["cognitionos.flags"]``."""

    def __init__(
        self,
        app: Callable[..., Any],
        engine: FlagEngine,
        *,
        attributes: Attributes = default_attributes,
    ) -> None:
        self.app = app
        self.engine = engine
        self.attributes = attributes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        info = RequestInfo.from_environ(environ)
        environ[WSGI_KEY] = RequestFlags(self.engine, self.attributes(info))
        return self.app(environ, start_response)


class Flags:
    """FastAPI dependency returning the request's :class:`RequestFlags`.

    Reuses the one :class:`FlagsMiddleware` attached when present, so middleware and
    dependency agree; otherwise builds it from the request::

        @app.get("/")
        async def home(flags: RequestFlags = Depends(Flags(engine))): ...
    """

    def __init__(self, engine: FlagEngine, *, attributes: Attributes = default_attributes) -> None:
        self.engine = engine
        self.attributes = attributes

    def __call__(self, request: Any) -> RequestFlags:
        existing = request.scope.get("state", {}).get("flags")
        if isinstance(existing, RequestFlags):
            return existing
        return RequestFlags(self.engine, self.attributes(RequestInfo.from_scope(request.scope)))

    @property
    def __signature__(self) -> Any:
        # FastAPI injects by annotation: tell it the parameter is the Starlette Request
        import inspect

        starlette = require("starlette.requests", extra="server", purpose="the FastAPI dependency")
        param = inspect.Parameter(
            "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=starlette.Request
        )
        return inspect.Signature([param], return_annotation=RequestFlags)
