"""A customer's churn status, as its subscriptions say it.

A customer whose subscriptions have all ended is `churned`, `churned_at` being the time of the
event that ended the last of them; it is `active` again, with `churned_at` cleared, as soon as
one runs again (resumed, reactivated by a payment, or a new subscription). A customer without
subscriptions keeps what a labelled import said (`upsert.py`).
"""

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from churnsaver.backend.core.bulk import is_one_of, update_by_id
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.models import Customer, CustomerStatus, Subscription
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.customers.subscription_state import ENDED_STATUSES


async def settle_churn(session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Collection[uuid.UUID]) -> int:
    """Bring the status of `customer_ids` in line with their subscriptions; how many changed.

    One read (the customers with what their subscriptions say) and one bulk write of the few whose
    status moved, in id order like every other write of the apply path."""
    if not customer_ids:
        return 0
    customers = CustomerRepository(session, tenant_id)
    subscription = aliased(Subscription)
    owned = (customers.owned(subscription), subscription.customer_id == Customer.id)
    running = select(subscription.id).where(*owned, subscription.status.not_in(ENDED_STATUSES)).exists()
    ended = select(subscription.id).where(*owned, subscription.status.in_(ENDED_STATUSES)).exists()
    last_end = select(func.max(subscription.ended_at)).where(*owned).scalar_subquery()
    statement = customers.select_readable(Customer.id, Customer.status, Customer.churned_at, running, ended, last_end)
    statement = statement.where(is_one_of(session, Customer.id, list(customer_ids))).order_by(Customer.id)
    changes: list[dict[str, Any]] = []
    now = utcnow()
    for customer_id, status, churned_at, is_running, has_ended, ended_at in await session.execute(statement):
        if is_running:
            wanted = (CustomerStatus.active.value, None)
        elif has_ended:
            wanted = (CustomerStatus.churned.value, ended_at)
        else:
            continue
        if (status, churned_at) != wanted:
            changes.append({"id": customer_id, "status": wanted[0], "churned_at": wanted[1], "updated_at": now})
    await update_by_id(session, Customer, tenant_id, changes)
    return len(changes)
