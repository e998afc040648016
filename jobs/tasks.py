"""Housekeeping jobs of the job machinery itself."""

from datetime import timedelta

from sqlalchemy import delete

from churnsaver.backend.core.db import utcnow
from churnsaver.jobs.models import FailedJob
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every

DEAD_LETTER_RETENTION = timedelta(days=30)


@job("jobs.prune_dead_letters")
async def prune_dead_letters() -> None:
    async with runtime().db.system_unit_of_work() as session:
        await session.execute(delete(FailedJob).where(FailedJob.failed_at < utcnow() - DEAD_LETTER_RETENTION))


every(timedelta(hours=6), "jobs.prune_dead_letters")
