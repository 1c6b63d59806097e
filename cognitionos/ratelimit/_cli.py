"""``cognitionos ratelimit``: check a limit, ban and unban keys, list bans and leases.

    cognitionos ratelimit check "100/minute" tenant:acme --store redis://localhost:6379/0
    cognitionos ratelimit ban ip:203.0.113.9 --seconds 600 --store sqlite:///app.db
    cognitionos ratelimit bans --json

The store comes from ``--store``, else ``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``.
The 0.x spellings with the URL as the first argument (``check URL LIMIT KEY``) still work and
print a deprecation note on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cognitionos._cli_common import (
    CommandGroup,
    FiniteFloat,
    echo_json,
    json_option,
    pick_store,
    store_option,
)

if TYPE_CHECKING:
    from cognitionos.ratelimit import RateLimiter

__all__ = ["ratelimit"]

_ALGORITHMS = [
    "fixed_window",
    "fixed_window_anchored",
    "sliding_window",
    "sliding_log",
    "token_bucket",
    "gcra",
    "concurrency",
]


def _arguments(args: tuple[str, ...], names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """(URL given the 0.x way as the first argument, or None; the values of ``names``)."""
    if len(args) == len(names) + 1 and "://" in args[0]:
        return args[0], list(args[1:])
    if len(args) != len(names):
        wanted = " ".join(names)
        raise click.UsageError(f"expected {wanted}, got {len(args)} argument(s): {list(args)}")
    return None, list(args)


def _limiter(store_url: str | None, legacy: str | None, algorithm: str, prefix: str) -> RateLimiter:
    from cognitionos.ratelimit import RateLimiter

    return RateLimiter(pick_store(store_url, legacy=legacy), algorithm=algorithm, prefix=prefix)


@click.group(cls=CommandGroup)
def ratelimit() -> None:
    """Inspect rate limits and manage bans in a shared store."""


@ratelimit.command("check")
@click.argument("args", nargs=-1, metavar="LIMIT KEY")
@store_option
@click.option(
    "--algorithm", type=click.Choice(_ALGORITHMS), default="fixed_window", show_default=True
)
@click.option("--cost", type=click.IntRange(0), default=1, show_default=True)
@click.option("--hit", "charge", is_flag=True, help="Charge the cost (default: only look).")
@click.option("--prefix", default="rl", show_default=True, help="Key prefix used by the app.")
@json_option
def check(
    args: tuple[str, ...],
    store_url: str | None,
    algorithm: str,
    cost: int,
    charge: bool,
    prefix: str,
    as_json: bool,
) -> None:
    """Would KEY be admitted under LIMIT (e.g. "100/minute")?

    Exits 0 when admitted, 1 when refused.
    """
    legacy, (limit, key) = _arguments(args, ("LIMIT", "KEY"))
    limiter = _limiter(store_url, legacy, algorithm, prefix)
    try:
        d = limiter.hit(limit, key, cost) if charge else limiter.test(limit, key, cost)
    finally:
        limiter.close()
    if as_json:
        echo_json(
            {
                "key": key,
                "allowed": d.allowed,
                "limit": d.limit,
                "remaining": d.remaining,
                "reset_after": d.reset_after,
                "retry_after": d.retry_after,
                "banned": d.banned,
            }
        )
    else:
        verdict = "allowed" if d.allowed else ("banned" if d.banned else "refused")
        retry = f", retry after {d.retry_after:.3f} s" if d.retry_after is not None else ""
        click.echo(
            f"{key}: {verdict} ({d.remaining}/{d.limit} left, "
            f"resets in {d.reset_after:.3f} s{retry})"
        )
    if not d.allowed:
        raise click.exceptions.Exit(1)


@ratelimit.command("ban")
@click.argument("args", nargs=-1, metavar="KEY")
@store_option
@click.option(
    "--seconds",
    type=FiniteFloat(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Ban duration.",
)
@click.option("--prefix", default="rl", show_default=True)
@json_option
def ban(
    args: tuple[str, ...], store_url: str | None, seconds: float, prefix: str, as_json: bool
) -> None:
    """Ban KEY for --seconds on every host sharing the store."""
    legacy: str | None
    if len(args) == 3 and "://" in args[0]:  # 0.x: ban URL KEY SECONDS
        legacy, key = args[0], args[1]
        try:
            seconds = float(args[2])
        except ValueError:
            raise click.BadParameter(f"{args[2]!r} is not a number of seconds") from None
    else:
        legacy, (key,) = _arguments(args, ("KEY",))
    limiter = _limiter(store_url, legacy, "fixed_window", prefix)
    try:
        b = limiter.ban(key, seconds)
    finally:
        limiter.close()
    if as_json:
        echo_json(_ban_json(b))
    else:
        click.echo(f"banned {b.key} for {b.remaining:.0f} s (offense {b.offenses})")


@ratelimit.command("unban")
@click.argument("args", nargs=-1, metavar="KEY")
@store_option
@click.option("--prefix", default="rl", show_default=True)
def unban(args: tuple[str, ...], store_url: str | None, prefix: str) -> None:
    """Lift KEY's ban."""
    legacy, (key,) = _arguments(args, ("KEY",))
    limiter = _limiter(store_url, legacy, "fixed_window", prefix)
    try:
        lifted = limiter.unban(key)
    finally:
        limiter.close()
    click.echo(f"unbanned {key}" if lifted else f"{key} was not banned")


