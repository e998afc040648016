"""Processing the inbox: stored deliveries become canonical events, applied in one transaction.

`ingest.process_inbox` runs for the rows a receiver stored (webhooks, the events API); the CLI
import calls `process_inbox` inline. Rows are claimed first, with the statement that marks them
processed: on PostgreSQL that locks them, so a second copy of the job waits and then finds
nothing left to do; on SQLite it takes the write lock before anything is read. A row that cannot
be normalized is marked failed with the reason, and the rest of the batch goes on: retrying
would fail the same way. Anything else (a database error) rolls the whole batch back, rows
pending again, and the job is retried.

A job takes, beside the rows it was enqueued for, the tenant's other pending rows up to
BATCH_LIMIT in all. Each group commit enqueues a job for the few dozen rows it stored; under load
those jobs queue up, and the first one to run now applies hundreds of events in one transaction
while the ones behind it find their rows done and stop after one read. The per-event cost of a
batch (statements, the job's own dispatch and transaction) is amortised over what has piled up,
so processing speeds up exactly when it falls behind. The rows a job was enqueued for are always
in its batch, so every stored row is still processed by a job enqueued after it was committed.

Acknowledgements come first. While a tenant's deliveries are still arriving (the newest pending
row is under ARRIVING_SECONDS old), a job waits rather than compete with the receivers, for up
to MAX_DEFER_SECONDS after the oldest pending row arrived. A provider's burst is stored at the
rate the receivers alone can take it, then processed in full batches; a sustained stream is
processed at most MAX_DEFER_SECONDS behind. On SQLite this is what keeps a processing
transaction from holding the only write lock while a hundred acknowledgements wait for it; on
any backend it leaves the cores to the senders waiting for an answer. A lone delivery waits
ARRIVING_SECONDS.
"""

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.apply import ApplyResult, apply_events, check_event
from churnsaver.backend.customers.events import CanonicalEvent, Source
from churnsaver.backend.ingest import events_api
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.backend.ingest.repository import InboxEventRepository
from churnsaver.backend.integrations.stripe import events as stripe
from churnsaver.backend.integrations.whop import events as whop
from churnsaver.backend.risk.tasks import enqueue_rescore
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime

logger = structlog.get_logger(__name__)

BATCH_LIMIT = 500
ARRIVING_SECONDS = 0.2
MAX_DEFER_SECONDS = 5.0
ARRIVAL_POLL_SECONDS = 0.1


class Ignored(Exception):
    """A delivery stored and acknowledged but not processed; the message says why."""


Normalizer = Callable[[dict[str, Any]], list[CanonicalEvent]]


def _unless_ignored(ignore_reason: Callable[[dict[str, Any]], str | None], normalize: Normalizer) -> Normalizer:
    def normalize_delivery(payload: dict[str, Any]) -> list[CanonicalEvent]:
        if reason := ignore_reason(payload):
            raise Ignored(reason)
        return normalize(payload)

    return normalize_delivery


NORMALIZERS: dict[str, Normalizer] = {
    Source.whop: _unless_ignored(whop.ignore_reason, whop.normalize),
    Source.stripe: _unless_ignored(stripe.ignore_reason, stripe.normalize),
    Source.api: events_api.normalize_item,
}


@dataclass(frozen=True, slots=True)
class ProcessResult:
    processed: int
    ignored: int
    failed: int
    applied: ApplyResult


def normalize_delivery(source: str, payload: str) -> list[CanonicalEvent]:
    """The checked canonical events of a stored delivery; Ignored, or an error saying what is wrong."""
    document = json.loads(payload)
    if not isinstance(document, dict):
        raise ValueError("the payload is not a JSON object")
    if source not in NORMALIZERS:
        raise Ignored(f"deliveries from {source!r} are not processed")
    events = NORMALIZERS[source](document)
    for event in events:
        check_event(event)
    return events


