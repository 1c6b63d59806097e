"""The ``cognitionos`` admin command.

Subcommands are loaded lazily: ``cognitionos --help`` imports no engine,
SQLAlchemy or redis; each subcommand's module is imported only when that
subcommand runs. Plug-ins add commands through the ``cognitionos.cli``
entry-point group (``name = "package.module:click_command"``).

    cognitionos store check --store redis://localhost:6379/0
    cognitionos db upgrade --store sqlite:///app.db

Every group takes the store as ``--store URL`` (else ``$COGNITIONOS_STORE``, else
``sqlite:///cognitionos.db``); listing and reporting commands take ``--json``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from cognitionos import __version__
from cognitionos._cli_common import CommandGroup

__all__ = ["LazyGroup", "main"]

#: subcommand name -> "module:attribute" of a click command, imported on use
BUILTIN_COMMANDS = {
    "apm": "cognitionos.apm._cli:apm",
    "audit": "cognitionos.audit._cli:audit",
    "autoscale": "cognitionos.autoscale._cli:autoscale",
    "db": "cognitionos._cli_storage:db",
    "dr": "cognitionos.dr._cli:dr",
    "experiment": "cognitionos.experiments._cli:experiment",
    "flags": "cognitionos.flags._cli:flags",
    "pricing": "cognitionos.pricing._cli:pricing",
    "ratelimit": "cognitionos.ratelimit._cli:ratelimit",
    "serve": "cognitionos.server._cli:serve",
    "waf": "cognitionos.waf._cli:waf",
    "store": "cognitionos._cli_storage:store",
    "tenant": "cognitionos.server._admin_cli:tenant",
    "user": "cognitionos.server._admin_cli:user",
    "key": "cognitionos.server._admin_cli:key",
}


class LazyGroup(CommandGroup):
    """A click group whose subcommands are imported only when invoked or listed in help."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def _plugins(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group="cognitionos.cli")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        plugin = self._plugins().get(cmd_name)
        if plugin is not None:
            loaded: click.Command = plugin.load()
            return loaded
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=BUILTIN_COMMANDS)
@click.version_option(__version__, prog_name="cognitionos")
def main() -> None:
    """Administer cognitionos engines, stores and the reference server."""
