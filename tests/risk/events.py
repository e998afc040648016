"""Hand-built canonical events for the risk tests, applied through the real `apply_events`."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, SubscriptionState
from churnsaver.backend.customers.models import Customer


def usage(customer: str, name: str, at: datetime, key: str) -> CanonicalEvent:
    return CanonicalEvent(
        type=name, occurred_at=at, source="api", dedupe_key=key, customer=CustomerRef("api", customer)
    )


def billing(
    customer: str,
    event_type: str,
    at: datetime,
    key: str,
    subscription: dict[str, Any] | None = None,
    **properties: Any,
) -> CanonicalEvent:
    state = None if subscription is None else SubscriptionState(**{"external_id": f"sub_{customer}", **subscription})
    return CanonicalEvent(
        type=event_type,
        occurred_at=at,
        source="api",
        dedupe_key=key,
        customer=CustomerRef("api", customer),
        subscription=state,
        properties=properties,
    )


def failure(customer: str, at: datetime, key: str, decline_class: str) -> CanonicalEvent:
    return billing(customer, EventType.payment_failed, at, key, decline_code="x", decline_class=decline_class)


def identify(customer: str, at: datetime, key: str, **traits: Any) -> CanonicalEvent:
    return CanonicalEvent(
        type=EventType.identify,
        occurred_at=at,
        source="api",
        dedupe_key=key,
        customer=CustomerRef("api", customer),
        traits=traits,
    )


async def apply(db: Database, tenant_id: uuid.UUID, events: list[CanonicalEvent]) -> None:
    async with db.tenant_unit_of_work(tenant_id) as session:
        await apply_events(session, tenant_id, events)


async def customer_ids(db: Database, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The tenant's customers by external id."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        rows = await session.execute(select(Customer.external_id, Customer.id).where(Customer.tenant_id == tenant_id))
        return dict(rows.all())
