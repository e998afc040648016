"""What the cases domain stores: recovery cases, their timeline of case events, and settings.

A case is derived from billing truth: `derivation.py` computes, from a customer's timeline, daily
activity and tier changes, which cases exist and where each stands; `reconcile.py` brings the
stored rows in line and records every transition as a case event. What people do (assign, note,
dismiss, reopen, mark lost) is stored beside it and wins over the derivation until reopened.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid

# The domain event cases record, in the same transaction, when a case opens, is joined by a later
# trigger, or changes status: upper domains (campaigns) consume it. Its subject is the case.
CASE_CHANGED = "case.changed"
CASE_CHANGED_TYPES = ("opened", "joined", "status_changed")


class CaseKind(StrEnum):
    payment_failed = "payment_failed"
    cancellation_scheduled = "cancellation_scheduled"
    canceled = "canceled"
    downgraded = "downgraded"
    usage_drop = "usage_drop"
    high_risk = "high_risk"


class CaseStatus(StrEnum):
    open = "open"
    recovered = "recovered"
    lost = "lost"
    dismissed = "dismissed"


class CaseEventType(StrEnum):
    opened = "opened"
    joined = "joined"  # a later trigger of the same kind joined the open case (another failed attempt)
    touched = "touched"  # first contact with the customer (campaigns)
    offer_shown = "offer_shown"
    offer_accepted = "offer_accepted"
    offer_failed = "offer_failed"  # billing refused the accepted offer; the case stays open
    note = "note"
    assigned = "assigned"
    status_changed = "status_changed"
    verified = "verified"


class RecoveryCase(TenantOwned, Base):
    """One case: a customer, a kind, the trigger that opened it, and its outcome.

    `trigger_key` is the trigger's own key (a timeline row's dedupe key, a tier event's id, a usage
    drop's day): the same trigger never opens a second case of the customer. At most one case per customer and
    kind is open at a time (a partial unique index)."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", "kind", "trigger_key"),
        Index("ix_cases_tenant_priority", "tenant_id", "priority", "id"),
        Index("ix_cases_tenant_opened", "tenant_id", "opened_at", "id"),
        Index("ix_cases_tenant_customer", "tenant_id", "customer_id"),
        Index(
            "ix_cases_one_open",
            "tenant_id",
            "customer_id",
            "kind",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    trigger_key: Mapped[str] = mapped_column(String(255))
    trigger_type: Mapped[str] = mapped_column(String(100))
    trigger_occurred_at: Mapped[datetime]
    subscription_id: Mapped[str | None] = mapped_column(String(255))  # the provider's subscription id
    opened_at: Mapped[datetime]  # the trigger's event time, not when we learned of it
    window_ends_at: Mapped[datetime]  # the attribution window: recovered by then, or lost
    resolved_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    revenue_at_risk: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units of `currency`
    currency: Mapped[str | None] = mapped_column(String(3))
    priority: Mapped[float] = mapped_column(Float, default=0.0)  # churn probability x revenue at risk
    first_touch_due_at: Mapped[datetime]
    first_touch_at: Mapped[datetime | None]
    assignee: Mapped[str | None] = mapped_column(String(255))
    # What the trigger said: decline class, amount due, attempt, next retry, access ends, MRR before/after.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set by dismiss / mark lost (with their reason); the derivation does not move the case until reopened.
    manual_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CaseEvent(TenantOwned, Base):
    """An entry of a case's timeline. `key` makes derived entries idempotent (a transition recorded
    once however often it is derived); a person's entries get a fresh key each."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", "key"),
        Index("ix_case_events_case", "tenant_id", "case_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    # Who or what caused it: "event:<source>:<dedupe key>", "job:<name>", "api_key:<id>", "member:<id>".
    actor: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # from/to status, reason, note text, ...
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseSettingsRow(TenantOwned, Base):
    """A tenant's case settings as JSON (`settings.py` gives the defaults and validates)."""

    __tablename__ = "case_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CaseConsumerCursor(TenantOwned, Base):
    """How far the cases consumer has read a tenant's domain events (risk tier changes): the id of
    the last one reconciled. Ids are time-ordered, so the next run reads those after it."""

    __tablename__ = "case_consumer_cursors"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    last_event_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
