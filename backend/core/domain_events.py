"""Domain events: facts one capability records for others to react to (a risk tier changed, ...).

They are rows in the same transaction as the change they describe, so a reader never sees one
without the other. Consumers (recovery cases, campaigns, outbound webhooks) read them in id order through an
`EventFeed`, each after a cursor of its own.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Row, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, insert_for, utcnow
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.core.repository import TenantRepository, owned_by


class DomainEvent(TenantOwned, Base):
    __tablename__ = "domain_events"
    __table_args__ = (Index("ix_domain_events_tenant_type", "tenant_id", "type", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[uuid.UUID]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class DomainEventRepository(TenantRepository[DomainEvent]):
    model = DomainEvent


# An event recorded this recently may still have a concurrent transaction's older id committing
# behind it: it is handed over, but the cursor stays before it until it has settled.
CURSOR_SETTLE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """What one read of a feed found: every event after the cursor (`events`), those this process
    has not handed over yet (`fresh`), and the id the cursor may move to (None: stay)."""

    tenant_id: uuid.UUID
    events: list[Row[Any]]
    fresh: list[Row[Any]]
    last_settled: uuid.UUID | None
    full: bool  # the read hit its limit: more events wait behind these


class EventFeed:
    """A consumer's reading of a tenant's domain events of some types, in id order, after a cursor
    row of its own (`cursor_model`: tenant-owned, `tenant_id` primary key, `last_event_id`,
    `updated_at`).

    Each run locks the cursor (two copies of the consumer take turns), reads what follows it,
    hands over what this process has not handled yet, and moves the cursor to the last settled
    event. The settling minute behind the cursor is read again next run; events already handled
    here are remembered in memory only to save work, so a consumer must be idempotent: another
    process, or this one restarted, hands them over again.
    """

    def __init__(self, types: tuple[str, ...], cursor_model: type[Any], *, limit: int = 5_000) -> None:
        self.types = types
        self.cursor_model = cursor_model
        self.limit = limit
        self._handled: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)

    async def read(self, session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> FeedBatch:
        """The events after the tenant's cursor, the cursor locked until the transaction ends."""
        model = self.cursor_model
        insert = insert_for(session)(model).values(tenant_id=tenant_id, last_event_id=None, updated_at=now)
        await session.execute(insert.on_conflict_do_nothing())
        cursor = select(model.last_event_id).where(owned_by(tenant_id, model)).with_for_update()
        last_event_id = (await session.execute(cursor)).scalar_one()
        statement = DomainEventRepository(session, tenant_id).select_readable(
            DomainEvent.id, DomainEvent.type, DomainEvent.subject_id, DomainEvent.occurred_at, DomainEvent.payload
        )
        statement = statement.where(DomainEvent.type.in_(self.types))
        if last_event_id is not None:
            statement = statement.where(DomainEvent.id > last_event_id)
        events = list((await session.execute(statement.order_by(DomainEvent.id).limit(self.limit))).all())
        handled = self._handled[tenant_id]
        last = None
        for event in events:
            if event.occurred_at >= now - CURSOR_SETTLE:
                break
            last = event.id
        return FeedBatch(
            tenant_id=tenant_id,
            events=events,
            fresh=[event for event in events if event.id not in handled],
            last_settled=last,
            full=len(events) == self.limit,
        )

    async def advance(self, session: AsyncSession, batch: FeedBatch) -> None:
        """Move the cursor past the batch's settled events, in the caller's transaction."""
        if batch.last_settled is not None:
            values = {"last_event_id": batch.last_settled, "updated_at": utcnow()}
            statement = update(self.cursor_model).where(owned_by(batch.tenant_id, self.cursor_model)).values(**values)
            await session.execute(statement.execution_options(synchronize_session=False))

    def committed(self, batch: FeedBatch) -> None:
        """The transaction that handled `batch` committed: remember its events until the cursor
        has passed them."""
        handled = self._handled[batch.tenant_id]
        handled.update(event.id for event in batch.fresh)
        if batch.last_settled is not None:
            handled.difference_update([event.id for event in batch.events if event.id <= batch.last_settled])
