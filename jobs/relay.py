"""The outbox relay: sends committed jobs to the broker.

It runs in every web and worker process. It is woken right after a commit that enqueued jobs
and also polls, so jobs left behind by a crash or a broker outage go out once it is back. A row
already sent is sent again if no worker has finished it within REDELIVER_AFTER (a flushed
Redis, a killed in-process worker): jobs are idempotent, so a duplicate changes nothing.

Rows of a job declared with `merge` (jobs/registry.py) that are sent in the same pass with equal
other arguments become one message for the union of their items; the job settles all its rows.

A row with a `not_before` time is sent once that time has come. An idle relay sleeps until the
next such time or its next poll, whichever is sooner; what is due is read from the database
alone, so a relay started later (or in another process) finds it.
"""

import asyncio
import json
from asyncio import FIRST_COMPLETED
from datetime import datetime, timedelta

import dramatiq
import structlog
from dramatiq import Message
from prometheus_client import Counter, Gauge
from sqlalchemy import and_, or_, select, update

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import on_commit_wake
from churnsaver.jobs.registry import JOBS

REDELIVER_AFTER = timedelta(minutes=30)
BATCH_SIZE = 500
POLL_SECONDS = 1.0
# At most one pass per MIN_PASS_SECONDS sends a burst's enqueued jobs together, not a transaction
# (and on SQLite a hold of the receivers' write lock) per commit; a job committed after a quiet
# spell still goes at once, one committed under a stream waits at most this long. Why 0.2 s:
# docs/performance.md, outbox relay (and webhook to case, for what it costs a case's latency).
MIN_PASS_SECONDS = 0.2

logger = structlog.get_logger(__name__)
OUTBOX_SENT = Counter("churnsaver_outbox_sent_total", "Outbox jobs handed to the broker")
OUTBOX_LAG = Gauge("churnsaver_outbox_lag_seconds", "Age of the oldest outbox job not yet sent")


