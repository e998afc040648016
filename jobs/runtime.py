"""What running jobs share in a process: settings and the database of the actors' event loop.

Dramatiq runs every async actor on one event-loop thread per process, which is a different loop
from the web server's, so actors get their own `Database` (engines are bound to one loop).
"""

from dataclasses import dataclass

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database


@dataclass
class JobRuntime:
    settings: Settings
    db: Database


_runtime: JobRuntime | None = None


def set_runtime(runtime: JobRuntime | None) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> JobRuntime:
    if _runtime is None:
        raise RuntimeError("no job runtime: jobs run inside `churnsaver serve` or `churnsaver worker`")
    return _runtime
