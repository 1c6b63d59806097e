"""``cognitionos serve``: run the reference server with uvicorn.

cognitionos serve                         # SQLite file in this directory, memory hot state
cognitionos serve --port 9000 --workers 4 # several processes (share hot state via Redis)
COGNITIONOS_DATABASE_URL=postgresql+psycopg://… COGNITIONOS_REDIS_URL=redis://… cognitionos serve
"""

from __future__ import annotations

import os

import click

__all__ = ["serve", "worker_app"]


def worker_app() -> object:
    """The app of one ``--workers`` process (uvicorn imports this factory in each process)."""
    from cognitionos.server import create_app
    from cognitionos.server._access import configure_access_log

    configure_access_log()
    return create_app()


@click.command("serve")
@click.option("--host", default=None, help="Interface to bind [env COGNITIONOS_HOST; 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="[env COGNITIONOS_PORT; 8000]"
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--database-url", default=None, help="[env COGNITIONOS_DATABASE_URL]")
@click.option("--redis-url", default=None, help="[env COGNITIONOS_REDIS_URL]")
@click.option("--log-level", default="info", show_default=True)
def serve(
    host: str | None,
    port: int | None,
    workers: int,
    database_url: str | None,
    redis_url: str | None,
    log_level: str,
) -> None:
    """Run the REST server (prints the bootstrap API key on first start)."""
    from cognitionos._optional import require

    uvicorn = require("uvicorn", extra="server", purpose="cognitionos serve")
    for name, value in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url)):
        if value is not None:
            os.environ[f"COGNITIONOS_{name}"] = value
    from cognitionos.errors import CognitionError
    from cognitionos.server import Settings, create_app

    try:
        settings = Settings()
    except ValueError as exc:
        raise click.ClickException(f"invalid COGNITIONOS_ settings: {exc}") from exc
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    try:
        app = create_app(settings)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"cognitionos: listening on http://{bind_host}:{bind_port}", err=True)
    # the server writes its own access lines (JSON, with trace ids): uvicorn's are off
    from cognitionos.server._access import configure_access_log

    configure_access_log()
    if workers == 1:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level=log_level, access_log=False)
        return
    # several processes: each builds its own app; the database is bootstrapped already
    uvicorn.run(
        "cognitionos.server._cli:worker_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
