"""Reads of ingest's own tables: webhook endpoints, the inbox, the daily counters.

Tenant reads start from the repositories' `select_readable()`; the one read before a tenant is
known (which endpoint a delivery was sent to) is `find_receiving_endpoint`, on the system session.
"""

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import NOT_PROCESSED, InboxEvent, InboxStatus, IngestDailyStat, WebhookEndpoint


class WebhookEndpointRepository(TenantRepository[WebhookEndpoint]):
    """Deleted endpoints are gone for every read: lists, look-ups by id and `node(id:)`."""

    model = WebhookEndpoint

    def select_readable(self, *columns: Any) -> Select[Any]:
        return super().select_readable(*columns).where(WebhookEndpoint.deleted_at.is_(None))

    async def oldest_first(self) -> list[WebhookEndpoint]:
        statement = self.select_readable().order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        return list((await self.session.execute(statement)).scalars())


async def find_receiving_endpoint(
    system_session: AsyncSession, endpoint_id: uuid.UUID, source: Source
) -> WebhookEndpoint | None:
    """The live endpoint `endpoint_id` of `source`, whichever tenant owns it. The one read of
    webhook_endpoints before a tenant is known: on PostgreSQL a SELECT-only policy grants it to
    the system connection."""
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.source == source, WebhookEndpoint.deleted_at.is_(None)
    )
    return (await system_session.execute(statement)).scalar_one_or_none()


class IngestDailyStatRepository(TenantRepository[IngestDailyStat]):
    model = IngestDailyStat

    async def between(self, first_day: date, last_day: date) -> list[IngestDailyStat]:
        statement = (
            self.select_readable()
            .where(IngestDailyStat.day >= first_day, IngestDailyStat.day <= last_day)
            .order_by(IngestDailyStat.day, IngestDailyStat.source)
        )
        return list((await self.session.execute(statement)).scalars())


class InboxEventRepository(TenantRepository[InboxEvent]):
    model = InboxEvent

    async def claim(self, inbox_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str, str]]:
        """Mark the pending rows among `inbox_ids` processed; (id, source, payload) of each one marked."""
        statement = (
            self.update_owned()
            .where(InboxEvent.id.in_(inbox_ids), InboxEvent.status == InboxStatus.pending)
            .values(status=InboxStatus.processed, processed_at=utcnow())
            .returning(InboxEvent.id, InboxEvent.source, InboxEvent.payload)
            .execution_options(synchronize_session=False)
        )
        return [(inbox_id, source, payload) for inbox_id, source, payload in await self.session.execute(statement)]

    async def mark(self, inbox_ids: list[uuid.UUID], status: InboxStatus, error: str | None = None) -> None:
        statement = self.update_owned().where(InboxEvent.id.in_(inbox_ids))
        await self.session.execute(statement.values(status=status, processed_at=utcnow(), error=error))

    def select_pending(self, *columns: Any) -> Select[Any]:
        return self.select_readable(*columns).where(InboxEvent.status == InboxStatus.pending)

    def select_pending_received_at(self, *, newest: bool) -> Select[datetime]:
        # One end of the pending index each: min() and max() in one statement would read every
        # pending row, which is a whole burst while one is arriving.
        received_at = InboxEvent.received_at
        return self.select_pending(received_at).order_by(received_at.desc() if newest else received_at).limit(1)

    def select_not_processed(self) -> Select[Any]:
        """The rows failed or quarantined: not processed, retryable after a fix."""
        return self.select_readable().where(InboxEvent.status.in_(NOT_PROCESSED))

    async def not_processed_by_day(self, first_day: date, last_day: date) -> Counter[tuple[str, date]]:
        """How many rows received on each day of the range are failed or quarantined, by (source, day)."""
        start = datetime.combine(first_day, time(), UTC)
        end = datetime.combine(last_day, time(), UTC) + timedelta(days=1)
        statement = (
            self.select_readable(InboxEvent.source, InboxEvent.received_at)
            .where(InboxEvent.status.in_(NOT_PROCESSED))
            .where(InboxEvent.received_at >= start, InboxEvent.received_at < end)
        )
        return Counter((source, received_at.date()) for source, received_at in await self.session.execute(statement))

    async def requeue(self, inbox_ids: list[uuid.UUID] | None) -> list[uuid.UUID]:
        """Put the failed or quarantined rows among `inbox_ids` (None: all of them) back to pending,
        oldest first; the ids of the rows requeued."""
        statement = self.update_owned().where(InboxEvent.status.in_(NOT_PROCESSED))
        if inbox_ids is not None:
            statement = statement.where(InboxEvent.id.in_(inbox_ids))
        statement = (
            statement.values(status=InboxStatus.pending, processed_at=None, error=None)
            .returning(InboxEvent.id, InboxEvent.received_at)
            .execution_options(synchronize_session=False)
        )
        rows = sorted(await self.session.execute(statement), key=lambda row: (row[1], row[0]))
        return [inbox_id for inbox_id, _received_at in rows]
