"""Running jobs: in-process beside the web server (embedded), or as `churnsaver worker` processes.

Either way a process runs the Dramatiq worker threads, the outbox relay and the scheduler.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import dramatiq
from dramatiq import Worker

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.registry import load_jobs
from churnsaver.jobs.relay import OutboxRelay
from churnsaver.jobs.scheduler import run_scheduler

STOP_TIMEOUT_SECONDS = 10


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
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(run_scheduler(db, stop))]
    try:
        yield broker
    finally:
        # Let a pass under way finish rather than cancel it mid-query; cancel only if it hangs.
        stop.set()
        _done, hanging = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
        for task in hanging:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        broker.close()
