"""Job declarations. Jobs are plain async functions registered by name (`domain.action`) and
declared as Dramatiq actors on whichever broker this process uses, once it has chosen one."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

JobFunction = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    function: JobFunction
    queue: str
    max_retries: int


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, queue: str = "default", max_retries: int = 10) -> Callable[[JobFunction], JobFunction]:
    """Register `function` as the job `name`. It must be idempotent: it may run more than once."""

    def register(function: JobFunction) -> JobFunction:
        if name in JOBS:
            raise ValueError(f"job {name!r} is registered twice")
        JOBS[name] = JobSpec(name=name, function=function, queue=queue, max_retries=max_retries)
        return function

    return register


def get_job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise LookupError(f"no job named {name!r}") from None


def registered_jobs() -> dict[str, Any]:
    return dict(JOBS)
