"""Processing the inbox: stored deliveries become canonical events, applied in one transaction.

`ingest.process_inbox` runs for the rows a receiver stored (webhooks, the events API); the CLI
import calls `process_inbox` inline. Rows are claimed first, with the statement that marks them
processed: on PostgreSQL that locks them, so a second copy of the job waits and then finds
nothing left to do; on SQLite it takes the write lock before anything is read. A row that cannot
be normalized is marked failed with the reason, and the rest of the batch goes on: retrying
would fail the same way. Anything else (a database error) rolls the whole batch back, rows
pending again, and the job is retried.
"""

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.db import utcnow
from churnsaver.backend.ingest import events_api, stripe, whop
from churnsaver.backend.ingest.apply import ApplyResult, apply_events, check_event
from churnsaver.backend.ingest.canonical import CanonicalEvent
from churnsaver.backend.ingest.inbox import mark
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, Source
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime

logger = structlog.get_logger(__name__)


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


async def process_inbox(session: AsyncSession, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID]) -> ProcessResult:
    """Process the pending rows among `inbox_ids`, in the caller's transaction; idempotent."""
    rows = await _claim(session, tenant_id, inbox_ids)
    events: list[CanonicalEvent] = []
    ignored: dict[str, list[uuid.UUID]] = defaultdict(list)
    failed: list[tuple[uuid.UUID, str]] = []
    for row_id, source, payload in rows:
        try:
            events += normalize_delivery(source, payload)
        except Ignored as reason:
            ignored[str(reason)].append(row_id)
        # Whatever a malformed payload makes a normalizer raise, that row fails alone.
        except Exception as error:
            failed.append((row_id, _describe(error)))
    applied = await apply_events(session, tenant_id, events)
    for reason, ids in ignored.items():
        await mark(session, tenant_id, ids, InboxStatus.ignored, reason)
    for row_id, error in failed:
        await mark(session, tenant_id, [row_id], InboxStatus.failed, error)
    ignored_count = sum(len(ids) for ids in ignored.values())
    return ProcessResult(len(rows) - ignored_count - len(failed), ignored_count, len(failed), applied)


async def _claim(
    session: AsyncSession, tenant_id: uuid.UUID, inbox_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, str, str]]:
    statement = (
        update(InboxEvent)
        .where(
            InboxEvent.tenant_id == tenant_id,
            InboxEvent.id.in_(inbox_ids),
            InboxEvent.status == InboxStatus.pending,
        )
        .values(status=InboxStatus.processed, processed_at=utcnow())
        .returning(InboxEvent.id, InboxEvent.source, InboxEvent.payload)
        .execution_options(synchronize_session=False)
    )
    return [tuple(row) for row in await session.execute(statement)]


def _describe(error: Exception) -> str:
    message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    return message[:1000]


@job("ingest.process_inbox")
async def process_inbox_job(tenant_id: str, inbox_ids: list[str]) -> None:
    tenant = uuid.UUID(tenant_id)
    async with runtime().db.tenant_unit_of_work(tenant) as session:
        result = await process_inbox(session, tenant, [uuid.UUID(inbox_id) for inbox_id in inbox_ids])
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
