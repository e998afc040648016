"""Customer queries for the API: lists with filters, one customer, subscriptions and timelines.
Ingestion writes customers."""

import uuid
from dataclasses import dataclass

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_pages
from churnsaver.backend.customers.models import Customer, CustomerEvent, Subscription
from churnsaver.backend.customers.repository import CustomerEventRepository, CustomerRepository, SubscriptionRepository

NEWEST_EVENT_FIRST = KeysetOrder(time_column="occurred_at", descending=True)


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """Status and plan match the customer's current subscription; `search` is a case-insensitive
    substring of the email, name or external id."""

    status: str | None = None
    plan: str | None = None
    search: str | None = None


def customers_statement(
    session: AsyncSession, tenant_id: uuid.UUID, filter: CustomerFilter | None = None
) -> Select[tuple[Customer]]:
    """The tenant's customers matching `filter`, unordered: other orders and filters build on it."""
    statement = CustomerRepository(session, tenant_id).select_readable()
    return _filtered(session, tenant_id, statement, filter) if filter is not None else statement


def _filtered(
    session: AsyncSession, tenant_id: uuid.UUID, statement: Select[tuple[Customer]], filter: CustomerFilter
) -> Select[tuple[Customer]]:
    if filter.status is not None or filter.plan is not None:
        current = SubscriptionRepository(session, tenant_id).select_current()
        current = current.where(Subscription.customer_id == Customer.id)
        if filter.status is not None:
            current = current.where(Subscription.status == filter.status)
        if filter.plan is not None:
            current = current.where(Subscription.plan == filter.plan)
        statement = statement.where(current.exists())
    search = (filter.search or "").strip()
    if search:
        # autoescape: '%', '_' and the escape character itself are matched literally.
        statement = statement.where(
            Customer.email.icontains(search, autoescape=True)
            | Customer.name.icontains(search, autoescape=True)
            | Customer.external_id.icontains(search, autoescape=True)
        )
    return statement


async def get_customer(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> Customer | None:
    """None when the tenant has no such customer, whether it is missing or another tenant's."""
    return await CustomerRepository(session, tenant_id).get(customer_id)


async def get_customer_by_external_id(session: AsyncSession, tenant_id: uuid.UUID, external_id: str) -> Customer | None:
    """By the tenant's own id for the customer, or any provider id it carries; None as above."""
    return await CustomerRepository(session, tenant_id).get_by_external_id(external_id)


async def customer_timelines(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    *,
    first: int | None,
    after: str | None,
    with_total: bool = True,
) -> dict[uuid.UUID, Page[CustomerEvent]]:
    """The same page of each customer's timeline, newest first, in one statement."""
    events = CustomerEventRepository(session, tenant_id)
    statements = {customer_id: events.select_timeline(customer_id) for customer_id in customer_ids}
    return await keyset_pages(
        session, statements, CustomerEvent, first=first, after=after, with_total=with_total, order=NEWEST_EVENT_FIRST
    )
