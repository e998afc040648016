"""What the offers domain stores: a tenant's offers (kind, value, eligibility, budget, texts per
locale), its offer settings (tenant budget, choice policy), the budget spent per month, each
redemption of an offer with its provider answer, and the arms of the learning policy.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow
from churnsaver.backend.core.ids import ordered_uuid


class OfferKind(StrEnum):
    PERCENT_OFF = "PERCENT_OFF"  # value: percent, cycles
    AMOUNT_OFF = "AMOUNT_OFF"  # value: amount (minor units), currency, cycles
    FREE_DAYS = "FREE_DAYS"  # value: days
    PAUSE = "PAUSE"  # value: cycles
    PLAN_SWITCH = "PLAN_SWITCH"  # value: plan (the provider's plan id), plan_name
    UNCANCEL = "UNCANCEL"
    RESUME = "RESUME"
    UPDATE_PAYMENT = "UPDATE_PAYMENT"
    RETRY_PAYMENT = "RETRY_PAYMENT"


# The one-click actions that cost nothing: never budgeted, never an "incentive in flight".
FREE_KINDS = frozenset({OfferKind.UNCANCEL, OfferKind.RESUME, OfferKind.UPDATE_PAYMENT, OfferKind.RETRY_PAYMENT})


class OfferStatus(StrEnum):
    active = "active"
    archived = "archived"


class RedemptionStatus(StrEnum):
    PENDING = "PENDING"  # budget reserved, the provider not yet (or not surely) asked
    APPLIED = "APPLIED"  # the provider applied it
    FAILED = "FAILED"  # the provider refused it (its reason kept); the budget released


class Offer(TenantOwned, Base):
    """One offer. `key` names a default offer a tenant got on first use (None for its own)."""

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        Index("ix_offers_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.active.value)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {case_kinds, tiers, plans, mrr_min, mrr_max, tenure_days_min, cancel_reasons, cooldown_days}; missing: anyone.
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {locale: {title, description}}: the tenant's own wording; built-in wording otherwise.
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    monthly_budget: Mapped[int | None] = mapped_column(BigInteger)  # minor units of `currency`; None: unlimited
    currency: Mapped[str | None] = mapped_column(String(3))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # rules break ties by it, highest first
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OfferSettingsRow(TenantOwned, Base):
    """A tenant's offer settings as JSON (`settings.py` gives the defaults and validates)."""

    __tablename__ = "offer_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BudgetMonth(TenantOwned, Base):
    """Money reserved and spent in one month, for an offer (`scope` its id) or the whole tenant
    (`scope` "tenant"). Reserving is one conditional UPDATE (`reserved + cost <= limit`), so
    concurrent accepts never overspend: the row lock on PostgreSQL, the one writer on SQLite."""

    __tablename__ = "offer_budget_months"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, UTC
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)  # in flight or applied
    spent: Mapped[int] = mapped_column(BigInteger, default=0)  # applied (settled)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Redemption(TenantOwned, Base):
    """An accepted offer and what billing made of it. `idempotency_key` is unique per tenant: a
    repeated accept (a double click, a replayed request, a retried job) finds the first."""

    __tablename__ = "offer_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_offer_redemptions_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_offer_redemptions_customer", "tenant_id", "customer_id", "offer_id"),
        Index("ix_offer_redemptions_case", "tenant_id", "case_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # email | widget | one_click
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RedemptionStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)  # the provider's reason for a refusal
    cost: Mapped[int] = mapped_column(BigInteger, default=0)  # reserved, then what billing applied
    currency: Mapped[str | None] = mapped_column(String(3))
    budget_month: Mapped[str] = mapped_column(String(7))
    provider: Mapped[str | None] = mapped_column(String(16))
    # What billing is asked to do, fixed at accept time, so a retry or the fallback job asks the same.
    action: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_answer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hosted_url: Mapped[str | None] = mapped_column(Text)  # UPDATE_PAYMENT: the provider's card-update page
    choice_reason: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(String(64))  # the learning policy's segment (case kind)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OfferArm(TenantOwned, Base):
    """How often an offer was shown first in a segment (case kind): the learning policy's trials.
    Its rewards are read from the offer's verified recoveries (`RedemptionRepository.verified_rewards`)."""

    __tablename__ = "offer_arms"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
