"""What the billing domain stores: a tenant's billing connection (its provider and encrypted API
key) and every call made to a provider, with its answer (the sandbox's calls are its whole effect)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid


class BillingConnection(TenantOwned, Base):
    """The tenant's billing provider; the key is encrypted and bound to the tenant (never read back)."""

    __tablename__ = "billing_connections"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # WHOP | STRIPE | SANDBOX
    api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_hint: Mapped[str | None] = mapped_column(String(16))  # the key's last 4 characters
    account: Mapped[str | None] = mapped_column(String(255))  # what the check call said the key belongs to
    checked_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BillingCall(TenantOwned, Base):
    """One request to a provider (each attempt), what it asked and what the provider answered."""

    __tablename__ = "billing_calls"
    __table_args__ = (Index("ix_billing_calls_redemption", "tenant_id", "redemption_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    redemption_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offer_redemptions.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: no answer (timeout, connection)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
