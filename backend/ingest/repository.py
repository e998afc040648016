"""Reads of ingest's own tables: webhook endpoints, the inbox, the daily counters.

Tenant reads start from the repositories' `select_readable()`; the one read before a tenant is
known (which endpoint a delivery was sent to) is `find_receiving_endpoint`, on the system session.
"""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat, WebhookEndpoint


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
