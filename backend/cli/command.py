"""The Typer app every command group is made of, with help written as command lines write it:
a flag without a value after it (`--json`, not `--json <bool>`) and an argument as its NAME (in
the usage line `FILE`, or `[FILE]` when optional, not `{file}`)."""

import importlib
from typing import Any

import typer
import typer.main
from typer._click.core import Command as ClickCommand  # Typer runs on its own copy of click
from typer._click.core import Context
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def _name_in_help(param: Any) -> None:
    # An empty metavar is what Typer shows for an option's value; a flag has none.
    if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""
    elif isinstance(param, TyperArgument) and param.metavar is None:
        param.metavar = param.name.upper()


class _NamesInHelp:
    """Every parameter, the help option and Typer's completion options included, passes through
    `get_params`, whatever reads it: parsing, the usage line and the help panels."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            _name_in_help(param)
        return params


class Command(_NamesInHelp, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                assert param.metavar is not None  # get_params gave every argument one
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(_NamesInHelp, TyperGroup):
    pass


class LazyGroup(Group):
    """A group whose subcommands (`lazy`: name -> "module:attribute", a Typer app or a command
    function) are imported only when one of them runs or help lists them: each brings its domain's
    code, and a command that loaded every domain took seconds to start."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: Context, cmd_name: str) -> ClickCommand | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            command: ClickCommand = typer.main.get_group(target)
        else:
            single = Typer()
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)  # one command alone is that command
        command.name = cmd_name
        return command


class Typer(typer.Typer):
    """typer.Typer whose groups and commands render their help as above; `lazy` names subgroups
    imported on demand (LazyGroup)."""

    def __init__(self, *, lazy: dict[str, str] | None = None, **options: Any) -> None:
        cls = type("Root", (LazyGroup,), {"lazy": lazy}) if lazy else Group
        super().__init__(cls=cls, **options)

    def command(self, name: str | None = None, **options: Any) -> Any:
        return super().command(name, cls=Command, **options)
