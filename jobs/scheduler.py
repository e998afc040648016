"""Periodic jobs, safe with any number of processes running the scheduler.

Each periodic job has a row holding when it is next due. A process claims a run with one
compare-and-set UPDATE (`next_run_at` moves forward only if it still holds the value read), so
exactly one process wins each run, on SQLite and PostgreSQL alike. The winner enqueues the job
through the outbox in the same transaction: a claimed run is never lost.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, update

from churnsaver.backend.core.db import Database, insert_for, utcnow
from churnsaver.jobs.models import ScheduleSlot
from churnsaver.jobs.outbox import enqueue

TICK_SECONDS = 5.0
logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Periodic:
    job_name: str
    every: timedelta


PERIODIC: list[Periodic] = []


def every(interval: timedelta, job_name: str) -> None:
    """Run `job_name` (a registered job taking no arguments) once per `interval`."""
    PERIODIC.append(Periodic(job_name=job_name, every=interval))


async def claim_due_runs(db: Database, now: datetime | None = None) -> list[str]:
    """Enqueue every periodic job that is due; returns the names this process claimed."""
    now = now or utcnow()
    claimed: list[str] = []
    for periodic in PERIODIC:
        async with db.system_unit_of_work() as session:
            slot = await session.get(ScheduleSlot, periodic.job_name)
            if slot is None:
                first_run = {"name": periodic.job_name, "next_run_at": now + periodic.every}
                insert = insert_for(session)
                await session.execute(insert(ScheduleSlot).values(**first_run).on_conflict_do_nothing())
                continue
            if slot.next_run_at > now:
                continue
            # An UPDATE's result is a CursorResult; Session.execute types it as a plain Result.
            won = cast(
                CursorResult[Any],
                await session.execute(
                    update(ScheduleSlot)
                    .where(ScheduleSlot.name == slot.name, ScheduleSlot.next_run_at == slot.next_run_at)
                    .values(next_run_at=now + periodic.every, last_run_at=now)
                    .execution_options(synchronize_session=False)
                ),
            )
            if won.rowcount == 1:
                enqueue(session, periodic.job_name)
                claimed.append(periodic.job_name)
    return claimed


async def run_scheduler(db: Database, stop: asyncio.Event) -> None:
    """Claim due runs until `stop` is set; a tick under way finishes first."""
    while not stop.is_set():
        try:
            await claim_due_runs(db)
        except Exception:
            logger.exception("scheduler.tick_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
