"""Group commit for webhook deliveries: many concurrent deliveries, one transaction per tenant.

A receiver hands its verified delivery to the `InboxWriter` of its database and waits for the
answer. The writer commits whatever has arrived since its last commit in one go: per tenant, one
transaction holding a multi-row inbox insert (ON CONFLICT DO NOTHING RETURNING), one counter
upsert per source and one processing job for the new rows. Batches form by themselves: while one
commits, the next gathers, so a lone delivery is committed at once and a busy server commits
hundreds per transaction, with no timer anywhere.

Every caller learns its outcome only after its tenant's transaction has committed: created, or
a duplicate (of a stored row, or of a delivery earlier in the same batch). If that transaction
fails, every caller in it gets `DeliveryNotStored`, and nothing of it is stored: the receiver
answers 503 and the provider retries. Tenants never share a transaction (on PostgreSQL the
tenant is set per transaction for row-level security), so one tenant's failure is its own.
"""

import asyncio
import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass, field

import prometheus_client
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.db import Database, utcnow
from churnsaver.backend.ingest.inbox import Delivery, count, inbox_row, insert_new
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.jobs.outbox import enqueue

logger = structlog.get_logger(__name__)

PROCESS_JOB = "ingest.process_inbox"
# A flush is one statement per tenant; this bounds its size (and its bind parameters) under a
# burst. What is left waits for the next flush, which starts as soon as this one commits.
MAX_BATCH = 500

BATCH_DELIVERIES = prometheus_client.Histogram(
    "churnsaver_ingest_group_commit_deliveries",
    "Deliveries committed together, per tenant transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 500),
)
COMMIT_SECONDS = prometheus_client.Histogram(
    "churnsaver_ingest_group_commit_seconds", "Time to commit one tenant's share of a flush"
)
FAILED_DELIVERIES = prometheus_client.Counter(
    "churnsaver_ingest_group_commit_failed_deliveries_total", "Deliveries answered 503: their transaction failed"
)


class DeliveryNotStored(Exception):
    """The transaction that held this delivery failed: nothing of it was stored. Try again."""


@dataclass(slots=True)
class _Waiting:
    tenant_id: uuid.UUID
    source: str
    delivery: Delivery
    outcome: asyncio.Future[bool]


@dataclass(slots=True)
class _TenantBatch:
    """One tenant's share of a flush, deduplicated on (source, external id) before the insert."""

    tenant_id: uuid.UUID
    waiting: list[_Waiting] = field(default_factory=list)

    def rows(self) -> tuple[list[dict], list[int]]:
        """The rows to insert, and for each waiting caller the index of its row (first one wins)."""
        received_at = utcnow()
        rows: list[dict] = []
        index_of: dict[tuple[str, str], int] = {}
        row_of_caller: list[int] = []
        for waiting in self.waiting:
            key = (waiting.source, waiting.delivery.external_id)
            if key not in index_of:
                index_of[key] = len(rows)
                rows.append(inbox_row(self.tenant_id, waiting.source, waiting.delivery, received_at))
            row_of_caller.append(index_of[key])
        return rows, row_of_caller


class InboxWriter:
    """The group-committing writer of one `Database` (so of one event loop)."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        # SQLite has one writer at a time anyway; PostgreSQL commits tenants side by side.
        self._concurrent_tenants = not db.settings.is_sqlite

    async def store(self, tenant_id: uuid.UUID, source: str, delivery: Delivery) -> bool:
        """Store `delivery` durably; True when it is new, False for a duplicate.

        Raises DeliveryNotStored when its transaction failed."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(tenant_id, source, delivery, loop.create_future())
        self._queue.append(waiting)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_until_empty())
        return await waiting.outcome

    async def _flush_until_empty(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._flush(batch)
        except BaseException:
            # Cancelled (the loop is shutting down): nobody still waiting may hang.
            _fail(self._queue, DeliveryNotStored("the server is shutting down"))
            self._queue.clear()
            raise
        finally:
            self._flusher = None

    async def _flush(self, batch: list[_Waiting]) -> None:
        by_tenant: dict[uuid.UUID, _TenantBatch] = {}
        for waiting in batch:
            by_tenant.setdefault(waiting.tenant_id, _TenantBatch(waiting.tenant_id)).waiting.append(waiting)
        try:
            if self._concurrent_tenants and len(by_tenant) > 1:
                await asyncio.gather(*(self._commit(tenant_batch) for tenant_batch in by_tenant.values()))
            else:
                for tenant_batch in by_tenant.values():
                    await self._commit(tenant_batch)
        except BaseException:
            _fail(batch, DeliveryNotStored("the server is shutting down"))
            raise

    async def _commit(self, batch: _TenantBatch) -> None:
        """One tenant's transaction; its callers learn the outcome only after the commit."""
        started = time.perf_counter()
        try:
            rows, row_of_caller = batch.rows()
            async with self.db.tenant_unit_of_work(batch.tenant_id) as session:
                created = await insert_new(session, rows)
                new_rows = [row for row in rows if row["id"] in created]
                await _count(session, batch, new_rows)
                to_process = [str(row["id"]) for row in new_rows if row["status"] == InboxStatus.pending]
                if to_process:
                    enqueue(session, PROCESS_JOB, tenant_id=batch.tenant_id, inbox_ids=to_process)
        except Exception as error:
            logger.error(
                "ingest.group_commit_failed",
                tenant_id=str(batch.tenant_id),
                deliveries=len(batch.waiting),
                error=type(error).__name__,
            )
            FAILED_DELIVERIES.inc(len(batch.waiting))
            _fail(batch.waiting, DeliveryNotStored("the delivery could not be stored"))
            return
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        BATCH_DELIVERIES.observe(len(batch.waiting))
        # Committed. Of callers sharing a row, the first is told it was new, the others duplicate.
        told_new: set[int] = set()
        for waiting, index in zip(batch.waiting, row_of_caller, strict=True):
            new = rows[index]["id"] in created and index not in told_new
            told_new.add(index)
            if not waiting.outcome.done():  # a caller that went away (cancelled) needs no answer
                waiting.outcome.set_result(new)


async def _count(session: AsyncSession, batch: _TenantBatch, new_rows: list[dict]) -> None:
    """One counter upsert per source: its new rows accepted, every other caller a duplicate."""
    callers = Counter(waiting.source for waiting in batch.waiting)
    accepted = Counter(row["source"] for row in new_rows)
    for source, calls in callers.items():
        await count(session, batch.tenant_id, source, accepted=accepted[source], duplicate=calls - accepted[source])


def _fail(waiting: list[_Waiting], error: DeliveryNotStored) -> None:
    for item in waiting:
        if not item.outcome.done():
            item.outcome.set_exception(error)


_writers: weakref.WeakKeyDictionary[Database, InboxWriter] = weakref.WeakKeyDictionary()


def inbox_writer(db: Database) -> InboxWriter:
    """The writer of `db`, made on first use. A `Database` belongs to one event loop, and so does it."""
    writer = _writers.get(db)
    if writer is None:
        writer = _writers[db] = InboxWriter(db)
    return writer
