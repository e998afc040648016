"""Customer reads for the API: lists with filters, one customer by id or external id.
Applying events (ingest calls `apply.py`) writes customers."""

import uuid
from dataclasses import dataclass

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.customers.repository import CustomerRepository, SubscriptionRepository
from churnsaver.tenants.auth import AuthSubject


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """Status and plan match the customer's current subscription; `search` is a case-insensitive
    substring of the email, name or external id."""

    status: str | None = None
    plan: str | None = None
    search: str | None = None


def customers_statement(
    session: AsyncSession, subject: AuthSubject, filter: CustomerFilter | None = None
) -> Select[Customer]:
    """The tenant's customers matching `filter`, unordered: other orders and filters build on it."""
    subject.require_read()
    statement = CustomerRepository(session, subject.tenant_id).select_readable()
    return _filtered(session, subject.tenant_id, statement, filter) if filter is not None else statement


def _filtered(
    session: AsyncSession, tenant_id: uuid.UUID, statement: Select[Customer], filter: CustomerFilter
) -> Select[Customer]:
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


async def get_customer(session: AsyncSession, subject: AuthSubject, customer_id: uuid.UUID) -> Customer | None:
    """None when the tenant has no such customer, whether it is missing or another tenant's."""
    subject.require_read()
    return await CustomerRepository(session, subject.tenant_id).get(customer_id)


async def get_customer_by_external_id(session: AsyncSession, subject: AuthSubject, external_id: str) -> Customer | None:
    """By the tenant's own id for the customer, or any provider id it carries; None as above."""
    subject.require_read()
    return await CustomerRepository(session, subject.tenant_id).get_by_external_id(external_id)
