"""Running jobs: in-process beside the web server (embedded), or as `churnsaver worker` processes.

Either way a process runs the Dramatiq worker threads, the outbox relay and the scheduler.

Stopping is bounded: running jobs get `settings.shutdown_timeout_seconds`, then the process goes
on to exit. Nothing they left undone is lost. With Redis, a message not yet acknowledged stays in
Redis for another worker. The embedded broker lives in memory, so before the worker stops, the
outbox rows this process sent and no job has finished are marked unsent: the next relay (the
next start, or another process) sends them at once. A job that finishes anyway deletes its row.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import dramatiq
from dramatiq import Worker

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.registry import load_jobs
from churnsaver.jobs.relay import OutboxRelay
from churnsaver.jobs.scheduler import run_scheduler


@contextlib.asynccontextmanager
async def running_jobs(
    settings: Settings, db: Database, *, consume: bool, worker_threads: int = 2
) -> AsyncIterator[dramatiq.Broker]:
    """Relay and scheduler on this event loop; with `consume`, Dramatiq worker threads too."""
    started_at = utcnow()
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
        deadline = time.monotonic() + settings.shutdown_timeout_seconds
        # Let a pass under way finish rather than cancel it mid-query; cancel only if it hangs.
        stop.set()
        _done, hanging = await asyncio.wait(tasks, timeout=settings.shutdown_timeout_seconds)
        for task in hanging:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker is not None:
            if settings.embedded_jobs:
                await relay.mark_unsent(dispatched_since=started_at)
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            await asyncio.to_thread(worker.stop, remaining_ms)
        broker.close()
