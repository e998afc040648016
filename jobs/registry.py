"""Job declarations. Jobs are plain async functions registered by name (`domain.action`) and
declared as Dramatiq actors on whichever broker this process uses, once it has chosen one."""

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

JobFunction = Callable[..., Awaitable[None]]

# Retry n waits min_backoff * 2**n, up to twice that with jitter, and never more than
# max_backoff: with these, ten retries are over in under twenty minutes, before the relay's
# REDELIVER_AFTER (thirty) would send a second copy of a job still being retried.
MIN_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=5)
# A worker runs the waiting job of the lowest priority first; jobs a person waits on (a webhook
# becoming a case) use PROMPT, on a queue of their own so that a backlog of the others in the
# broker does not hold them back either (docs/performance.md, webhook to case).
NORMAL = 10
PROMPT = 0


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    function: JobFunction
    queue: str
    priority: int
    max_retries: int
    min_backoff: timedelta
    max_backoff: timedelta
    # Rows of this job enqueued with equal other arguments go to the broker as one message, this
    # list argument's items united (at most `merge_limit` of them a message): under a stream of
    # commits that each enqueue the job for a few items, a worker then runs one job a relay pass
    # instead of one a commit.
    merge: str | None = None
    merge_limit: int = 500


JOBS: dict[str, JobSpec] = {}
# Domain event type -> the jobs that consume it (`consumer`), each called with the tenant's id.
CONSUMERS: dict[str, list[str]] = {}


def job(
    name: str,
    *,
    queue: str = "default",
    priority: int = NORMAL,
    max_retries: int = 10,
    min_backoff: timedelta = MIN_BACKOFF,
    max_backoff: timedelta = MAX_BACKOFF,
    merge: str | None = None,
    merge_limit: int = 500,
) -> Callable[[JobFunction], JobFunction]:
    """Register `function` as the job `name`. It must be idempotent: it may run more than once.

    A job given more retries or longer backoff should still finish retrying within the relay's
    REDELIVER_AFTER, or a second copy runs alongside the first. With `merge`, the relay may run it
    once for the items of several enqueues (JobSpec.merge): it must take a list there.
    """
    if not timedelta(0) < min_backoff <= max_backoff:
        raise ValueError(f"job {name!r}: backoff must satisfy 0 < min_backoff <= max_backoff")

    def register(function: JobFunction) -> JobFunction:
        if name in JOBS:
            raise ValueError(f"job {name!r} is registered twice")
        JOBS[name] = JobSpec(
            name=name,
            function=function,
            queue=queue,
            priority=priority,
            max_retries=max_retries,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            merge=merge,
            merge_limit=merge_limit,
        )
        return function

    return register


def consumer(event_type: str) -> Callable[[JobFunction], JobFunction]:
    """Declare the job below (`@job` first, then this) a consumer of `event_type` domain events:
    `jobs.outbox.notify` enqueues it, with the tenant's id, whenever a transaction records some.
    It must read the events itself (after its own cursor): a notification carries none."""

    def register(function: JobFunction) -> JobFunction:
        name = next((spec.name for spec in JOBS.values() if spec.function is function), None)
        if name is None:
            raise ValueError(f"{function.__qualname__} must be registered with @job before @consumer")
        CONSUMERS.setdefault(event_type, []).append(name)
        return function

    return register


def consumers_of(event_type: str) -> list[str]:
    """The jobs that consume `event_type`, every job module loaded first."""
    load_jobs()
    return list(CONSUMERS.get(event_type, ()))


def job_modules() -> list[str]:
    """Every module that registers jobs, found by convention: the `tasks.py` of `jobs/`, `tenants/`
    and each domain package of `backend/`. Nobody keeps a list: a new domain's jobs are found
    because they live in its `tasks.py`. Folders are looked at on disk, never imported to look."""
    namespace = Path(__file__).resolve().parents[1]  # the folder of `churnsaver`, editable or installed
    folders = {"jobs": namespace / "jobs", "tenants": namespace / "tenants"}
    backend = namespace / "backend"
    folders |= {f"backend.{m.name}": backend / m.name for m in pkgutil.iter_modules([str(backend)]) if m.ispkg}
    return sorted(
        f"churnsaver.{package}.tasks" for package, folder in folders.items() if (folder / "tasks.py").is_file()
    )


def load_jobs() -> None:
    """Import every job module, which fills the registry; it happens once, before a broker
    declares its actors or a job is first looked up, so no caller has to remember it."""
    for module in job_modules():
        importlib.import_module(module)


def get_job(name: str) -> JobSpec:
    if name not in JOBS:
        load_jobs()
    try:
        return JOBS[name]
    except KeyError:
        raise LookupError(f"no job named {name!r}") from None
