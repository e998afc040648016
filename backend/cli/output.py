"""How commands report: one clear line on error, JSON with --json, tables for people."""

import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import anyio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import InterfaceError, OperationalError

from churnsaver.backend.core.config import ConfigurationError
from churnsaver.backend.core.errors import DomainError

P = ParamSpec("P")
R = TypeVar("R")
console = Console()
errors = Console(stderr=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def fail(message: str) -> NoReturn:
    # One line however long, and the message as is: it may quote user input with [brackets].
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def run_async(command: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async command; expected failures print one line and exit 1."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return anyio.run(lambda: command(*args, **kwargs))
        except (DomainError, ConfigurationError, ValidationError) as error:
            fail(str(error))
        except (OperationalError, InterfaceError, OSError) as error:
            fail(f"database unavailable: {getattr(error, 'orig', None) or error}")

    return wrapper
