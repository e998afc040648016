"""Ingest's API, for GraphQL and the CLI: the tenant's webhook endpoints, its daily ingest
counters, and its deliveries that were not processed (failed or quarantined, ingest/tasks.py),
which can be retried after a fix. Each function checks the subject's scope; none commits.

An endpoint is the URL a tenant gives Whop or Stripe, with the secret that signs its deliveries.
After a rotation the previous secret keeps verifying for ROTATION_GRACE, so the provider can be
switched over without losing deliveries. Deleting is soft (the row remains as the record of what
was configured); deliveries to a deleted endpoint are "unknown endpoint".
"""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_page
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.events_api import PROCESS_JOB
from churnsaver.backend.ingest.models import NOT_PROCESSED, InboxEvent, IngestDailyStat, WebhookEndpoint
from churnsaver.backend.ingest.repository import (
    InboxEventRepository,
    IngestDailyStatRepository,
    WebhookEndpointRepository,
)
from churnsaver.backend.ingest.tasks import BATCH_LIMIT
from churnsaver.backend.ingest.webhook_secrets import checked_secret, seal
from churnsaver.jobs.outbox import enqueue
from churnsaver.tenants.auth import AuthSubject

WEBHOOK_SOURCES = (Source.whop, Source.stripe)
ROTATION_GRACE = timedelta(hours=24)
DEFAULT_DAYS = 30
# A year of days (with a leap day) is plenty for an operational view and bounds the answer.
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    """An endpoint and its new secret in plaintext: returned once, never stored that way."""

    endpoint: WebhookEndpoint
    signing_secret: str


def _checked_source(source: Source) -> Source:
    if source not in WEBHOOK_SOURCES:
        raise InvalidInput("webhook endpoints exist for Whop and Stripe")
    return source


async def create_endpoint(
    session: AsyncSession, subject: AuthSubject, *, source: Source, signing_secret: str | None, secret_key: str
) -> EndpointWithSecret:
    subject.require_write()
    source = _checked_source(source)
    secret = checked_secret(source, signing_secret)
    endpoint_id = uuid.uuid4()  # known before the insert: the ciphertext is bound to it
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        tenant_id=subject.tenant_id,
        source=source,
        secret_ciphertext=seal(endpoint_id, secret, secret_key),
    )
    await WebhookEndpointRepository(session, subject.tenant_id).add(endpoint)
    return EndpointWithSecret(endpoint=endpoint, signing_secret=secret)


async def list_endpoints(session: AsyncSession, subject: AuthSubject) -> list[WebhookEndpoint]:
    subject.require_read()
    return await WebhookEndpointRepository(session, subject.tenant_id).oldest_first()


async def rotate_secret(
    session: AsyncSession,
    subject: AuthSubject,
    endpoint_id: uuid.UUID,
    *,
    signing_secret: str | None,
    secret_key: str,
) -> EndpointWithSecret:
    """Replace the secret; the one it replaces keeps verifying for ROTATION_GRACE. A secret still
    in its grace period from an earlier rotation stops verifying now."""
    subject.require_write()
    repository = WebhookEndpointRepository(session, subject.tenant_id)
    endpoint = await repository.get_or_raise(endpoint_id, what="webhook endpoint")
    secret = checked_secret(Source(endpoint.source), signing_secret)
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_GRACE
    endpoint.secret_ciphertext = seal(endpoint.id, secret, secret_key)
    await session.flush()
    return EndpointWithSecret(endpoint=endpoint, signing_secret=secret)


async def delete_endpoint(session: AsyncSession, subject: AuthSubject, endpoint_id: uuid.UUID) -> uuid.UUID:
    subject.require_write()
    repository = WebhookEndpointRepository(session, subject.tenant_id)
    endpoint = await repository.get_or_raise(endpoint_id, what="webhook endpoint")
    endpoint.deleted_at = utcnow()
    await session.flush()
    return endpoint.id


def stats_range(first_day: date | None, last_day: date | None, *, today: date) -> tuple[date, date]:
    """The inclusive range of days asked for: it ends today and spans 30 days unless told otherwise."""
    last = last_day or today
    # The default span, clipped at the first day a date can hold (`to` may be in year 1).
    first = first_day or last - timedelta(days=min(DEFAULT_DAYS - 1, (last - date.min).days))
    if first > last:
        raise InvalidInput("`from` must not be after `to`")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"the range may span at most {MAX_DAYS} days")
    return first, last


@dataclass(frozen=True, slots=True)
class DailyIngest:
    """One source's counters on one day, with how many of that day's deliveries are, as of now,
    failed or quarantined."""

    counters: IngestDailyStat
    not_processed: int


async def ingest_stats(
    session: AsyncSession, subject: AuthSubject, *, first_day: date | None = None, last_day: date | None = None
) -> list[DailyIngest]:
    """The tenant's counters for each source and UTC day in the range, by day, then source."""
    subject.require_read()
    first, last = stats_range(first_day, last_day, today=utcnow().date())
    counters = await IngestDailyStatRepository(session, subject.tenant_id).between(first, last)
    not_processed = await InboxEventRepository(session, subject.tenant_id).not_processed_by_day(first, last)
    return [DailyIngest(row, not_processed[(row.source, row.day)]) for row in counters]


NEWEST_RECEIVED_FIRST = KeysetOrder(time_column="received_at", descending=True)


async def list_failed_events(
    session: AsyncSession, subject: AuthSubject, *, first: int | None, after: str | None, with_total: bool
) -> Page[InboxEvent]:
    """The tenant's deliveries that failed or were quarantined, newest first."""
    subject.require_read()
    statement = InboxEventRepository(session, subject.tenant_id).select_not_processed()
    return await keyset_page(
        session, statement, InboxEvent, first=first, after=after, with_total=with_total, order=NEWEST_RECEIVED_FIRST
    )


async def retry_failed_events(
    session: AsyncSession, subject: AuthSubject, inbox_ids: list[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Put the failed or quarantined deliveries `inbox_ids` (None: every one of the tenant) back to
    pending and enqueue their processing; their ids, oldest first. An id that names no such
    delivery of the tenant is refused, and nothing is requeued."""
    subject.require_write()
    repository = InboxEventRepository(session, subject.tenant_id)
    if inbox_ids is not None:
        found = await session.execute(
            repository.select_not_processed().with_only_columns(InboxEvent.id).where(InboxEvent.id.in_(inbox_ids))
        )
        unknown = sorted(set(inbox_ids) - set(found.scalars()), key=str)
        if unknown:
            statuses = " or ".join(NOT_PROCESSED)
            raise InvalidInput(f"no {statuses} event with id {', '.join(map(str, unknown))}")
    requeued = await repository.requeue(inbox_ids)
    for start in range(0, len(requeued), BATCH_LIMIT):  # one processing job per batch
        chunk = requeued[start : start + BATCH_LIMIT]
        enqueue(session, PROCESS_JOB, tenant_id=subject.tenant_id, inbox_ids=[inbox_id.hex for inbox_id in chunk])
    return requeued
