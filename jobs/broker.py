"""The Dramatiq broker: Redis when CHURNSAVER_REDIS_URL is set, otherwise in-process.

Middleware: time limits, retries with exponential backoff, async actors, and two of ours.
`JobCompletion` sees a job's final outcome (after Retries has decided) and settles its outbox
row: deleted when done, recorded in `failed_jobs` when it has run out of retries.
`ActorRuntime` gives the actors their database for as long as the worker runs.
"""

import traceback
import uuid
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from prometheus_client import Counter
from sqlalchemy import delete

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, insert_for
from churnsaver.jobs.models import FailedJob, OutboxJob
from churnsaver.jobs.registry import JOBS, MAX_BACKOFF, MIN_BACKOFF
from churnsaver.jobs.runtime import JobRuntime, runtime, set_runtime

TIME_LIMIT_MS = 10 * 60_000

JOBS_FINISHED = Counter("churnsaver_jobs_total", "Jobs finished, by job and outcome", ["job", "outcome"])


async def _settle(outbox_ids: list[str], failure: FailedJob | None) -> None:
    db = runtime().db
    async with db.system_unit_of_work() as session:
        if failure is not None:
            values = {
                c.name: getattr(failure, c.name)
                for c in FailedJob.__table__.columns
                if getattr(failure, c.name) is not None
            }
            insert = insert_for(session)
            await session.execute(
                insert(FailedJob).values(**values).on_conflict_do_nothing(index_elements=["message_id"])
            )
        if outbox_ids:
            await session.execute(delete(OutboxJob).where(OutboxJob.id.in_([uuid.UUID(id_) for id_ in outbox_ids])))


def _actors_loop() -> EventLoopThread:
    """The event loop the AsyncIO middleware runs the actors on, from worker boot to shutdown."""
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the AsyncIO middleware has not started the actors' event loop")
    return loop_thread


class JobCompletion(Middleware):
    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None and not message.failed:
            JOBS_FINISHED.labels(message.actor_name, "retried").inc()
            return  # Retries will deliver it again; the outbox row stays.
        failure = None
        if exception is not None:
            JOBS_FINISHED.labels(message.actor_name, "dead").inc()
            failure = FailedJob(
                id=uuid.uuid4(),
                message_id=message.message_id,
                actor_name=message.actor_name,
                kwargs=message.kwargs,
                # Retries counts every failed attempt, the first one too: one more than the retries.
                retries=max(message.options.get("retries", 0) - 1, 0),
                error="".join(traceback.format_exception_only(type(exception), exception)).strip()[:4000],
            )
        else:
            JOBS_FINISHED.labels(message.actor_name, "done").inc()
        _actors_loop().run_coroutine(_settle(message.options.get("outbox_ids", []), failure))


class ActorRuntime(Middleware):
    """Opens the actors' database when the worker boots and closes it after the last job, on the
    actors' own event loop (its connections belong to that loop), before AsyncIO stops it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        set_runtime(JobRuntime(settings=self.settings, db=Database(self.settings)))

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _actors_loop().run_coroutine(runtime().db.dispose())
        set_runtime(None)


def _middleware(settings: Settings) -> list[Middleware]:
    # Dramatiq calls the `after_*` hooks in reverse order. So JobCompletion comes before Retries,
    # to see whether Retries has failed the message for good, and ActorRuntime comes after
    # AsyncIO, to close its connections while the actors' loop still runs.
    return [
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        JobCompletion(),
        Retries(min_backoff=_ms(MIN_BACKOFF), max_backoff=_ms(MAX_BACKOFF)),
        AsyncIO(),
        ActorRuntime(settings),
    ]


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def create_broker(settings: Settings) -> dramatiq.Broker:
    """A broker with every registered job declared on it as an actor."""
    if settings.redis_url:
        broker: dramatiq.Broker = RedisBroker(url=settings.redis_url, middleware=_middleware(settings))
    else:
        broker = StubBroker(middleware=_middleware(settings))
    for spec in JOBS.values():
        dramatiq.Actor[..., None](
            spec.function,
            broker=broker,
            actor_name=spec.name,
            queue_name=spec.queue,
            priority=spec.priority,
            options={
                "max_retries": spec.max_retries,
                "min_backoff": _ms(spec.min_backoff),
                "max_backoff": _ms(spec.max_backoff),
            },
        )
    return broker
