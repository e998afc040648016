"""Applying canonical events: customers, timeline, profiles and subscriptions.

`apply_events` is idempotent and independent of arrival order. An event is new when its
timeline row (unique per tenant, source and dedupe key) is inserted; a replayed one inserts
nothing and changes nothing else. State is folded by event time (see `subscription_state` and
`profiles`), so any order of the same events, duplicates included, ends in the same state.

Concurrent batches may touch the same customers and subscriptions. Every insert goes in the
order of its unique key and every lock in id order, so on PostgreSQL they wait for each other
instead of deadlocking; SQLite runs one writer at a time anyway.

A batch costs a fixed number of statements, whatever its size: one look-up of its provider ids
(and a few more when some are new), one bulk insert into the timeline, and, when its events
carry them, one locking read of the customers and one of the subscriptions, with bulk writes,
one read (and a write when one moved) of the subscribers' churn status (`customers/churn.py`),
then the new events' daily aggregates (features for risk, triggers for cases)
(`customers/activity.py`). Only late events cost more: their state is refolded from the timeline.
It never commits: the caller's unit of work does.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.activity import record_aggregates
from churnsaver.backend.customers.churn import settle_churn
from churnsaver.backend.customers.events import BILLING_TYPES, CanonicalEvent
from churnsaver.backend.customers.identities import ref_key, resolve_customers
from churnsaver.backend.customers.profiles import apply_profiles
from churnsaver.backend.customers.subscription_state import apply_subscription_events
from churnsaver.backend.customers.timeline import History, event_row, insert_rows, order_key, stored_key

MAX_BIGINT = 2**63 - 1
# Column widths: an event that does not fit is refused alone instead of failing its whole batch.
LIMITS = {"type": 100, "source": 16, "provider": 16, "id": 255, "status": 32, "plan": 255}


@dataclass(frozen=True, slots=True)
class ApplyResult:
    received: int
    applied: int  # new: their first time on the timeline
    duplicates: int  # already applied, or repeated within the batch
    customers_created: int
    subscriptions_touched: int
    # Customers with new events: their risk scores are now stale (risk/tasks.py).
    changed_customers: frozenset[uuid.UUID] = frozenset()
    # Customers with new billing events (not usage, not identify): their recovery cases may move.
    billing_customers: frozenset[uuid.UUID] = frozenset()


def combined(results: list[ApplyResult]) -> ApplyResult:
    """One result for batches applied one after another in a transaction."""
    if len(results) == 1:
        return results[0]
    return ApplyResult(
        received=sum(result.received for result in results),
        applied=sum(result.applied for result in results),
        duplicates=sum(result.duplicates for result in results),
        customers_created=sum(result.customers_created for result in results),
        subscriptions_touched=sum(result.subscriptions_touched for result in results),
        changed_customers=frozenset().union(*(result.changed_customers for result in results)),
        billing_customers=frozenset().union(*(result.billing_customers for result in results)),
    )


def check_event(event: CanonicalEvent) -> None:
    """ValueError when `event` cannot be stored; normalizers' output is checked before applying."""
    _check_text(event.type, "type", LIMITS["type"])
    _check_text(event.source, "source", LIMITS["source"])
    _check_text(event.dedupe_key, "dedupe key", None)
    _check_text(event.customer.provider, "customer provider", LIMITS["provider"])
    _check_text(event.customer.provider_id, "customer id", LIMITS["id"])
    if not isinstance(event.occurred_at, datetime) or event.occurred_at.tzinfo is None:
        raise ValueError("the event time must be a timezone-aware datetime")
    state = event.subscription
    if state is None:
        return
    _check_text(state.external_id, "subscription id", LIMITS["id"])
    for value, label in ((state.status, "status"), (state.plan, "plan")):
        if value is not None:
            _check_text(value, f"subscription {label}", LIMITS[label])
    if state.currency is not None and len(state.currency) != 3:
        raise ValueError(f"currency {state.currency!r} is not an ISO 4217 code")
    if state.mrr is not None and not -MAX_BIGINT <= state.mrr <= MAX_BIGINT:
        raise ValueError("mrr is out of range")


def _check_text(value: str, label: str, max_length: int | None) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"the {label} must be a non-empty string")
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"the {label} is longer than {max_length} characters")
    if "\x00" in value:
        raise ValueError(f"the {label} contains a NUL character")


async def apply_events(session: AsyncSession, tenant_id: uuid.UUID, events: list[CanonicalEvent]) -> ApplyResult:
    """Apply `events` (checked with `check_event`) for `tenant_id`, in the caller's transaction."""
    unique: dict[tuple[str, str], CanonicalEvent] = {}
    for event in events:
        unique.setdefault((event.source, stored_key(event.dedupe_key)), event)
    if not unique:
        return ApplyResult(len(events), 0, len(events), 0, 0)
    resolution = await resolve_customers(session, tenant_id, list(unique.values()))
    now = utcnow()
    rows = [event_row(resolution.customer_ids[ref_key(event.customer)], event, now) for event in unique.values()]
    inserted = await insert_rows(session, tenant_id, rows)
    new = sorted((event for key, event in unique.items() if key in inserted), key=order_key)
    history = History(session, tenant_id)
    await apply_profiles(session, tenant_id, new, resolution.customer_ids, history)
    touched = await apply_subscription_events(session, tenant_id, new, resolution.customer_ids, history)
    subscribers = {resolution.customer_ids[ref_key(event.customer)] for event in new if event.subscription}
    await settle_churn(session, tenant_id, subscribers)
    # After the subscriptions: their locks keep concurrent batches off the same days' state.
    await record_aggregates(session, tenant_id, new, resolution.customer_ids)
    return ApplyResult(
        received=len(events),
        applied=len(new),
        duplicates=len(events) - len(new),
        customers_created=resolution.created,
        subscriptions_touched=touched,
        changed_customers=frozenset(resolution.customer_ids[ref_key(event.customer)] for event in new),
        billing_customers=frozenset(
            resolution.customer_ids[ref_key(event.customer)] for event in new if event.type in BILLING_TYPES
        ),
    )
