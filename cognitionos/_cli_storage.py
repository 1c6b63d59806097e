"""``cognitionos db`` and ``cognitionos store`` commands.

Both take the store as ``--store URL`` (else ``$COGNITIONOS_STORE``, else the default SQLite
file); the 0.x positional URL still works, with a deprecation note on stderr.
"""

from __future__ import annotations

import statistics
import time
import uuid

import click

from cognitionos._cli_common import CommandGroup, echo_json, json_option, pick_store, store_option

__all__ = ["db", "store"]


@click.group(cls=CommandGroup)
def db() -> None:
    """SQL schema management."""


@db.command("upgrade")
@click.argument("url", required=False, metavar="")
@store_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def db_upgrade(url: str | None, store_url: str | None, revision: str) -> None:
    """Run the packaged migrations against the SQL database of the store."""
    from cognitionos.storage import open_store, parse_url
    from cognitionos.storage._sql import SQLStore, upgrade_schema

    target_url = pick_store(store_url, legacy=url)
    parsed = parse_url(target_url)
    if parsed.base_scheme not in ("sqlite", "postgresql", "postgres"):
        raise click.ClickException(f"{parsed.scheme}:// stores have no schema to migrate")
    target = open_store(target_url, auto_migrate=False)
    try:
        assert isinstance(target, SQLStore)
        current = upgrade_schema(target.engine, revision)
        click.echo(f"{target.url.masked}: schema at revision {current}")
    finally:
        target.close()


@click.group(cls=CommandGroup)
def store() -> None:
    """Inspect storage backends."""


@store.command("check")
@click.argument("url", required=False, metavar="")
@store_option
@click.option("--samples", default=20, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def store_check(url: str | None, store_url: str | None, samples: int, as_json: bool) -> None:
    """Connect to the store, list its capabilities and measure round-trip latency.

    Also writes, reads and deletes one scratch key to prove the store accepts writes.
    """
    from cognitionos.storage import Capability, mask_url, open_store

    target_url = pick_store(store_url, legacy=url)
    target = open_store(target_url)
    try:
        pings = sorted(target.ping() for _ in range(samples))
        caps = sorted(c.value for c in target.capabilities)
        kv_us: float | None = None
        if Capability.KV in target.capabilities:
            key = f"cognitionos:check:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            target.set(key, b"ok", ttl=60)
            ok = target.get(key)
            target.delete(key)
            kv_us = (time.perf_counter() - t0) * 1e6
            if ok is None or ok.value != b"ok":
                raise click.ClickException("write/read check failed: the value did not round-trip")
    finally:
        target.close()
    if as_json:
        echo_json(
            {
                "backend": target.backend,
                "url": mask_url(target_url),
                "capabilities": caps,
                "round_trip_us": {
                    "median": statistics.median(pings) * 1e6,
                    "max": pings[-1] * 1e6,
                    "samples": samples,
                },
                "kv_set_get_delete_us": kv_us,
            }
        )
        return
    click.echo(f"backend:      {target.backend} ({mask_url(target_url)})")
    click.echo(f"capabilities: {', '.join(caps)}")
    click.echo(
        f"round trip:   median {statistics.median(pings) * 1e6:.0f} us, "
        f"max {pings[-1] * 1e6:.0f} us over {samples} pings"
    )
    if kv_us is not None:
        click.echo(f"kv set/get/delete: {kv_us:.0f} us")
