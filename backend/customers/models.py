"""Customers, the provider ids that identify them, their subscriptions and their timeline.

Ingestion writes all of it. `external_id` is the first provider id a customer was seen with (a
Whop user id, a Stripe customer id, an events-API customerId); `CustomerIdentity` holds every
provider id that leads to the customer.

Two daily tables are kept as events are applied (`customers/activity.py`), so features and
triggers as of any day come from them without rescanning the timeline:
- `customer_daily_activity`: how many events of each name a customer had on each UTC day
  (usage events by their own name, billing events by their canonical type, declines by class);
- `customer_daily_state`: what subscription events said about the customer on each day
  (status, plan, MRR, cancel at period end), newest event time winning within the day.
"""

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow


class CustomerStatus(StrEnum):
    """Whether a customer can still churn. A churned customer's subscriptions have all ended (or an
    import labelled it churned): it is left out of risk tiers and risk orderings."""

    active = "active"
    churned = "churned"


class Customer(TenantOwned, Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        # What the per-event tables refer to (`of_its_customer`); an index: SQLite adds it in place.
        Index("uq_customers_tenant_id_id", "tenant_id", "id", unique=True),
        # Keyset pagination walks (tenant_id, created_at, id).
        Index("ix_customers_tenant_page", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    traits: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    # A known churn outcome, from an import's label column: training data for the risk model.
    churn_label: Mapped[bool | None]
    # Set as the customer's subscriptions say (customers/churn.py) or by a labelled import.
    status: Mapped[str] = mapped_column(
        String(16), default=CustomerStatus.active.value, server_default=CustomerStatus.active.value
    )
    churned_at: Mapped[datetime | None]  # the time of the ending event; None while active
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerIdentity(TenantOwned, Base):
    """One provider id of a customer: (whop, user_…), (stripe, cus_…), (api, the tenant's id)."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "provider_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(255))


class Subscription(TenantOwned, Base):
    """A customer's subscription as its provider reports it, kept by event time.

    `state_at` and `state_key` are the high-water mark: the (event time, event key) of the newest
    event applied. An older event never overwrites newer state, whatever order they arrive in.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    plan: Mapped[str | None] = mapped_column(String(255))
    mrr: Mapped[int | None] = mapped_column(BigInteger)  # minor units of `currency`, per month
    currency: Mapped[str | None] = mapped_column(String(3))
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    ended_at: Mapped[datetime | None]  # event time of the event that ended it; None while running
    state_at: Mapped[datetime]
    state_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def of_its_customer() -> ForeignKeyConstraint:
    """The per-event tables' one reference: the row's (tenant, customer) is a customer of that
    tenant, and goes with it. One check a row where two (tenant, then customer) cost twice the
    server's time in a bulk import (docs/performance.md, history import)."""
    return ForeignKeyConstraint(
        ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"], ondelete="CASCADE"
    )


class CustomerEvent(TenantOwned, Base):
    """One entry of a customer's timeline: a canonical billing event, a usage event, an identify.

    `dedupe_key` is unique per tenant and source, so replaying a delivery adds nothing.
    """

    __tablename__ = "customer_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "dedupe_key"),
        Index("ix_customer_events_timeline", "tenant_id", "customer_id", "occurred_at", "id"),
        of_its_customer(),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column()  # leads the indexes above: none of its own
    customer_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    properties: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# On SQLite the aggregates are stored in key order (migration 0004): features read them that way.
CLUSTERED_ON_SQLITE = {"sqlite_with_rowid": False}


class CustomerDailyActivity(TenantOwned, Base):
    __tablename__ = "customer_daily_activity"
    __table_args__ = (of_its_customer(), CLUSTERED_ON_SQLITE)

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class CustomerDailyState(TenantOwned, Base):
    __tablename__ = "customer_daily_state"
    __table_args__ = CLUSTERED_ON_SQLITE

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    status: Mapped[str | None] = mapped_column(String(32))
    plan: Mapped[str | None] = mapped_column(String(255))
    mrr: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    cancel_at_period_end: Mapped[bool | None]
    state_at: Mapped[datetime]  # event time of the newest event merged into this day
