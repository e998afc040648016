"""What the channels domain stores: messages and their status events, templates, per-tenant channel
settings, consent (opt-outs, suppressed addresses, SMS consent) and link clicks.

A message is one delivery to one customer over one channel. Its `idempotency_key` is unique per
tenant: whoever schedules it (a campaign step, a test send) gives the key, and a second schedule
with the same key returns the first message instead of sending twice. Rendered bodies are kept
(plain, not encrypted): the in-app widget, the captured mailbox and the case timeline show them.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    in_app = "in_app"
    whop = "whop"


class MessageStatus(StrEnum):
    scheduled = "scheduled"
    sending = "sending"  # claimed by a worker, committed before the provider is called
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    suppressed = "suppressed"
    clicked = "clicked"
    converted = "converted"


# Statuses that mean the message reached (or is about to reach) the customer: they count toward caps.
REACHING = (
    MessageStatus.scheduled,
    MessageStatus.sending,
    MessageStatus.sent,
    MessageStatus.delivered,
    MessageStatus.clicked,
    MessageStatus.converted,
)


class LinkPurpose(StrEnum):
    update_payment = "update_payment"
    offer = "offer"
    unsubscribe = "unsubscribe"


class Message(TenantOwned, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_messages_tenant_page", "tenant_id", "created_at", "id"),
        Index("ix_messages_tenant_customer", "tenant_id", "customer_id", "created_at"),
        Index("ix_messages_tenant_case", "tenant_id", "case_id", "created_at"),
        Index("ix_messages_tenant_status", "tenant_id", "status", "lease_expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    campaign_id: Mapped[uuid.UUID | None]  # the campaigns domain's id; no foreign key (it sits above us)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(16))  # chosen when rendered
    idempotency_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why it was suppressed or failed
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the scheduler's template variables
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    captured: Mapped[bool] = mapped_column(Boolean, default=False)  # no provider configured: kept, not sent
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_for: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]  # while `sending`: after it, the worker is presumed dead
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageEvent(TenantOwned, Base):
    """A message's history: each status it entered, with the reason and what the provider said."""

    __tablename__ = "message_events"
    __table_args__ = (Index("ix_message_events_message", "tenant_id", "message_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageTemplate(TenantOwned, Base):
    """A tenant's own version of a template; without one, the built-in default is used."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "key", "channel", "locale"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelSettingsRow(TenantOwned, Base):
    """A tenant's channel settings as JSON (`settings.py` gives defaults and validates), and its
    provider secrets sealed with core/crypto, bound to the tenant."""

    __tablename__ = "channel_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sms_auth_token_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    whop_api_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelOptOut(TenantOwned, Base):
    """A customer asked not to be contacted over a channel (unsubscribe link, SMS STOP, the API)."""

    __tablename__ = "channel_opt_outs"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "channel"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))  # unsubscribe_link, sms_stop, api, ...
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SuppressedAddress(TenantOwned, Base):
    """An address the tenant never sends to again over a channel (a hard bounce, an SMS STOP)."""

    __tablename__ = "suppressed_addresses"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "address"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))  # lower-cased email, or E.164 phone number
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsConsent(TenantOwned, Base):
    """The customer agreed to receive SMS at this number: without it, no SMS is sent."""

    __tablename__ = "sms_consents"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    source: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkClick(TenantOwned, Base):
    """A signed link was opened."""

    __tablename__ = "link_clicks"
    __table_args__ = (Index("ix_link_clicks_message", "tenant_id", "message_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    clicked_at: Mapped[datetime] = mapped_column(default=utcnow)
