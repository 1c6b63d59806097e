"""``cognitionos ratelimit``: check a limit, ban and unban keys, list bans.

cognitionos ratelimit check redis://localhost:6379/0 "100/minute" tenant:acme
cognitionos ratelimit ban sqlite:///app.db ip:203.0.113.9 600
cognitionos ratelimit bans redis://localhost:6379/0
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from cognitionos.errors import CognitionError

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


def _limiter(url: str, algorithm: str, prefix: str) -> RateLimiter:
    from cognitionos.ratelimit import RateLimiter

    try:
        return RateLimiter(url, algorithm=algorithm, prefix=prefix)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def ratelimit() -> None:
    """Inspect rate limits and manage bans in a shared store."""


@ratelimit.command("check")
@click.argument("url")
@click.argument("limit")
@click.argument("key")
@click.option(
    "--algorithm", type=click.Choice(_ALGORITHMS), default="fixed_window", show_default=True
)
@click.option("--cost", type=click.IntRange(0), default=1, show_default=True)
@click.option("--hit", "charge", is_flag=True, help="Charge the cost (default: only look).")
@click.option("--prefix", default="rl", show_default=True, help="Key prefix used by the app.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def check(
    url: str,
    limit: str,
    key: str,
    algorithm: str,
    cost: int,
    charge: bool,
    prefix: str,
    as_json: bool,
) -> None:
    """Would KEY be admitted under LIMIT (e.g. "100/minute") in the store at URL?

    Exits 0 when admitted, 1 when refused.
    """
    limiter = _limiter(url, algorithm, prefix)
    try:
        d = limiter.hit(limit, key, cost) if charge else limiter.test(limit, key, cost)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        limiter.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "allowed": d.allowed,
                    "limit": d.limit,
                    "remaining": d.remaining,
                    "reset_after": d.reset_after,
                    "retry_after": d.retry_after,
                    "banned": d.banned,
                }
            )
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
@click.argument("url")
@click.argument("key")
@click.argument("seconds", type=click.FloatRange(min=0, min_open=True))
@click.option("--prefix", default="rl", show_default=True)
def ban(url: str, key: str, seconds: float, prefix: str) -> None:
    """Ban KEY for SECONDS on every host sharing the store at URL."""
    limiter = _limiter(url, "fixed_window", prefix)
    try:
        b = limiter.ban(key, seconds)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        limiter.close()
    click.echo(f"banned {b.key} for {b.remaining:.0f} s (offense {b.offenses})")


@ratelimit.command("unban")
@click.argument("url")
@click.argument("key")
@click.option("--prefix", default="rl", show_default=True)
def unban(url: str, key: str, prefix: str) -> None:
    """Lift KEY's ban in the store at URL."""
    limiter = _limiter(url, "fixed_window", prefix)
    try:
        lifted = limiter.unban(key)
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        limiter.close()
    click.echo(f"unbanned {key}" if lifted else f"{key} was not banned")


@ratelimit.command("bans")
@click.argument("url")
@click.option("--prefix", default="rl", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bans(url: str, prefix: str, as_json: bool) -> None:
    """List the keys banned right now in the store at URL."""
    limiter = _limiter(url, "fixed_window", prefix)
    try:
        current = limiter.bans()
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        limiter.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "key": b.key,
                        "remaining": b.remaining,
                        "offenses": b.offenses,
                        "manual": b.manual,
                    }
                    for b in current
                ]
            )
        )
        return
    for b in current:
        kind = "manual" if b.manual else "auto"
        click.echo(f"{b.key}\t{b.remaining:.0f} s left\toffense {b.offenses}\t{kind}")
    if not current:
        click.echo("no bans")
