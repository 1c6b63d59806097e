"""``cognitionos apm ...``: fleet-wide latency, error groups and slow queries from a store.

Every command takes ``--store URL`` (before or after the command name; else
``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``) and ``--json``::

    cognitionos apm top --minutes 15
    cognitionos apm errors --json
    cognitionos apm slow-queries --limit 20
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from cognitionos._cli_common import (
    CommandGroup,
    FiniteFloat,
    echo_json,
    json_option,
    pick_store,
    store_option,
)

__all__ = ["apm"]

_META_STORE = "cognitionos.apm.store"
_META_NS = "cognitionos.apm.namespace"


@contextmanager
def _store(ctx: click.Context, store_url: str | None) -> Iterator[Any]:
    from cognitionos.storage import open_store

    url = pick_store(store_url or ctx.meta.get(_META_STORE))
    store = open_store(url)
    try:
        store.require("kv", needed_by="cognitionos apm")
        yield store
    finally:
        store.close()


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


@click.group(name="apm", cls=CommandGroup)
@store_option
@click.option(
    "--namespace",
    default="apm",
    show_default=True,
    help="Key namespace the application records under.",
)
@click.pass_context
def apm(ctx: click.Context, store_url: str | None, namespace: str) -> None:
    """APM: route latency percentiles, error groups and slow queries kept in a store."""
    ctx.meta[_META_STORE] = store_url
    ctx.meta[_META_NS] = namespace


@apm.command("top")
@store_option
@json_option
@click.option(
    "--minutes",
    type=FiniteFloat(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Time range: the last N minutes.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--errors",
    "n_errors",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Also list the N most frequent error groups.",
)
@click.pass_context
def top(
    ctx: click.Context,
    store_url: str | None,
    as_json: bool,
    minutes: float,
    limit: int,
    n_errors: int,
) -> None:
    """Slowest routes (fleet-wide p50/p95/p99/p99.9, ms) and the top error groups."""
    from cognitionos.apm._errors import read_error_groups
    from cognitionos.apm._latency import read_route_latencies, summarize

    with _store(ctx, store_url) as store:
        since = time.time() - minutes * 60
        ns = ctx.meta[_META_NS]
        rows = summarize(read_route_latencies(store, since=since, namespace=ns))[:limit]
        groups = sorted(read_error_groups(store, namespace=ns), key=lambda g: -g.count)
        groups = groups[:n_errors]
    if as_json:
        echo_json({"routes": [r.to_dict() for r in rows], "errors": [g.to_dict() for g in groups]})
        return
    if not rows:
        click.echo(f"no latency recorded in the last {minutes:g} minutes")
    else:
        click.echo(f"{'route':<40} {'count':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'p99.9':>8}  ms")
        for r in rows:
            click.echo(
                f"{r.route[:40]:<40} {r.count:>8} {_ms(r.p50):>8} {_ms(r.p95):>8} "
                f"{_ms(r.p99):>8} {_ms(r.p999):>8}"
            )
    if groups:
        click.echo("")
        for g in groups:
            click.echo(f"{g.count:>8}  {g.type}: {g.message[:60]}  ({g.culprit})")


@apm.command("errors")
@store_option
@json_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.pass_context
def errors(ctx: click.Context, store_url: str | None, as_json: bool, limit: int) -> None:
    """Error groups, most frequent first."""
    from cognitionos.apm._errors import read_error_groups

    with _store(ctx, store_url) as store:
        groups = sorted(
            read_error_groups(store, namespace=ctx.meta[_META_NS]),
            key=lambda g: (-g.count, -g.last_seen_ns),
        )
    groups = groups[:limit]
    if as_json:
        echo_json([g.to_dict() for g in groups])
        return
    if not groups:
        click.echo("no error groups")
    for g in groups:
        click.echo(
            f"{g.fingerprint[:12]}  {g.count:>7}  last {_when(g.last_seen_ns)}  "
            f"{g.type}: {g.message[:60]}"
        )
        click.echo(f"{'':14}culprit {g.culprit or '-'}; routes {', '.join(g.routes) or '-'}")


@apm.command("slow-queries")
@store_option
@json_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
def slow_queries(ctx: click.Context, store_url: str | None, as_json: bool, limit: int) -> None:
    """Normalized SQL that was slow or ran N+1 times in a request, slowest p99 first."""
    from cognitionos.apm._sql import read_slow_queries

    with _store(ctx, store_url) as store:
        rows = read_slow_queries(store, namespace=ctx.meta[_META_NS])[:limit]
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("no slow queries")
    for r in rows:
        click.echo(
            f"p99 {_ms(r.p99):>8} ms  max {_ms(r.max):>8} ms  runs {r.count:>6}  "
            f"slow {r.slow_count:>5}  N+1 {r.n_plus_one_count:>4}  {r.sql[:80]}"
        )
        if r.locations:
            click.echo(f"{'':10}at {r.locations[0]}")
