"""Processing the inbox: stored deliveries become canonical events, applied in one transaction.

`ingest.process_inbox` runs for the rows a receiver stored (webhooks, the events API); the CLI
import and `churnsaver ingest retry` run `process_pending` inline. A batch queues its customers'
risk re-scoring and, when it applied billing events, their cases' evaluation
(`cases.evaluate_customers`), which the processing job then runs itself at once, after its
commit: a failed payment's case is wanted within a second, and the queued job is the fallback.
Rows are claimed first, with the statement that marks them processed: on PostgreSQL that locks
them, so a second copy of the job waits and then finds nothing left to do; on SQLite it takes
the write lock before anything is read.

One row never stops a tenant's processing (backend/core/quarantine.py holds the policy, shared
by every job that processes a tenant's items):
- a row that cannot be normalized is marked `failed` with the reason, and the rest go on;
- when applying the batch fails, a transient failure (the database unavailable, the connection
  lost, a serialization failure, a deadlock, a lock timeout) rolls the whole batch back, rows
  pending again, and the job is retried;
- any other failure is the data's: the batch is claimed again in a new transaction and applied
  in order, in savepoints split in halves down to the rows that fail alone. Those are marked
  `quarantined` with the error, every other row is applied, and the job succeeds. Quarantined and
  failed rows are listed by GraphQL `failedEvents` and go back to pending with
  `churnsaver ingest retry` (or `retryFailedEvents`) once the cause is fixed.
The normal case takes no savepoint: isolating starts only after a batch has failed.

A job takes, beside the rows it was enqueued for, the tenant's other pending rows up to
BATCH_LIMIT in all. Each group commit enqueues a job for the few dozen rows it stored; under load
those jobs queue up, and the first one to run now applies hundreds of events in one transaction
while the ones behind it find their rows done and stop after one read. The per-event cost of a
batch (statements, the job's own dispatch and transaction) is amortised over what has piled up,
so processing speeds up exactly when it falls behind. The rows a job was enqueued for are always
in its batch, so every stored row is still processed by a job enqueued after it was committed.

Acknowledgements come first, during a burst. While a tenant's deliveries arrive as a burst (at
least BURST_ROWS pending rows stored in the last ARRIVING_SECONDS), a job waits rather than
compete with the receivers, for up to MAX_DEFER_SECONDS after the oldest pending row arrived. A
provider's burst is stored at the rate the receivers alone can take it, then processed in full
batches; on SQLite this keeps a processing transaction from holding the only write lock while a
hundred acknowledgements wait for it. A stream slower than that is processed at once: the
receivers have cores to spare, and what the deliveries open (a recovery case, say) is wanted in
well under a second. A job whose own rows an earlier job's batch took ends at once, without
waiting: under a stream, jobs queue up behind a waiting one, and the cases' evaluations with them.
"""

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.tasks import enqueue_evaluation, evaluate_enqueued
from churnsaver.backend.core.accepted_json import loads_accepted
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.quarantine import Batch, describe, run_isolating
from churnsaver.backend.customers.apply import ApplyResult, apply_events, check_event, combined
from churnsaver.backend.customers.events import CanonicalEvent, Source
from churnsaver.backend.ingest import events_api
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.backend.ingest.repository import InboxEventRepository
from churnsaver.backend.integrations.stripe import events as stripe
from churnsaver.backend.integrations.whop import events as whop
from churnsaver.backend.risk.tasks import enqueue_rescore
from churnsaver.jobs.registry import PROMPT, job
from churnsaver.jobs.runtime import runtime

logger = structlog.get_logger(__name__)

