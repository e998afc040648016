"""What the campaigns domain stores: campaigns (playbooks), the cases enrolled in them, and each
enrolled case's steps as rows with their due time (`campaign_steps_due`), the truth a dispatcher
works from: nothing about a schedule lives only in a job queue.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid


class CampaignStatus(StrEnum):
    active = "active"
    paused = "paused"
    archived = "archived"


class StepStatus(StrEnum):
    pending = "pending"
    sent = "sent"  # handed to channels.schedule_message (the message may still be suppressed there)
    skipped = "skipped"  # never sent, with the reason (suppressed by channels, no time left)
    stopped = "stopped"  # a stop condition held: the case closed, the campaign paused, an opt-out


class Campaign(TenantOwned, Base):
    """A playbook: the case kinds it answers, the audience it is for, its variants (each an ordered
    list of steps) and the share of cases held out. `playbook` names a default playbook a tenant got
    on first use (None for the tenant's own campaigns): each is created once per tenant."""

    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "playbook"),
        Index("ix_campaigns_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    playbook: Mapped[str | None] = mapped_column(String(64))
    case_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {tiers, plans, mrr_min, mrr_max (minor units), decline_classes, countries}; a missing key: anyone.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.active.value)
    holdout_share: Mapped[float] = mapped_column(Float, default=0.10)
    # [{name, weight, steps: [{delay, channel, template, offer_id, condition}]}]; see `playbooks.py`.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignEnrollment(TenantOwned, Base):
    """A case in a campaign, once (unique case + campaign), with the variant it was assigned or its
    place in the holdout, decided when it entered and never changed."""

    __tablename__ = "campaign_enrollments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", "campaign_id"),
        Index("ix_campaign_enrollments_campaign", "tenant_id", "campaign_id", "enrolled_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    variant: Mapped[str | None] = mapped_column(String(64))  # None: held out
    holdout: Mapped[bool] = mapped_column(default=False)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignStepDue(TenantOwned, Base):
    """One step of an enrolled case, due at `due_at`. A dispatcher claims it (pending -> sent) in
    the same transaction that schedules its message with the idempotency key
    `campaign-step:<id>`: a step is sent at most once however many dispatchers or retries run."""

    __tablename__ = "campaign_steps_due"
    __table_args__ = (
        UniqueConstraint("tenant_id", "enrollment_id", "step_index"),
        Index("ix_campaign_steps_due_pending", "tenant_id", "status", "due_at"),
        Index("ix_campaign_steps_due_case", "tenant_id", "case_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    enrollment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaign_enrollments.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    step_index: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(100))
    offer_id: Mapped[uuid.UUID | None]  # the step's offer; dispatch may carry another the customer may have
    condition: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.pending.value)
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[uuid.UUID | None]  # the channels message, once sent
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignConsumerCursor(TenantOwned, Base):
    """How far the campaigns consumer has read a tenant's `case.changed` domain events."""

    __tablename__ = "campaign_consumer_cursors"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    last_event_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
