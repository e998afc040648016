"""Running jobs: in-process beside the web server (embedded), or as `churnsaver worker` processes.

Either way a process runs the Dramatiq worker threads, the outbox relay and the scheduler.
"""

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator

import dramatiq
from dramatiq import Worker

from churnsaver.backend.config import Settings
from churnsaver.backend.db import Database
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.relay import OutboxRelay
from churnsaver.jobs.scheduler import run_scheduler

# Every module that registers jobs; importing them fills the registry before actors are declared.
JOB_MODULES = ("churnsaver.jobs.maintenance",)


def load_jobs() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)


@contextlib.asynccontextmanager
async def running_jobs(
    settings: Settings, db: Database, *, consume: bool, worker_threads: int = 2
) -> AsyncIterator[dramatiq.Broker]:
    """Relay and scheduler on this event loop; with `consume`, Dramatiq worker threads too."""
    load_jobs()
    broker = create_broker(settings)
    worker = None
    if consume:
        worker = Worker(broker, worker_threads=worker_threads, worker_timeout=100)
        worker.start()
    relay = OutboxRelay(db, broker)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(run_scheduler(db))]
    try:
        yield broker
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        broker.close()
