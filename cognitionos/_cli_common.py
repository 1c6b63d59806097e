"""What every ``cognitionos`` command group shares: the store option, ``--json``, errors, progress.

Part of the kernel layer (it imports click and ``cognitionos.errors`` only), so each engine's
``_cli`` module can use it without importing another layer.

The convention (docs: README "CLI"):

- the store is ``--store URL``, else ``$COGNITIONOS_STORE``, else :data:`DEFAULT_STORE` (one
  SQLite file in the working directory for every group);
- ``--json`` on every listing or reporting command prints only JSON on stdout; summaries,
  warnings and progress go to stderr;
- a refused answer exits 1; an error is one line naming the input, never a traceback.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

from cognitionos.errors import CognitionError

__all__ = [
    "DEFAULT_STORE",
    "FINITE",
    "STORE_ENV",
    "CommandGroup",
    "FiniteFloat",
    "echo_json",
    "json_option",
    "note",
    "pick_store",
    "progress",
    "store_option",
    "warn_if_ephemeral",
]

#: the one store every group uses when neither ``--store`` nor ``$COGNITIONOS_STORE`` is given
DEFAULT_STORE = "sqlite:///cognitionos.db"
#: the one environment variable naming the store, for every group
STORE_ENV = "COGNITIONOS_STORE"

F = TypeVar("F", bound=Callable[..., Any])


class CommandGroup(click.Group):
    """A click group whose commands report cognitionos errors as one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a CognitionError becomes ``Error: <message>`` on stderr, exit 1.

        So does an OSError (a file that cannot be read or written; its message names the path).
        """
        try:
            return super().invoke(ctx)
        except CognitionError as exc:
            raise click.ClickException(_one_line(str(exc))) from exc
        except OSError as exc:
            raise click.ClickException(_one_line(str(exc))) from exc


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]
    """A float option or argument that must be finite (``nan``/``inf`` refused) and within
    optional bounds: ``type=FINITE``, ``FiniteFloat(min=0, min_open=True)``, ``max=``."""

    name = "number"

    def __init__(
        self, min: float | None = None, max: float | None = None, *, min_open: bool = False
    ) -> None:
        self.min, self.max, self.min_open = min, max, min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value as a float, or a usage error naming the option."""
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
            if not math.isfinite(number):
                self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.min
        if low is not None and (number <= low if self.min_open else number < low):
            bound = "above" if self.min_open else "at least"
            self.fail(f"{value!r} is not {bound} {low:g}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"{value!r} is above the maximum {self.max:g}", param, ctx)
        return number


#: any finite float (the type of every numeric option of the CLI)
FINITE = FiniteFloat()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def store_option(func: F) -> F:
    """``--store URL`` (env ``COGNITIONOS_STORE``, default ``sqlite:///cognitionos.db``)."""
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help=f"Store URL [env {STORE_ENV}; default {DEFAULT_STORE}].",
    )(func)


def json_option(func: F) -> F:
    """``--json``: only JSON on stdout."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON on stdout (notes go to stderr)."
    )(func)


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), never mixed into stdout's data."""
    click.echo(message, err=True)


def pick_store(
    store_url: str | None, *, legacy: str | None = None, legacy_env: str | None = None
) -> str:
    """The store URL: ``--store``, an old spelling (with a deprecation note), the env, the default.

    Warns on stderr when it is ``memory://``: a one-shot command's memory dies with it.
    """
    import os

    url = store_url
    if url is None and legacy is not None:
        note(
            f"deprecated: give the store as --store {_masked(legacy)} "
            "(the positional URL will go away)"
        )
        url = legacy
    if url is None:
        url = os.environ.get(STORE_ENV)
    if url is None and legacy_env is not None and os.environ.get(legacy_env):
        note(f"deprecated: ${legacy_env} is read for now; set ${STORE_ENV} instead")
        url = os.environ[legacy_env]
    url = url or DEFAULT_STORE
    warn_if_ephemeral(url)
    return url


def _masked(url: str) -> str:
    # the kernel may not import storage (layering): a password is hidden the same way here
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if sep and "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
        user = netloc.rsplit("@", 1)[0].split(":", 1)[0]
        netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def warn_if_ephemeral(url: str) -> None:
    """Tell the user that a ``memory://`` store keeps nothing after this command."""
    if url.split("://", 1)[0].lower() == "memory":
        note(
            "warning: memory:// lives only as long as this command: nothing is kept; "
            f"use --store sqlite:///file.db (or set {STORE_ENV}) to persist"
        )


def echo_json(data: Any) -> None:
    """``data`` as one JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


T = TypeVar("T")


def progress(
    items: Iterable[T], total: int, label: str, *, enabled: bool | None = None
) -> Iterator[T]:
    """Yield ``items`` while reporting progress on stderr.

    On a terminal it redraws one line; elsewhere (logs, CI) it writes a line about every 10 %
    and at the end. ``enabled=None`` reports only on a terminal and for more than 100 items.
    """
    stream = sys.stderr
    tty = stream.isatty()
    if enabled is None:
        enabled = tty and total > 100
    if not enabled or total <= 0:
        yield from items
        return
    step = max(1, total // 10)
    redraw = max(1, total // 200)
    started = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        share = f"{done}/{total} ({100 * done // total}%"
        if tty:
            if done % redraw == 0 or done == total:
                click.echo(f"\r{label}: {share})", err=True, nl=False)
        elif done % step == 0 or done == total:
            rate = done / max(time.monotonic() - started, 1e-9)
            click.echo(f"{label}: {share}, {rate:.0f}/s)", err=True)
    if tty:
        click.echo("", err=True)