async def process_inbox(
    session: AsyncSession, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID], *, also_pending: int = 0
) -> ProcessResult:
    """Process the pending rows among `inbox_ids`, and up to `also_pending` other pending rows of
    the tenant (oldest first), in the caller's transaction; idempotent."""
    inbox = InboxEventRepository(session, tenant_id)
    rows = await inbox.claim(inbox_ids)
    if also_pending > 0:
        rows += await _claim_pending(inbox, also_pending)
    events: list[CanonicalEvent] = []
    ignored: dict[str, list[uuid.UUID]] = defaultdict(list)
    failed: list[tuple[uuid.UUID, str]] = []
    for row_id, source, payload in rows:
        try:
            events += normalize_delivery(source, payload)
        except Ignored as ignore:
            ignored[str(ignore)].append(row_id)
        # Whatever a malformed payload makes a normalizer raise, that row fails alone.
        except Exception as exc:
            failed.append((row_id, _describe(exc)))
    applied = await apply_events(session, tenant_id, events)
    for reason, ids in ignored.items():
        await inbox.mark(ids, InboxStatus.ignored, reason)
    for row_id, error in failed:
        await inbox.mark([row_id], InboxStatus.failed, error)
    ignored_count = sum(len(ids) for ids in ignored.values())
    return ProcessResult(len(rows) - ignored_count - len(failed), ignored_count, len(failed), applied)


async def _claim_pending(inbox: InboxEventRepository, limit: int) -> list[tuple[uuid.UUID, str, str]]:
    """Claim up to `limit` more pending rows of the tenant, oldest first. After the rows asked
    for, and picked by a statement of its own: on PostgreSQL it skips rows another job has locked
    instead of waiting for them, so two jobs sweeping each other's rows never deadlock."""
    oldest = inbox.select_pending(InboxEvent.id).order_by(InboxEvent.received_at).limit(limit)
    oldest = oldest.with_for_update(skip_locked=True)  # SQLite, one writer at a time, compiles it to nothing
    picked = list((await inbox.session.execute(oldest)).scalars())
    return await inbox.claim(picked) if picked else []


async def _pending_span(db: Database, tenant_id: uuid.UUID) -> tuple[datetime, datetime] | None:
    """When the tenant's oldest and newest pending rows arrived (None: nothing pending), read
    outside any write transaction: a job whose rows an earlier one took (the usual case under
    load) then ends without taking the write lock."""
    async with db.tenant_session(tenant_id) as session:
        inbox = InboxEventRepository(session, tenant_id)
        oldest = (await session.execute(inbox.select_pending_received_at(newest=False))).scalar()
        if oldest is None:
            return None
        newest = (await session.execute(inbox.select_pending_received_at(newest=True))).scalar()
    return oldest, newest or oldest


async def wait_while_arriving(db: Database, tenant_id: uuid.UUID) -> bool:
    """Wait until the tenant's deliveries stop arriving, or its oldest pending one has waited
    MAX_DEFER_SECONDS; False when nothing is pending (any more)."""
    while (span := await _pending_span(db, tenant_id)) is not None:
        oldest, newest = span
        now = utcnow()
        if (now - newest).total_seconds() >= ARRIVING_SECONDS or (now - oldest).total_seconds() >= MAX_DEFER_SECONDS:
            return True
        await asyncio.sleep(ARRIVAL_POLL_SECONDS)
    return False


def _describe(error: Exception) -> str:
    message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    return message[:1000]


@job("ingest.process_inbox")
async def process_inbox_job(tenant_id: str, inbox_ids: list[str]) -> None:
    tenant = uuid.UUID(tenant_id)
    if not await wait_while_arriving(runtime().db, tenant):
        return  # its rows were taken by an earlier job's batch, or a second copy already ran
    ids = [uuid.UUID(inbox_id) for inbox_id in inbox_ids]
    async with runtime().db.tenant_unit_of_work(tenant) as session:
        result = await process_inbox(session, tenant, ids, also_pending=BATCH_LIMIT - len(ids))
        enqueue_rescore(session, tenant, list(result.applied.changed_customers))
    if result.processed + result.ignored + result.failed == 0:
        return  # a second copy of a job already done
    logger.info(
        "ingest.processed",
        tenant_id=tenant_id,
        processed=result.processed,
        ignored=result.ignored,
        failed=result.failed,
        applied=result.applied.applied,
        duplicates=result.applied.duplicates,
    )
