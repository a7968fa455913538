"""A click group whose subcommands are imported when they are used, so that ``castlewatch
replay`` does not pay for importing ``serve`` (aiohttp), ``backfill`` or ``bench``
(start-up is part of the end-to-end throughput, issue 11)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from castlewatch.cli.program import setting_up


class LazyGroup(click.Group):
    """A :class:`click.Group` with subcommands given as ``{name: "module:attribute"}``
    (``lazy``); the module is imported the first time the command is looked up (to run it,
    or for its line in ``--help``). Commands added with :meth:`add_command` or
    ``@group.command`` work as in any group.

    Raises:
        TypeError: when the attribute named is not a click command (a programming error).
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            with setting_up():
                command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)
