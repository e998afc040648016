"""Customer profiles (email, name, phone) and traits, kept by event time like subscriptions.

A field or trait takes the value of the newest event that gives it. Most events repeat what is
already stored, and then there is nothing to do. When one disagrees, it may be newer or older
than the event behind the stored value, so the customer's profile and traits are refolded from
their history on the timeline: the newest event saying each field wins, whatever arrived last.
Traits no event ever gave (an import's columns) are left as they are.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.bulk import update_by_id
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.events import CanonicalEvent
from churnsaver.backend.customers.identities import RefKey, ref_key
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.customers.timeline import History, HistoryRow, profile_of

MISSING = object()
PROFILE_FIELDS = ("email", "name", "phone")


async def apply_profiles(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    events: list[CanonicalEvent],
    customer_ids: dict[RefKey, uuid.UUID],
    history: History,
) -> None:
    """Bring the profiles and traits of the customers `events` (new ones) describe up to date."""
    giving = [event for event in events if event.traits or profile_of(event.customer)]
    if not giving:
        return
    customers = await _lock(session, tenant_id, {customer_ids[ref_key(event.customer)] for event in giving})
    disagreeing = set()
    for event in giving:
        customer_id = customer_ids[ref_key(event.customer)]
        if _disagrees(customers[customer_id], event):
            disagreeing.add(customer_id)
    if not disagreeing:
        return
    histories: dict[uuid.UUID, list[HistoryRow]] = defaultdict(list)
    for row in await history.rows(disagreeing):
        histories[row.customer_id].append(row)
    updates = []
    for customer_id in disagreeing:
        customer = customers[customer_id]
        profile, traits = _refold(histories[customer_id])
        # Every row sets the same columns (one executemany): fields no event gave keep their value.
        current = {field: getattr(customer, field) for field in PROFILE_FIELDS}
        updates.append(
            {"id": customer_id, **current, **profile, "traits": {**customer.traits, **traits}, "updated_at": utcnow()}
        )
    await update_by_id(session, Customer, tenant_id, updates)


def _disagrees(customer: Row[Any], event: CanonicalEvent) -> bool:
    profile = profile_of(event.customer)
    if any(getattr(customer, field) != value for field, value in profile.items()):
        return True
    return any(customer.traits.get(name, MISSING) != value for name, value in event.traits.items())


def _refold(rows: Iterable[HistoryRow]) -> tuple[dict[str, str], dict[str, Any]]:
    """The newest value of each profile field and trait in `rows` (in event-time order)."""
    profile: dict[str, str] = {}
    traits: dict[str, Any] = {}
    for row in rows:
        profile.update(row.state.get("profile", {}))
        traits.update(row.state.get("traits", {}))
    return profile, traits


async def _lock(session: AsyncSession, tenant_id: uuid.UUID, ids: set[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """The customers' profiles, locked (on PostgreSQL) in id order, so concurrent batches take turns."""
    statement = (
        CustomerRepository(session, tenant_id)
        .select_readable(Customer.id, Customer.email, Customer.name, Customer.phone, Customer.traits)
        .where(Customer.id.in_(list(ids)))
        .order_by(Customer.id)
        # NO KEY UPDATE: the timeline rows this batch inserted hold KEY SHARE locks on their
        # customers (the foreign key), and a plain FOR UPDATE would deadlock against another batch's.
        .with_for_update(key_share=True)
    )
    return {customer.id: customer for customer in await session.execute(statement)}
