"""``cognitionos flags ...``: manage flag definitions kept in a store.

The ``flags`` click group is registered lazily by the top-level CLI. Every
command takes ``--store URL`` (before or after the command name; else
``$COGNITIONOS_STORE``, else ``sqlite:///cognitionos.db``, the one default of every group)
and writes record ``--actor`` in the audit trail::

    cognitionos flags import growthbook.json --format growthbook
    cognitionos flags toggle new-checkout --off --actor alice
    cognitionos flags stale --days 30 --json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from cognitionos._cli_common import CommandGroup, FiniteFloat, echo_json, pick_store
from cognitionos.errors import CognitionError
from cognitionos.flags._input import load_document

__all__ = ["flags"]

#: the variable 0.x read; still honoured, with a deprecation note
_LEGACY_ENV = "COGNITIONOS_FLAGS_STORE"
_META_STORE = "cognitionos.flags.store"


@contextmanager
def _engine(ctx: click.Context) -> Iterator[Any]:
    from cognitionos.flags.engine import FlagEngine

    opts = ctx.obj
    url = pick_store(ctx.meta.get(_META_STORE) or opts["store"], legacy_env=_LEGACY_ENV)
    try:
        engine = FlagEngine(store=url, actor=opts["actor"], namespace=opts.get("namespace", ""))
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield engine
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.close()


def _when(ns: int | None) -> str:
    if not ns:
        return "never"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group(name="flags", cls=CommandGroup)
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Store URL holding the flag definitions [env COGNITIONOS_STORE; "
    "default sqlite:///cognitionos.db].",
)
@click.option("--actor", default="cli", show_default=True, help="Name recorded in the audit trail.")
@click.option(
    "--namespace",
    default="",
    help="Key prefix of the flags (the reference server keeps a tenant's under tenants/<id>/).",
)
@click.pass_context
def flags(ctx: click.Context, store: str | None, actor: str, namespace: str) -> None:
    """Feature flags: list, inspect, change and audit flag definitions."""
    ctx.obj = {"store": store, "actor": actor, "namespace": namespace}


@flags.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_flags(ctx: click.Context, as_json: bool) -> None:
    """List every flag with its state and rule count.

    Stored flags that fail to load (they evaluate to PARSE_ERROR) are listed too, state
    ``ERR`` with the reason (JSON: ``"invalid": reason``), so that nothing stored is hidden.
    """
    with _engine(ctx) as engine:
        rows: list[dict[str, object]] = [
            {"key": f.key, "enabled": f.enabled, "type": f.type, "rules": len(f.rules)}
            for f in engine.definitions.flags
        ]
        rows += [
            {"key": key, "enabled": None, "type": None, "rules": None, "invalid": reason}
            for key, reason in sorted(engine.definitions.invalid.items())
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no flags")
    for r in rows:
        if "invalid" in r:
            click.echo(f"ERR  {r['key']!s:<40} invalid: {r['invalid']}")
            continue
        state = "on " if r["enabled"] else "off"
        click.echo(f"{state}  {r['key']!s:<40} {r['type'] or '-'!s:<8} {r['rules']} rule(s)")
    if any("invalid" in r for r in rows):
        click.echo("invalid flags evaluate to PARSE_ERROR; fix or delete them", err=True)


@flags.command("get")
@click.argument("key")
@click.pass_context
def get_flag(ctx: click.Context, key: str) -> None:
    """Print one flag definition as JSON."""
    with _engine(ctx) as engine:
        flag = next((f for f in engine.definitions.flags if f.key == key), None)
        reason = engine.definitions.invalid.get(key)
    if flag is None and reason is not None:
        raise click.ClickException(f"flag {key!r} is stored but invalid: {reason}")
    if flag is None:
        raise click.ClickException(f"flag {key!r} not found")
    click.echo(json.dumps(flag.model_dump(mode="json", exclude_defaults=True), indent=2))


@flags.command("set")
@click.argument("key")
@click.option("--definition", "definition", help="Flag definition as JSON (key taken from KEY).")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="Read the JSON from a file.",
)
@click.option(
    "--default", "default", help="Shortcut: a flag with this JSON default value and no rules."
)
@click.pass_context
def set_flag(
    ctx: click.Context, key: str, definition: str | None, path: str | None, default: str | None
) -> None:
    """Create or replace a flag (validated before it is stored)."""
    from pydantic import ValidationError

    from cognitionos.flags.models import FlagDefinition

    sources = [x for x in (definition, path, default) if x is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --definition, --file, --default")
    if default is not None:
        raw: Any = {"default_value": load_document(default, f"flag {key!r} --default")}
    elif path is not None:
        with open(path, "rb") as fh:
            raw = load_document(fh.read(), f"flag {key!r} from {path}")
    else:
        raw = load_document(definition or "{}", f"flag {key!r} --definition")
    if not isinstance(raw, dict):
        raise click.ClickException(f"flag {key!r}: the definition must be a JSON object")
    try:
        flag = FlagDefinition.model_validate({**raw, "key": key})
    except ValidationError as exc:
        from cognitionos.flags._growthbook import validation_error

        raise click.ClickException(str(validation_error(exc, f"flag {key!r}"))) from exc
    with _engine(ctx) as engine:
        engine.set_flag(flag)
    click.echo(f"stored {key}")


@flags.command("toggle")
@click.argument("key")
@click.option("--on/--off", "enabled", required=True, help="Switch the flag on or off.")
@click.pass_context
def toggle(ctx: click.Context, key: str, enabled: bool) -> None:
    """Switch a flag on or off (the kill switch)."""
    with _engine(ctx) as engine:
        engine.toggle(key, enabled)
    click.echo(f"{key} {'on' if enabled else 'off'}")


@flags.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["native", "growthbook", "unleash"]),
    default="native",
    show_default=True,
)
@click.pass_context
def import_flags(ctx: click.Context, path: str, fmt: str) -> None:
    """Import definitions from our JSON export, a GrowthBook payload or an Unleash payload."""
    from pydantic import ValidationError

    from cognitionos.flags._growthbook import flag_set_from_growthbook, validation_error
    from cognitionos.flags._unleash import flag_set_from_unleash
    from cognitionos.flags.models import FlagSet

    if path == "-":
        data = load_document(sys.stdin.buffer.read(), "standard input")
    else:
        with open(path, "rb") as fh:
            data = load_document(fh.read(), path)
    try:
        if fmt == "growthbook":
            fs = flag_set_from_growthbook(data)
        elif fmt == "unleash":
            fs = flag_set_from_unleash(data)
        else:
            try:
                fs = FlagSet.model_validate(data)
            except ValidationError as exc:
                raise validation_error(exc, "flag set") from None
    except CognitionError as exc:
        raise click.ClickException(str(exc)) from exc
    with _engine(ctx) as engine:
        changed = engine.import_flags(fs)
    click.echo(f"imported {len(fs.flags)} flag(s), {changed} changed")


@flags.command("export")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout."
)
@click.pass_context
def export_flags(ctx: click.Context, output: str | None) -> None:
    """Export every definition as JSON (``import --format native`` reads it back)."""
    with _engine(ctx) as engine:
        text = json.dumps(engine.export(), indent=2, sort_keys=True)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        click.echo(text)


@flags.command("audit")
@click.argument("key", required=False)
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="Newest N events."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON events.")
@click.pass_context
def audit(ctx: click.Context, key: str | None, limit: int, as_json: bool) -> None:
    """Show who changed what and when (optionally for one flag)."""
    with _engine(ctx) as engine:
        events = engine.audit(key, limit=limit)
    if as_json:
        echo_json(events)
        return
    if not events:
        click.echo("no audit events" + (f" for {key}" if key else ""))
    for e in events:
        fields = ", ".join(d["path"] for d in e["diff"]) or "-"
        click.echo(
            f"{_when(e['at_ns'])}  {e['actor']:<12} {e['action']:<8} {e['flag']}  [{fields}]"
        )


@flags.command("stale")
@click.option(
    "--days",
    type=FiniteFloat(min=0, max=100_000),
    default=30.0,
    show_default=True,
    help="Not changed / not evaluated for this many days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stale(ctx: click.Context, days: float, as_json: bool) -> None:
    """Report stale flags: unchanged, unevaluated, or always answering the same value."""
    with _engine(ctx) as engine:
        report = engine.stale_flags(unchanged_days=days, unevaluated_days=days)
    if as_json:
        echo_json(report)
        return
    if not report:
        click.echo("no stale flags")
    for r in report:
        click.echo(
            f"{r['flag']:<40} {', '.join(r['reasons']):<34} "
            f"changed {_when(r['last_changed_ns'])}, evaluated {_when(r['last_evaluated_ns'])}"
        )


def _remember_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[_META_STORE] = value


# ``--store`` after the command name too (``flags list --store URL``), as in every other group
for _command in flags.commands.values():
    _command.params.insert(
        0,
        click.Option(
            ["--store", "_store"],
            metavar="URL",
            expose_value=False,
            callback=_remember_store,
            help="Store URL [env COGNITIONOS_STORE; default sqlite:///cognitionos.db].",
        ),
    )