class OutboxRelay:
    def __init__(self, db: Database, broker: dramatiq.Broker, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.broker = broker
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def relay_once(self, now: datetime | None = None) -> int:
        """Send one batch of jobs due at `now` (by default, the current time); returns how many were sent."""
        now = now or utcnow()
        never_sent = OutboxJob.dispatched_at.is_(None)
        # Three branches, each a range of the pending index, so rows waiting for later are never read.
        due = or_(
            and_(never_sent, OutboxJob.not_before.is_(None)),
            and_(never_sent, OutboxJob.not_before <= now),
            OutboxJob.dispatched_at < now - REDELIVER_AFTER,
        )
        # Only jobs this process knows: during a rolling deploy a row for a job added (or
        # removed) by another version waits for a process that has it, instead of failing
        # every batch it is in.
        known = OutboxJob.actor_name.in_(list(JOBS))
        statement = select(OutboxJob).where(due, known).order_by(OutboxJob.created_at).limit(BATCH_SIZE)
        async with self.db.system_unit_of_work() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Several relays may run at once; each takes rows the others have not locked.
                statement = statement.with_for_update(skip_locked=True)
            rows = list((await session.execute(statement)).scalars())
            OUTBOX_LAG.set((now - min(map(_due_since, rows))).total_seconds() if rows else 0)
            if not rows:
                return 0
            messages = [self._message(group) for group in merged_groups(rows)]
            # A broker failure raises here, the transaction rolls back, and the rows wait.
            await asyncio.to_thread(self._send, messages)
            # By now a worker may have finished a job and deleted its row (the in-process worker
            # often has): a statement, not the ORM's per-row UPDATE that expects every row.
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_([row.id for row in rows]))
                .values(dispatched_at=now, dispatch_count=OutboxJob.dispatch_count + 1)
                .execution_options(synchronize_session=False)
            )
        OUTBOX_SENT.inc(len(rows))
        return len(rows)

    async def next_due(self, now: datetime | None = None) -> datetime | None:
        """The earliest `not_before` after `now` of a job never sent: when the relay must look again."""
        statement = (
            select(OutboxJob.not_before)
            .where(OutboxJob.dispatched_at.is_(None), OutboxJob.not_before > (now or utcnow()))
            # In the index's order: PostgreSQL then reads its first entry (`IS NULL` alone does not
            # let it skip the leading column and use the order of the next).
            .order_by(OutboxJob.dispatched_at, OutboxJob.not_before)
            .limit(1)
        )
        async with self.db.system_session() as session:
            return (await session.execute(statement)).scalar_one_or_none()

    def _message(self, rows: list[OutboxJob]) -> Message:
        first = rows[0]
        spec = JOBS[first.actor_name]
        kwargs = first.kwargs
        if len(rows) > 1:
            assert spec.merge is not None
            items = dict.fromkeys(item for row in rows for item in row.kwargs[spec.merge])
            kwargs = {**kwargs, spec.merge: list(items)}
        return Message(
            queue_name=spec.queue,
            actor_name=first.actor_name,
            args=(),
            kwargs=kwargs,
            options={"outbox_ids": [str(row.id) for row in rows]},
        )

    def _send(self, messages: list[Message]) -> None:
        for message in messages:
            self.broker.enqueue(message)

    def wake(self) -> None:
        self._wake.set()

    async def mark_unsent(self, *, dispatched_since: datetime) -> None:
        """Mark the rows sent since `dispatched_since` and still in the outbox (their jobs have not
        finished) as never sent, for an in-memory broker whose messages die with this process."""
        async with self.db.system_unit_of_work() as session:
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.dispatched_at >= dispatched_since)
                .values(dispatched_at=None)
                .execution_options(synchronize_session=False)
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; a pass under way finishes first."""
        loop = asyncio.get_running_loop()
        unregister = on_commit_wake(lambda: loop.call_soon_threadsafe(self._wake.set))
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                # Cleared before reading the outbox, not after: a commit that lands while we
                # read must still wake the wait below, or its job waits a whole poll.
                self._wake.clear()
                pass_started = loop.time()
                try:
                    sent = await self.relay_once()
                except Exception:
                    logger.exception("outbox.relay_failed")
                    sent = 0
                if sent == BATCH_SIZE:
                    continue
                wake_waiter = asyncio.ensure_future(self._wake.wait())
                timeout = await self._seconds_to_wait()
                await asyncio.wait({wake_waiter, stop_waiter}, timeout=timeout, return_when=FIRST_COMPLETED)
                wake_waiter.cancel()
                if (rest := pass_started + MIN_PASS_SECONDS - loop.time()) > 0:
                    await asyncio.wait({stop_waiter}, timeout=rest)
        finally:
            stop_waiter.cancel()
            unregister()

    async def _seconds_to_wait(self) -> float:
        """Until the next poll, or sooner if a job waiting for its `not_before` falls due first."""
        try:
            next_due = await self.next_due()
        except Exception:
            logger.exception("outbox.next_due_failed")
            return self.poll_seconds
        if next_due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max((next_due - utcnow()).total_seconds(), 0.0))


def merged_groups(rows: list[OutboxJob]) -> list[list[OutboxJob]]:
    """`rows` in groups sent as one message each, in the order of each group's first row: a row
    alone, or rows of a merging job with equal other arguments, up to its `merge_limit` items."""
    groups: list[list[OutboxJob]] = []
    open_groups: dict[tuple[str, str], tuple[list[OutboxJob], int]] = {}
    for row in rows:
        spec = JOBS[row.actor_name]
        items = row.kwargs.get(spec.merge) if spec.merge else None
        if not isinstance(items, list):
            groups.append([row])
            continue
        others = json.dumps({k: v for k, v in row.kwargs.items() if k != spec.merge}, sort_keys=True)
        key = (row.actor_name, others)
        group, size = open_groups.get(key, (None, 0))
        if group is None or size + len(items) > spec.merge_limit:
            group, size = [], 0
            groups.append(group)
        group.append(row)
        open_groups[key] = (group, size + len(items))
    return groups


def _due_since(row: OutboxJob) -> datetime:
    return max(row.created_at, row.not_before) if row.not_before else row.created_at
