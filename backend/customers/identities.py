"""Which customer each provider id belongs to, creating customers for ids seen the first time.

A provider id (Whop user, Stripe customer, events-API customerId) leads to one customer through
its CustomerIdentity; one customer may carry several. An id seen the first time joins the
customer whose external id it equals (say, imported from a CSV with that id), else the customer
with the same email (the same person paying through another provider), else a new customer
whose external id it becomes. A whole batch resolves in a handful of queries.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef
from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.customers.repository import CustomerIdentityRepository, CustomerRepository
from churnsaver.backend.customers.timeline import order_key, profile_of

RefKey = tuple[str, str]  # (provider, provider id)


def ref_key(customer: CustomerRef) -> RefKey:
    return (customer.provider, customer.provider_id)


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_ids: dict[RefKey, uuid.UUID]
    created: int


class NewCustomer(TypedDict):
    """The row of a customer created for a provider id seen the first time."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    external_id: str
    email: str | None
    name: str | None
    phone: str | None
    traits: dict[str, object]
    churn_label: bool | None
    churned_at: datetime | None
    created_at: datetime
    updated_at: datetime


async def resolve_customers(session: AsyncSession, tenant_id: uuid.UUID, events: list[CanonicalEvent]) -> Resolution:
    """The customer of every provider id in `events`, creating and attaching what is new."""
    known = await _identities(session, tenant_id, {ref_key(event.customer) for event in events})
    # The newest profile of each id seen the first time: what a customer created now starts with.
    profiles: dict[RefKey, dict[str, str]] = {}
    for event in sorted((event for event in events if ref_key(event.customer) not in known), key=order_key):
        profiles.setdefault(ref_key(event.customer), {}).update(profile_of(event.customer))
    return await _attach_unknown(session, tenant_id, known, profiles)


async def resolve_provider_ids(session: AsyncSession, tenant_id: uuid.UUID, keys: set[RefKey]) -> Resolution:
    """The customer of every provider id in `keys`, as `resolve_customers` finds or creates it
    for events that say nothing of the customer's profile (usage events)."""
    known = await _identities(session, tenant_id, keys)
    return await _attach_unknown(session, tenant_id, known, {key: {} for key in sorted(keys - known.keys())})


async def _attach_unknown(
    session: AsyncSession, tenant_id: uuid.UUID, known: dict[RefKey, uuid.UUID], profiles: dict[RefKey, dict[str, str]]
) -> Resolution:
    """`known`, and a customer for each provider id of `profiles` (seen the first time, with the
    newest profile its events give), found or created."""
    unknown = list(profiles)
    if not unknown:
        return Resolution(known, 0)

    by_external_id = await _customers_by_external_id(session, tenant_id, {pid for _, pid in unknown})
    emails = {_email(profiles[key]) for key in unknown}
    by_email = await _customers_by_email(session, tenant_id, {email for email in emails if email is not None})
    attach: dict[RefKey, uuid.UUID] = {}
    new_customers: dict[uuid.UUID, NewCustomer] = {}
    for key in unknown:
        email = _email(profiles[key])
        customer_id = by_external_id.get(key[1]) or (by_email.get(email) if email else None)
        if customer_id is None:
            customer_id = uuid.uuid4()
            new_customers[customer_id] = _new_customer(tenant_id, customer_id, key[1], profiles[key])
            # Later ids of this batch find this customer as if it had been stored already.
            by_external_id[key[1]] = customer_id
        if email:
            by_email.setdefault(email, customer_id)
        attach[key] = customer_id

    created = await _insert_customers(session, tenant_id, new_customers, attach)
    identities = [
        {"id": uuid.uuid4(), "tenant_id": tenant_id, "customer_id": customer_id, "provider": p, "provider_id": pid}
        for (p, pid), customer_id in sorted(attach.items())
    ]
    connection = await session.connection()
    await connection.execute(insert_for(session)(CustomerIdentity.__table__).on_conflict_do_nothing(), identities)
    # Re-read: an id another transaction attached meanwhile keeps the customer it got there.
    return Resolution({**known, **await _identities(session, tenant_id, unknown)}, created)


async def _insert_customers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    new_customers: dict[uuid.UUID, NewCustomer],
    attach: dict[RefKey, uuid.UUID],
) -> int:
    """Insert the new customers; ids attached to one another transaction created meanwhile (same
    external id) are moved to that one. Returns how many were created here."""
    if not new_customers:
        return 0
    table = Customer.__table__
    statement = insert_for(session)(table).on_conflict_do_nothing().returning(table.c.id)
    rows = sorted(new_customers.values(), key=lambda row: row["external_id"])
    created = set((await (await session.connection()).execute(statement, rows)).scalars())
    raced = {
        customer_id: row["external_id"] for customer_id, row in new_customers.items() if customer_id not in created
    }
    if raced:
        existing = await _customers_by_external_id(session, tenant_id, set(raced.values()))
        for key, customer_id in attach.items():
            if customer_id in raced:
                attach[key] = existing[raced[customer_id]]
    return len(created)


async def _identities(session: AsyncSession, tenant_id: uuid.UUID, keys: Iterable[RefKey]) -> dict[RefKey, uuid.UUID]:
    wanted = set(keys)
    statement = CustomerIdentityRepository(session, tenant_id).select_readable(
        CustomerIdentity.provider, CustomerIdentity.provider_id, CustomerIdentity.customer_id
    )
    statement = statement.where(CustomerIdentity.provider_id.in_([pid for _, pid in wanted]))
    return {(p, pid): cid for p, pid, cid in await session.execute(statement) if (p, pid) in wanted}


async def _customers_by_external_id(
    session: AsyncSession, tenant_id: uuid.UUID, external_ids: set[str]
) -> dict[str, uuid.UUID]:
    statement = CustomerRepository(session, tenant_id).select_readable(Customer.external_id, Customer.id)
    statement = statement.where(Customer.external_id.in_(list(external_ids)))
    return {key: customer_id for key, customer_id in await session.execute(statement)}


async def _customers_by_email(session: AsyncSession, tenant_id: uuid.UUID, emails: set[str]) -> dict[str, uuid.UUID]:
    """The oldest customer for each email (case-insensitive)."""
    if not emails:
        return {}
    email = func.lower(Customer.email)
    statement = (
        CustomerRepository(session, tenant_id)
        .select_readable(email, Customer.id)
        .where(email.in_(list(emails)))
        .order_by(Customer.created_at.desc(), Customer.id.desc())
    )
    # Descending, so the oldest is written last and kept.
    return {key: customer_id for key, customer_id in await session.execute(statement)}


def _email(profile: dict[str, str]) -> str | None:
    return profile["email"].strip().lower() if "email" in profile else None


def _new_customer(
    tenant_id: uuid.UUID, customer_id: uuid.UUID, external_id: str, profile: dict[str, str]
) -> NewCustomer:
    now = utcnow()
    return {
        "id": customer_id,
        "tenant_id": tenant_id,
        "external_id": external_id,
        "email": profile.get("email"),
        "name": profile.get("name"),
        "phone": profile.get("phone"),
        "traits": {},
        "churn_label": None,
        "churned_at": None,
        "created_at": now,
        "updated_at": now,
    }