def _ban_json(b: Any) -> dict[str, Any]:
    return {"key": b.key, "remaining": b.remaining, "offenses": b.offenses, "manual": b.manual}


@ratelimit.command("bans")
@click.argument("args", nargs=-1, metavar="")
@store_option
@click.option("--prefix", default="rl", show_default=True)
@json_option
def bans(args: tuple[str, ...], store_url: str | None, prefix: str, as_json: bool) -> None:
    """List the keys banned right now."""
    legacy, _ = _arguments(args, ())
    limiter = _limiter(store_url, legacy, "fixed_window", prefix)
    try:
        current = limiter.bans()
    finally:
        limiter.close()
    if as_json:
        echo_json([_ban_json(b) for b in current])
        return
    if not current:
        click.echo("no bans")
        return
    for b in current:
        kind = "manual" if b.manual else "auto"
        click.echo(f"{b.key}\t{b.remaining:.0f} s left\toffense {b.offenses}\t{kind}")


@ratelimit.command("leases")
@store_option
@click.option("--prefix", default="rl", show_default=True, help="Key prefix used by the app.")
@json_option
def leases(store_url: str | None, prefix: str, as_json: bool) -> None:
    """List the quota slices leased from a Redis store (RateLimiter(lease=...)).

    One line per lease: key state, holder (pid-token), slice size and when the lease expires
    (negative: expired, its unused part still returnable until its window ends).
    """
    from cognitionos.ratelimit._lease import lease_records

    url = pick_store(store_url)
    limiter = _limiter(url, None, "fixed_window", prefix)
    try:
        backend = limiter._backend
        if backend.name != "redis":
            raise click.ClickException(
                f"leases live in Redis stores only; {backend.name} store {url.split('?')[0]!r} "
                "has none (RateLimiter(lease=...) needs redis://)"
            )
        try:
            records = lease_records(backend.client, backend._keyfn("*", "*", "lease"))
        except require_redis_error() as exc:
            raise click.ClickException(
                f"cannot list leases in {url.split('?')[0]!r}: {exc}"
            ) from None
    finally:
        limiter.close()
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("no leases")
        return
    held = sum(r["grant"] for r in records)
    for r in records:
        click.echo(
            f"{r['lease_set']}\t{r['holder']}\tslice {r['grant']}\t"
            f"expires in {r['expires_in']:.1f} s"
        )
    click.echo(f"{len(records)} leases, {held} units leased", err=True)


def require_redis_error() -> type[Exception]:
    """redis-py's base error (the store is a Redis one, so redis is installed)."""
    from redis.exceptions import RedisError

    return RedisError
