"""Group commit for webhook deliveries: many concurrent deliveries, one transaction per tenant.

A receiver hands its verified delivery to the `InboxWriter` of its database and waits for the
answer. The writer commits whatever has arrived since its last commit in one go: per tenant, one
transaction holding, per source, one inbox insert of all its rows with their counters
(`inbox.store_deliveries`, as the events API stores a batch), and one processing job for the
new rows, as one `Database.run_unit_of_work`. Batches form by themselves: while one commits, the
next gathers, so a lone delivery is committed at once and a busy server commits hundreds per
transaction, with no timer anywhere. As many flushes may be in flight as the database has
`concurrent_writers`; two flushes of one tenant meet only at its counter row, the second waiting
for the first's commit.

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
from dataclasses import dataclass, field

import prometheus_client
import structlog

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.unit_of_work import UnitOfWork
from churnsaver.backend.ingest.inbox import Delivery, store_deliveries
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
    """One tenant's share of a flush."""

    tenant_id: uuid.UUID
    waiting: list[_Waiting] = field(default_factory=list)

    def store(self, work: UnitOfWork) -> set[tuple[str, str]]:
        """Store the deliveries and enqueue the processing of the new ones; the (source, external
        id) of the rows stored now."""
        by_source = self._by_source()
        created = {
            source: store_deliveries(work, self.tenant_id, source, deliveries)
            for source, deliveries in by_source.items()
        }
        stored_now, to_process = _outcome(by_source, created)
        if to_process:
            enqueue(work, PROCESS_JOB, tenant_id=self.tenant_id, inbox_ids=to_process)
        return stored_now

    def _by_source(self) -> dict[str, list[Delivery]]:
        by_source: dict[str, list[Delivery]] = {}
        for waiting in self.waiting:
            by_source.setdefault(waiting.source, []).append(waiting.delivery)
        return by_source


def _outcome(
    by_source: dict[str, list[Delivery]], created: dict[str, dict[str, str]]
) -> tuple[set[tuple[str, str]], list[str]]:
    """From the rows each source's deliveries created: the (source, external id) stored now, and
    the inbox ids to process."""
    stored_now = {(source, external_id) for source, rows in created.items() for external_id in rows}
    to_process = [inbox_id for source, rows in created.items() for inbox_id in _pending_ids(by_source[source], rows)]
    return stored_now, to_process


class InboxWriter:
    """The group-committing writer of one `Database` (so of one event loop)."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH, max_flushes: int | None = None) -> None:
        self.db = db
        self.max_batch = max_batch
        self.max_flushes = max_flushes or db.concurrent_writers
        self._queue: list[_Waiting] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def store(self, tenant_id: uuid.UUID, source: str, delivery: Delivery) -> bool:
        """Store `delivery` durably; True when it is new, False for a duplicate.

        Raises DeliveryNotStored when its transaction failed."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(tenant_id, source, delivery, loop.create_future())
        self._queue.append(waiting)
        if len(self._flushers) < self.max_flushes:
            self._flushers.add(loop.create_task(self._flush_until_empty()))
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
            # Here, not in a done callback, which runs a loop turn later: a delivery queued in
            # between would find no room for a flusher and none left to take it.
            self._flushers.discard(asyncio.current_task())

    async def _flush(self, batch: list[_Waiting]) -> None:
        by_tenant: dict[uuid.UUID, _TenantBatch] = {}
        for waiting in batch:
            by_tenant.setdefault(waiting.tenant_id, _TenantBatch(waiting.tenant_id)).waiting.append(waiting)
        try:
            if self.db.concurrent_writers > 1 and len(by_tenant) > 1:
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
            stored_now = await self.db.run_unit_of_work(batch.tenant_id, batch.store)
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
        # Committed. Of callers sharing a new row, the first is told it was new, the others duplicate.
        for waiting in batch.waiting:
            key = (waiting.source, waiting.delivery.external_id)
            is_new = key in stored_now
            stored_now.discard(key)
            if not waiting.outcome.done():  # a caller that went away (cancelled) needs no answer
                waiting.outcome.set_result(is_new)


def _pending_ids(deliveries: list[Delivery], created: dict[str, str]) -> list[str]:
    """The new rows to process: those not stored as ignored (a source's tests, unknown types).
    A row holds the first delivery of its external id."""
    status: dict[str, InboxStatus] = {}
    for delivery in deliveries:
        status.setdefault(delivery.external_id, delivery.status)
    return [inbox_id for external_id, inbox_id in created.items() if status[external_id] == InboxStatus.pending]


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
