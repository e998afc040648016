"""Ingest's API, for GraphQL: the tenant's webhook endpoints and its daily ingest counters.
Each function checks the subject's scope; none commits.

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
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import IngestDailyStat, WebhookEndpoint
from churnsaver.backend.ingest.repository import IngestDailyStatRepository, WebhookEndpointRepository
from churnsaver.backend.ingest.webhook_secrets import checked_secret, seal
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


async def ingest_stats(
    session: AsyncSession, subject: AuthSubject, *, first_day: date | None = None, last_day: date | None = None
) -> list[IngestDailyStat]:
    """The tenant's counters for each source and UTC day in the range, by day, then source."""
    subject.require_read()
    first, last = stats_range(first_day, last_day, today=utcnow().date())
    return await IngestDailyStatRepository(session, subject.tenant_id).between(first, last)