BATCH_LIMIT = 500
ARRIVING_SECONDS = 0.2
# A burst: this many rows stored within ARRIVING_SECONDS, 500 deliveries/s (docs/performance.md, webhook to case).
BURST_ROWS = 100
MAX_DEFER_SECONDS = 5.0
ARRIVAL_POLL_SECONDS = 0.1
# The processing job evaluates its cases itself; the queued evaluation waits this long first.
EVALUATION_FALLBACK = timedelta(seconds=10)


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
    failed: int  # could not be normalized
    quarantined: int  # could not be applied
    applied: ApplyResult
    # The rows failed or quarantined, with the reason: inbox id -> reason.
    not_processed: dict[uuid.UUID, str] = field(default_factory=dict)
    evaluation: uuid.UUID | None = None  # the job evaluating the cases of the billing customers


@dataclass(frozen=True, slots=True)
class _NormalizedRow:
    inbox_id: uuid.UUID
    events: list[CanonicalEvent]


def normalize_delivery(source: str, payload: str) -> list[CanonicalEvent]:
    """The checked canonical events of a stored delivery; Ignored, or an error saying what is wrong."""
    # Read as the receivers read it when they accepted it: what they checked is what is normalized.
    document = loads_accepted(payload)
    if not isinstance(document, dict):
        raise ValueError("the payload is not a JSON object")
    if source not in NORMALIZERS:
        raise Ignored(f"deliveries from {source!r} are not processed")
    events = NORMALIZERS[source](document)
    for event in events:
        check_event(event)
    return events


async def process_inbox(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    inbox_ids: list[uuid.UUID],
    *,
    also_pending: int = 0,
    batch: Batch | None = None,
) -> ProcessResult:
    """Process the pending rows among `inbox_ids`, and up to `also_pending` other pending rows of
    the tenant (oldest first), in the caller's transaction; idempotent. With an isolating `batch`
    (`process_pending` gives one after a failure), rows whose events cannot be applied are
    quarantined and the others applied; otherwise such a row fails the whole batch."""
    inbox = InboxEventRepository(session, tenant_id)
    rows = await inbox.claim(inbox_ids)
    if also_pending > 0:
        rows += await _claim_pending(inbox, also_pending)
    normalized: list[_NormalizedRow] = []
    ignored: dict[str, list[uuid.UUID]] = defaultdict(list)
    failed: dict[uuid.UUID, str] = {}
    for row_id, source, payload in rows:
        try:
            normalized.append(_NormalizedRow(row_id, normalize_delivery(source, payload)))
        except Ignored as ignore:
            ignored[str(ignore)].append(row_id)
        # Whatever a malformed payload makes a normalizer raise, that row fails alone.
        except Exception as exc:
            failed[row_id] = describe(exc)

    async def apply_rows(group: list[_NormalizedRow]) -> ApplyResult:
        return await apply_events(session, tenant_id, [event for row in group for event in row.events])

    applied = await (batch or Batch(session, isolating=False)).apply(normalized, apply_rows)
    for reason, ids in ignored.items():
        await inbox.mark(ids, InboxStatus.ignored, reason)
    for row_id, error in failed.items():
        await inbox.mark([row_id], InboxStatus.failed, error)
    for failure in applied.failures:
        await inbox.mark([failure.item.inbox_id], InboxStatus.quarantined, failure.reason)
    quarantined = {failure.item.inbox_id: failure.reason for failure in applied.failures}
    ignored_count = sum(len(ids) for ids in ignored.values())
    return ProcessResult(
        processed=len(rows) - ignored_count - len(failed) - len(quarantined),
        ignored=ignored_count,
        failed=len(failed),
        quarantined=len(quarantined),
        applied=combined(applied.results),
        not_processed=failed | quarantined,
    )


async def process_pending(
    db: Database, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID], *, also_pending: int = 0
) -> ProcessResult:
    """`process_inbox` in a unit of work of its own, committed, with the customers it changed
    queued for re-scoring; rows that cannot be applied are quarantined (see the module docstring)."""

    async def work(session: AsyncSession, batch: Batch) -> ProcessResult:
        result = await process_inbox(session, tenant_id, inbox_ids, also_pending=also_pending, batch=batch)
        enqueue_rescore(session, tenant_id, list(result.applied.changed_customers))
        customers = list(result.applied.billing_customers)
        evaluation = enqueue_evaluation(session, tenant_id, customers, not_before=utcnow() + EVALUATION_FALLBACK)
        return replace(result, evaluation=evaluation)

    return await run_isolating(db, tenant_id, work, what="ingest.process_inbox")


