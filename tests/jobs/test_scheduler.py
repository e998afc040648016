"""The scheduler: however many processes run it, each periodic run is claimed exactly once."""

import asyncio
from datetime import datetime, timedelta

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.jobs.scheduler import claim_due_runs
from tests.fixtures.jobs import outbox_rows
from tests.jobs.sample_jobs import TICK_INTERVAL

WORKERS = 5


async def test_concurrent_schedulers_claim_each_run_exactly_once(settings: Settings, db: Database) -> None:
    start = utcnow()
    assert "tests.tick" not in await claim_due_runs(db, start)  # the first call only plans the first run

    workers = [Database(settings) for _ in range(WORKERS)]
    try:
        assert await _claims_at(workers, start + TICK_INTERVAL - timedelta(seconds=1)) == 0
        assert await _claims_at(workers, start + TICK_INTERVAL) == 1
        assert await _claims_at(workers, start + TICK_INTERVAL + timedelta(minutes=1)) == 0
        assert await _claims_at(workers, start + 2 * TICK_INTERVAL) == 1
    finally:
        await asyncio.gather(*(worker.dispose() for worker in workers))

    ticks = [row for row in await outbox_rows(db) if row.actor_name == "tests.tick"]
    assert len(ticks) == 2


async def _claims_at(workers: list[Database], now: datetime) -> int:
    """How many of `workers`, racing at `now`, claimed a run of tests.tick."""
    claims = await asyncio.gather(*(claim_due_runs(worker, now) for worker in workers))
    return sum(claimed.count("tests.tick") for claimed in claims)
