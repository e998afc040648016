"""Domain events: facts one capability records for others to react to (a risk tier changed, ...).

They are rows in the same transaction as the change they describe, so a reader never sees one
without the other. Consumers (recovery cases, outbound webhooks) read them in id order.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.core.repository import TenantRepository


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
