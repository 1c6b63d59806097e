"""request.state.flags (ASGI), environ["cognitionos.flags"] (WSGI) and the FastAPI dependency."""

from __future__ import annotations

import asyncio
import io

import fastapi
from fastapi.testclient import TestClient

from cognitionos.flags import FlagEngine
from cognitionos.integrations.flags import (
    Flags,
    FlagsMiddleware,
    FlagsWSGIMiddleware,
    RequestFlags,
)

PAYLOAD = {
    "features": {
        "new-checkout": {
            "defaultValue": False,
            "rules": [{"condition": {"id": "vip"}, "force": True}],
        },
        "theme": {"defaultValue": "dark"},
    }
}


def engine():
    return FlagEngine.from_growthbook(PAYLOAD, track_evaluations=True)


def test_asgi_middleware_sets_request_state_flags():
    seen = {}

    async def app(scope, receive, send):
        flags = scope["state"]["flags"]
        seen["checkout"] = flags.is_on("new-checkout")
        seen["theme"] = flags.value("theme")
        seen["missing"] = flags.value("nope", "fallback")
        seen["all"] = flags.all()

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"x-user-id", b"vip")],
        "client": ("198.51.100.1", 1234),
    }
    asyncio.run(FlagsMiddleware(app, engine())(scope, None, None))
    assert seen == {
        "checkout": True,
        "theme": "dark",
        "missing": "fallback",
        "all": {"new-checkout": True, "theme": "dark"},
    }


def test_evaluations_are_memoised_per_request():
    eng = engine()
    flags = RequestFlags(eng, {"id": "someone"})
    for _ in range(5):
        assert flags.is_on("new-checkout") is False
    assert sum(n for (key, _), n in eng.evaluation_counts().items() if key == "new-checkout") == 1


def test_lifespan_scope_passes_through_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    asyncio.run(FlagsMiddleware(app, engine())({"type": "lifespan"}, None, None))
    assert seen == [{"type": "lifespan"}]


def test_wsgi_middleware_puts_flags_in_environ():
    def app(environ, start_response):
        flags = environ["cognitionos.flags"]
        start_response("200 OK", [])
        return [str(flags.is_on("new-checkout")).encode()]

    mw = FlagsWSGIMiddleware(app, engine(), attributes=lambda info: {"id": info.headers["x-user"]})
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_X_USER": "vip",
        "wsgi.input": io.BytesIO(),
    }
    assert b"".join(mw(environ, lambda *a: None)) == b"True"


def test_fastapi_state_and_dependency_agree():
    eng = engine()
    app = fastapi.FastAPI()

    @app.get("/state")
    async def via_state(request: fastapi.Request):
        return {"on": request.state.flags.is_on("new-checkout")}

    @app.get("/dep")
    async def via_dependency(flags: RequestFlags = fastapi.Depends(Flags(eng))):  # noqa: B008
        return {"on": flags.is_on("new-checkout"), "theme": flags.value("theme")}

    client = TestClient(FlagsMiddleware(app, eng))
    assert client.get("/state", headers={"x-user-id": "vip"}).json() == {"on": True}
    assert client.get("/state", headers={"x-user-id": "other"}).json() == {"on": False}
    assert client.get("/dep", headers={"x-user-id": "vip"}).json() == {"on": True, "theme": "dark"}

    bare = fastapi.FastAPI()  # dependency without the middleware
    bare.get("/dep")(via_dependency)
    assert TestClient(bare).get("/dep", headers={"x-user-id": "vip"}).json()["on"] is True
