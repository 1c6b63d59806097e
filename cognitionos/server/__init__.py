"""The reference server: the engines behind a multi-tenant REST API (FastAPI, pure ASGI).

``create_app(settings)`` builds the ASGI app for embedding and tests; ``cognitionos serve``
runs it with uvicorn. Settings come from ``COGNITIONOS_…`` environment variables::

    from cognitionos.server import Settings, create_app
    app = create_app(Settings(database_url="sqlite:///app.db"))
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Importing this package does not import FastAPI; :func:`create_app` does.
"""

from __future__ import annotations

import typing
from typing import Any

if typing.TYPE_CHECKING:
    from cognitionos.server._settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Settings needs pydantic-settings (the ``server`` extra): importing it lazily keeps
    # ``cognitionos serve --help`` and ``cognitionos --help`` working without the extra
    if name == "Settings":
        from cognitionos.server._settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def create_app(settings: Settings | None = None, *, announce: bool = True) -> Any:
    """The server as an ASGI app (``settings`` default: from the environment).

    On an empty database it creates the ``platform`` tenant and an owner API key; the key
    is printed to stderr once (``announce=False`` keeps quiet) and is available to tests
    as ``app.state.bootstrap_token``.
    """
    from cognitionos.server._app import build_app

    return build_app(settings, announce=announce)
