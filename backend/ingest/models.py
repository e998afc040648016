"""Webhook endpoints, the inbox of raw deliveries, and daily ingest counters."""

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow


class InboxStatus(StrEnum):
    pending = "pending"
    processed = "processed"
    ignored = "ignored"  # stored and acknowledged, not processed: test payloads, unknown types
    failed = "failed"  # could not be normalized
    quarantined = "quarantined"  # normalized, but applying it failed; the tenant's other rows went on


# The rows that were not processed and may be retried after a fix (`failedEvents`, `ingest retry`).
NOT_PROCESSED = (InboxStatus.failed, InboxStatus.quarantined)


class WebhookEndpoint(TenantOwned, Base):
    """A URL a tenant gives its billing provider. Secrets are stored encrypted (backend/core/crypto.py);
    after a rotation the previous secret keeps verifying until `previous_secret_expires_at`."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class InboxEvent(TenantOwned, Base):
    """A delivery exactly as received, stored before it is acknowledged. Unique per
    (tenant, source, external id): a duplicate delivery inserts nothing and is processed never."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "external_id"),
        # A processing job's reads: one tenant's pending rows, oldest or newest first.
        Index("ix_inbox_events_pending", "tenant_id", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the raw JSON text, as signed
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.pending)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class IngestDailyStat(TenantOwned, Base):
    """Accepted, duplicate and rejected deliveries per tenant, source and UTC day."""

    __tablename__ = "ingest_daily_stats"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "day"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    day: Mapped[date]
    accepted: Mapped[int] = mapped_column(default=0)
    duplicate: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
