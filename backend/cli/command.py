"""The Typer app every command group is made of, with help written as command lines write it:
a flag without a value after it (`--json`, not `--json <bool>`) and an argument as its NAME (in
the usage line `FILE`, or `[FILE]` when optional, not `{file}`)."""

from typing import Any

import typer
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


class Typer(typer.Typer):
    """typer.Typer whose groups and commands render their help as above."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=Group, **options)

    def command(self, name: str | None = None, **options: Any) -> Any:
        return super().command(name, cls=Command, **options)
