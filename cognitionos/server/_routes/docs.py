"""``GET /docs``: Swagger UI with every asset served by this server (no CDN, works offline).

The JavaScript, CSS and icon come from the ``fastapi-offline`` package (MIT; it ships Swagger
UI 5, Apache-2.0, which reads OpenAPI 3.1), a dependency of the ``server`` extra; we use only
its static files, and only the three the page loads are served. The validator badge (which
calls an outside service) is off. FastAPI's ReDoc page is not offered.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from cognitionos._optional import require
from cognitionos.server._problems import ApiError

__all__ = ["ASSETS", "install_docs"]

#: file names under ``/docs/assets/`` -> media type (nothing else in the bundle is served)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
#: revalidate (ETag / Last-Modified): the URLs stay the same when the package is upgraded
_CACHE = "no-cache"


def _bundle_dir() -> Path:
    import importlib.util

    # found without importing it: the package's own FastAPI subclass is not used
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        require("fastapi_offline", extra="server", purpose="the /docs page")  # raises
        raise AssertionError("unreachable")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` and ``/docs/assets/{name}`` to ``app`` (both outside the OpenAPI document).

    ``app`` must be built with ``docs_url=None`` and ``redoc_url=None``.
    """
    folder = _bundle_dir()
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(
            f"the /docs assets folder {folder} lacks {missing}; reinstall fastapi-offline"
        )
    openapi_url = app.openapi_url or "/openapi.json"

    async def docs_page(_request: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        return page

    async def docs_asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = ASSETS.get(name)
        if media_type is None:
            raise ApiError(404, f"no docs asset {name!r}")
        return FileResponse(folder / name, media_type=media_type, headers={"Cache-Control": _CACHE})

    app.add_route("/docs", docs_page, methods=["GET"], include_in_schema=False)
    app.add_route("/docs/assets/{name}", docs_asset, methods=["GET"], include_in_schema=False)
