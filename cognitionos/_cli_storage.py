"""``cognitionos db`` and ``cognitionos store`` commands."""

from __future__ import annotations

import statistics
import time
import uuid

import click

from cognitionos.errors import CognitionError

__all__ = ["db", "store"]


@click.group()
def db() -> None:
    """SQL schema management."""


@db.command("upgrade")
@click.argument("url")
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def db_upgrade(url: str, revision: str) -> None:
    """Run the packaged migrations against the SQL database at URL."""
    from cognitionos.storage import open_store, parse_url
    from cognitionos.storage._sql import SQLStore, upgrade_schema

    try:
        parsed = parse_url(url)
        if parsed.base_scheme not in ("sqlite", "postgresql", "postgres"):
            raise click.ClickException(f"{parsed.scheme}:// stores have no schema to migrate")
        target = open_store(url, auto_migrate=False)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        assert isinstance(target, SQLStore)
        current = upgrade_schema(target.engine, revision)
        click.echo(f"{target.url.masked}: schema at revision {current}")
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        target.close()


@click.group()
def store() -> None:
    """Inspect storage backends."""


@store.command("check")
@click.argument("url")
@click.option("--samples", default=20, show_default=True, type=click.IntRange(1, 10_000))
def store_check(url: str, samples: int) -> None:
    """Connect to URL, list its capabilities and measure round-trip latency.

    Also writes, reads and deletes one scratch key to prove the store accepts writes.
    """
    from cognitionos.storage import Capability, mask_url, open_store

    try:
        target = open_store(url)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        pings = sorted(target.ping() for _ in range(samples))
        click.echo(f"backend:      {target.backend} ({mask_url(url)})")
        caps = ", ".join(sorted(c.value for c in target.capabilities))
        click.echo(f"capabilities: {caps}")
        click.echo(
            f"round trip:   median {statistics.median(pings) * 1e6:.0f} us, "
            f"max {pings[-1] * 1e6:.0f} us over {samples} pings"
        )
        if Capability.KV in target.capabilities:
            key = f"cognitionos:check:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            target.set(key, b"ok", ttl=60)
            ok = target.get(key)
            target.delete(key)
            elapsed = (time.perf_counter() - t0) * 1e6
            if ok is None or ok.value != b"ok":
                raise click.ClickException("write/read check failed: the value did not round-trip")
            click.echo(f"kv set/get/delete: {elapsed:.0f} us")
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        target.close()