async def _claim_pending(inbox: InboxEventRepository, limit: int) -> list[tuple[uuid.UUID, str, str]]:
    """Claim up to `limit` more pending rows of the tenant, oldest first. After the rows asked
    for, and picked by a statement of its own: on PostgreSQL it skips rows another job has locked
    instead of waiting for them, so two jobs sweeping each other's rows never deadlock."""
    oldest = inbox.select_pending(InboxEvent.id).order_by(InboxEvent.received_at).limit(limit)
    oldest = oldest.with_for_update(skip_locked=True)  # SQLite, one writer at a time, compiles it to nothing
    picked = list((await inbox.session.execute(oldest)).scalars())
    return await inbox.claim(picked) if picked else []


async def _arrivals(db: Database, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID]) -> tuple[datetime, int] | None:
    """When the tenant's oldest pending row arrived, and how many pending rows (up to BURST_ROWS)
    arrived in the last ARRIVING_SECONDS; None when none of `inbox_ids` is pending any more. Read
    outside any write transaction: a job whose rows an earlier one took (the usual case under
    load) then ends without taking the write lock."""
    async with db.tenant_session(tenant_id) as session:
        inbox = InboxEventRepository(session, tenant_id)
        own = inbox.select_pending(InboxEvent.id).where(InboxEvent.id.in_(inbox_ids)).limit(1)
        if (await session.execute(own)).scalar() is None:
            return None
        oldest = (await session.execute(inbox.select_pending_received_at(newest=False))).scalar()
        since = utcnow() - timedelta(seconds=ARRIVING_SECONDS)
        recent = inbox.select_pending(InboxEvent.id).where(InboxEvent.received_at >= since).limit(BURST_ROWS)
        count = (await session.execute(select(func.count()).select_from(recent.subquery()))).scalar_one()
    return oldest or utcnow(), count


async def wait_while_arriving(db: Database, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID]) -> bool:
    """Wait while the tenant's deliveries arrive as a burst, until its oldest pending one has
    waited MAX_DEFER_SECONDS; False when none of `inbox_ids` is pending (any more)."""
    while (arrivals := await _arrivals(db, tenant_id, inbox_ids)) is not None:
        oldest, recent = arrivals
        if recent < BURST_ROWS or (utcnow() - oldest).total_seconds() >= MAX_DEFER_SECONDS:
            return True
        await asyncio.sleep(ARRIVAL_POLL_SECONDS)
    return False


@job("ingest.process_inbox", queue="ingest", priority=PROMPT, merge="inbox_ids", merge_limit=BATCH_LIMIT)
async def process_inbox_job(tenant_id: str, inbox_ids: list[str]) -> None:
    tenant = uuid.UUID(tenant_id)
    ids = [uuid.UUID(inbox_id) for inbox_id in inbox_ids]
    if not await wait_while_arriving(runtime().db, tenant, ids):
        return  # its rows were taken by an earlier job's batch, or a second copy already ran
    result = await process_pending(runtime().db, tenant, ids, also_pending=BATCH_LIMIT - len(ids))
    if result.processed + result.ignored + result.failed + result.quarantined == 0:
        return  # a second copy of a job already done
    logger.info(
        "ingest.processed",
        tenant_id=tenant_id,
        processed=result.processed,
        ignored=result.ignored,
        failed=result.failed,
        quarantined=result.quarantined,
        applied=result.applied.applied,
        duplicates=result.applied.duplicates,
    )
    if result.evaluation is not None:
        await evaluate_enqueued(runtime().db, tenant, list(result.applied.billing_customers), result.evaluation)
