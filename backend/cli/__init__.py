"""The `churnsaver` command line."""

from churnsaver.backend.cli.main import app, main

__all__ = ["app", "main"]
