"""Sub-commands imported only when they run, so `revops --help` and `revops insights list`
do not pay for Kafka, DuckDB, numpy and every pydantic model (about a second of imports).

A group built with `lazy_group({...})` lists its lazy sub-commands from a registry of
import paths and one-line helps; the module behind a name is imported when that name is
invoked (or completed in a shell), never to print the group's help.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """`target` is "module:attribute": a Typer app (a command group) or a command function."""

    target: str
    help: str


def load_command(name: str, target: str) -> _click.Command:
    """The click command behind `target`, named `name`."""
    module_name, _, attribute = target.partition(":")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(obj, typer.Typer):
        single = typer.Typer()
        single.command(name)(obj)
        obj = single
    command = typer.main.get_command(obj)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A Typer group whose `lazy` sub-commands are imported on first use."""

    lazy: dict[str, Lazy] = {}

    def list_commands(self, ctx: _click.Context) -> list[str]:
        loaded = super().list_commands(ctx)
        return [*loaded, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        if ctx.resilient_parsing:  # shell completion wants the real options
            return self._load(cmd_name)
        # Listing (help): a stand-in with the registered help, nothing imported.
        return TyperCommand(name=cmd_name, help=self.lazy[cmd_name].help)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        if args and args[0] in self.lazy:
            self._load(args[0])
        return super().resolve_command(ctx, args)

    def _load(self, name: str) -> _click.Command:
        if name not in self.commands:
            self.commands[name] = load_command(name, self.lazy[name].target)
        return self.commands[name]


def lazy_group(commands: dict[str, Lazy]) -> type[LazyGroup]:
    """A `LazyGroup` class for `typer.Typer(cls=...)` with these lazy sub-commands."""
    return type("LazyCommands", (LazyGroup,), {"lazy": dict(commands)})
