"""Reading back what a benchmark stored: inbox rows by status, timeline rows, counters.

`ProcessingMonitor` samples how many of a tenant's inbox rows are settled (processed, ignored
or failed) while the load runs, which gives the processing rate and how long processing lags
behind the acknowledgements. Reads go through tenant sessions, as row-level security requires.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat
from churnsaver.jobs.models import OutboxJob

SAMPLE_SECONDS = 0.25


async def inbox_by_status(db: Database, tenant_id: uuid.UUID, source: str) -> dict[str, int]:
    statement = (
        select(InboxEvent.status, func.count())
        .where(InboxEvent.tenant_id == tenant_id, InboxEvent.source == source)
        .group_by(InboxEvent.status)
    )
    async with db.tenant_session(tenant_id) as session:
        return {status: n for status, n in await session.execute(statement)}


async def stored_and_pending(db: Database, tenant_id: uuid.UUID, source: str) -> tuple[int, int]:
    """The rows stored from `source` and those still pending, from one snapshot (one statement).

    Read while a load runs, so it must not cost what grows with the inbox, as counting the inbox
    by status would. The rows stored are the counters' row; the pending ones a range of the
    pending index."""
    stored = select(func.coalesce(func.sum(IngestDailyStat.accepted), 0)).where(
        IngestDailyStat.tenant_id == tenant_id, IngestDailyStat.source == source
    )
    pending = select(func.count()).where(
        InboxEvent.tenant_id == tenant_id, InboxEvent.status == InboxStatus.pending, InboxEvent.source == source
    )
    async with db.tenant_session(tenant_id) as session:
        rows, waiting = (await session.execute(select(stored.scalar_subquery(), pending.scalar_subquery()))).one()
    return rows, waiting


async def distinct_external_ids(db: Database, tenant_id: uuid.UUID, source: str) -> int:
    statement = select(func.count(func.distinct(InboxEvent.external_id))).where(
        InboxEvent.tenant_id == tenant_id, InboxEvent.source == source
    )
    async with db.tenant_session(tenant_id) as session:
        return (await session.execute(statement)).scalar_one()


async def timeline_keys(db: Database, tenant_id: uuid.UUID, source: str) -> list[str]:
    """The dedupe keys of the tenant's timeline rows from `source` (derived rows included)."""
    statement = select(CustomerEvent.dedupe_key).where(
        CustomerEvent.tenant_id == tenant_id, CustomerEvent.source == source
    )
    async with db.tenant_session(tenant_id) as session:
        return list((await session.execute(statement)).scalars())


async def counters(db: Database, tenant_id: uuid.UUID, source: str) -> dict[str, int]:
    statement = select(
        func.coalesce(func.sum(IngestDailyStat.accepted), 0),
        func.coalesce(func.sum(IngestDailyStat.duplicate), 0),
        func.coalesce(func.sum(IngestDailyStat.rejected), 0),
    ).where(IngestDailyStat.tenant_id == tenant_id, IngestDailyStat.source == source)
    async with db.tenant_session(tenant_id) as session:
        accepted, duplicate, rejected = (await session.execute(statement)).one()
    return {"accepted": accepted, "duplicate": duplicate, "rejected": rejected}


async def wait_jobs_done(db: Database, tenant_id: uuid.UUID, timeout: float) -> bool:
    """Wait until no job of the tenant's is left in the outbox (processing's, and the risk
    re-scores it enqueued): the app is idle. False if that took over `timeout` seconds.

    The tenant's only: an earlier section's server may have stopped with jobs handed to its
    in-process worker and not done, which the outbox sends again only after REDELIVER_AFTER."""
    jobs = select(func.count()).select_from(OutboxJob).where(OutboxJob.tenant_id == tenant_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.system_session() as session:
            if not (await session.execute(jobs)).scalar_one():
                return True
        await asyncio.sleep(SAMPLE_SECONDS / 5)
    return False


@dataclass
class ProcessingMonitor:
    """Samples the settled inbox rows of one tenant and source until told to stop."""

    db: Database
    tenant_id: uuid.UUID
    source: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic, rows, settled)
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(SAMPLE_SECONDS)

    async def sample(self) -> tuple[int, int]:
        rows, pending = await stored_and_pending(self.db, self.tenant_id, self.source)
        settled = rows - pending
        self.samples.append((time.monotonic(), rows, settled))
        return rows, settled

    async def wait_settled(self, expected: int, timeout: float) -> float | None:
        """When all `expected` rows were settled (monotonic), or None if not within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows, settled = await self.sample()
            if rows >= expected and settled >= rows:
                return self.samples[-1][0]
            await asyncio.sleep(SAMPLE_SECONDS / 5)
        return None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def settled_at(self, moment: float) -> int:
        """Rows settled by `moment`, from the last sample taken at or before it."""
        earlier = [settled for at, _rows, settled in self.samples if at <= moment]
        return earlier[-1] if earlier else 0


def processing_summary(
    monitor: ProcessingMonitor, rounds: list[Any], settled_at: list[float | None], *, items_per_request: int = 1
) -> dict[str, Any]:
    """How fast the rows stored by each round (a LoadResult) were processed, from the monitor's
    samples; `settled_at` holds when each round's rows were all settled (None: not in time)."""
    expected = sum(len(load.latencies) for load in rounds) * items_per_request
    if None in settled_at:
        return {"completed": False, "expected": expected, "settled": monitor.samples[-1][2] if monitor.samples else 0}
    during_load = [monitor.settled_at(load.finished_at) - monitor.settled_at(load.started_at) for load in rounds]
    load_seconds = sum(load.finished_at - load.started_at for load in rounds)
    lags = [max(settled - load.finished_at, 0.0) for load, settled in zip(rounds, settled_at, strict=True)]
    end_to_end_seconds = sum(settled - load.started_at for load, settled in zip(rounds, settled_at, strict=True))
    return {
        "completed": True,
        "expected": expected,
        "settled_during_load": sum(during_load),
        "rate_during_load_per_second": round(sum(during_load) / load_seconds, 1),
        "lag_after_last_ack_seconds": round(max(lags), 2),  # the longest of the rounds
        "end_to_end_per_second": round(expected / end_to_end_seconds, 1),
    }
