"""Subscription state by event time, and the transitions it goes through.

An event says some fields of its subscription (None: "this event does not say"); the state is
every event's fields folded in event-time order, the newest saying a field winning it. A batch
whose events are all newer than a subscription's high-water mark (state_at, state_key) folds
onto the stored state. Otherwise, since a late event may fall between events already applied,
the state is refolded from the subscription's whole history on the timeline. Either way the
result is the fold of the same set of events, so it never depends on arrival order.

Transitions between consecutive states become derived timeline rows: cancel_scheduled and
cancel_unscheduled when the cancel-at-period-end flag turns, plan_changed (with the MRR delta,
an upgrade or a downgrade) when the plan does. A refold recomputes them all, so an event that
arrives late in between moves them to where they belong.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.bulk import update_by_id
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.customers.events import CanonicalEvent, EventType
from churnsaver.backend.customers.identities import RefKey, ref_key
from churnsaver.backend.customers.models import CustomerEvent, Subscription
from churnsaver.backend.customers.repository import CustomerEventRepository, SubscriptionRepository
from churnsaver.backend.customers.timeline import (
    History,
    HistoryRow,
    OrderKey,
    derived_row,
    insert_rows,
    order_key,
    subscription_said,
)

UNKNOWN_STATUS = "unknown"  # a subscription referenced before any event said its status
# A subscription that has ended stops its scheduled cancellation without unscheduling it.
ENDED_STATUSES = frozenset({"canceled", "expired", "completed", "incomplete_expired"})

SubscriptionKey = tuple[str, str]  # (provider, external id)


@dataclass(frozen=True, slots=True)
class Fold:
    """A subscription's state as the events folded so far say it."""

    status: str | None = None
    plan: str | None = None
    mrr: int | None = None
    currency: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None
    ended_at: datetime | None = None  # when it reached an ended status; no event says it

    @classmethod
    def of(cls, subscription: Row[Any]) -> "Fold":
        return cls(**{field.name: getattr(subscription, field.name) for field in fields(cls)})

    def then(self, said: dict[str, Any]) -> "Fold":
        changes = {field.name: said[field.name] for field in fields(self) if field.name in said}
        if "current_period_end" in changes:
            changes["current_period_end"] = datetime.fromisoformat(changes["current_period_end"])
        return replace(self, **changes)

    def columns(self, last: OrderKey) -> dict[str, Any]:
        """The Subscription columns for this state, reached by the event ordered at `last`."""
        return {
            "status": self.status or UNKNOWN_STATUS,
            "plan": self.plan,
            "mrr": self.mrr,
            "currency": self.currency,
            "current_period_end": self.current_period_end,
            "cancel_at_period_end": bool(self.cancel_at_period_end),
            "ended_at": self.ended_at,
            "state_at": last[0],
            "state_key": last[1],
        }


@dataclass(frozen=True, slots=True)
class Transition:
    type: str
    properties: dict[str, Any]


def transitions(before: Fold, after: Fold, said: dict[str, Any]) -> list[Transition]:
    found = []
    ended = after.status in ENDED_STATUSES
    if after.cancel_at_period_end and not before.cancel_at_period_end and not ended:
        period_end = after.current_period_end.isoformat() if after.current_period_end else None
        found.append(Transition(EventType.cancel_scheduled, {"current_period_end": period_end}))
    if before.cancel_at_period_end and not after.cancel_at_period_end and not ended:
        found.append(Transition(EventType.cancel_unscheduled, {}))
    if before.plan and after.plan and before.plan != after.plan:
        found.append(Transition(EventType.plan_changed, _plan_change(before, after, said)))
    return found


def _plan_change(before: Fold, after: Fold, said: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = {"from_plan": before.plan, "to_plan": after.plan}
    # A delta only when this event priced the new plan: otherwise the MRR is still the old plan's.
    if "mrr" in said and after.mrr is not None and before.mrr is not None and before.currency == after.currency:
        delta = after.mrr - before.mrr
        direction = "upgrade" if delta > 0 else "downgrade" if delta < 0 else "lateral"
        change |= {"mrr_delta": delta, "currency": after.currency, "direction": direction}
    return change


def _ending_timed(before: Fold, after: Fold, order: OrderKey) -> Fold:
    """`after` with `ended_at` the time of the event that ended the subscription: kept while it
    stays ended, cleared when it runs again (resumed, reactivated)."""
    if after.status not in ENDED_STATUSES:
        return replace(after, ended_at=None) if after.ended_at is not None else after
    if before.status in ENDED_STATUSES and before.ended_at is not None:
        return after
    return replace(after, ended_at=order[0])


@dataclass(slots=True)
class Replay:
    """Folding a run of events (new ones, or a whole history) from a starting state."""

    fold: Fold
    last: OrderKey | None = None

    def step(self, said: dict[str, Any], order: OrderKey, event_type: str) -> list[Transition]:
        after = _ending_timed(self.fold, self.fold.then(said), order)
        # A source that reports the transition itself (the events API's plan_changed) needs no copy.
        found = [t for t in transitions(self.fold, after, said) if t.type != event_type]
        self.fold, self.last = after, order
        return found

    def columns(self) -> dict[str, Any]:
        """The Subscription columns of the state reached: `Fold.columns` at the last event folded."""
        if self.last is None:
            raise ValueError("a subscription's state is reached by at least one event")
        return self.fold.columns(self.last)


async def apply_subscription_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    events: list[CanonicalEvent],
    customer_ids: dict[RefKey, uuid.UUID],
    history: History,
) -> int:
    """Move the subscriptions `events` (new, in event-time order) speak of; returns how many."""
    by_subscription: dict[SubscriptionKey, list[CanonicalEvent]] = defaultdict(list)
    for event in events:
        if event.subscription is not None:
            by_subscription[(event.customer.provider, event.subscription.external_id)].append(event)
    if not by_subscription:
        return 0
    stored = await _lock(session, tenant_id, list(by_subscription))
    derived: dict[SubscriptionKey, list[dict[str, Any]]] = defaultdict(list)
    updates: list[dict[str, Any]] = []
    fresh: dict[SubscriptionKey, dict[str, Any]] = {}
    refold: list[Row[Any]] = []
    for key, run in by_subscription.items():
        subscription = stored.get(key)
        if subscription is not None and order_key(run[0]) <= (subscription.state_at, subscription.state_key):
            refold.append(subscription)
            continue
        replay = Replay(Fold() if subscription is None else Fold.of(subscription))
        for event in run:
            assert event.subscription is not None  # grouped by its subscription above
            said = subscription_said(event.subscription, event.customer.provider)
            customer_id = customer_ids[ref_key(event.customer)]
            for found in replay.step(said, order_key(event), event.type):
                derived[key].append(_derived(customer_id, event, found, key))
        if subscription is None:
            customer_id = customer_ids[ref_key(run[0].customer)]
            fresh[key] = _new_row(tenant_id, customer_id, key, replay)
        else:
            updates.append({"id": subscription.id, **replay.columns(), "updated_at": utcnow()})
    raced = await _create(session, tenant_id, fresh)
    for subscription in raced:
        # Created meanwhile by another transaction: refolded below, derived rows included.
        del derived[(subscription.provider, subscription.external_id)]
    await update_by_id(session, Subscription, tenant_id, updates)
    await insert_rows(session, tenant_id, [row for rows in derived.values() for row in rows])
    await _refold(session, tenant_id, refold + raced, by_subscription, customer_ids, history)
    return len(by_subscription)


async def _lock(
    session: AsyncSession, tenant_id: uuid.UUID, keys: list[SubscriptionKey]
) -> dict[SubscriptionKey, Row[Any]]:
    """The stored subscriptions among `keys`, locked (on PostgreSQL) in id order against deadlocks."""
    statement = (
        SubscriptionRepository(session, tenant_id)
        .select_readable(Subscription.__table__)
        .where(Subscription.external_id.in_([external for _, external in keys]))
        .order_by(Subscription.id)
        .with_for_update(key_share=True)
    )
    wanted = set(keys)
    return {key: row for row in await session.execute(statement) if (key := (row.provider, row.external_id)) in wanted}


async def _create(
    session: AsyncSession, tenant_id: uuid.UUID, fresh: dict[SubscriptionKey, dict[str, Any]]
) -> list[Row[Any]]:
    """Insert new subscriptions; those another transaction created meanwhile come back to be refolded."""
    if not fresh:
        return []
    table = Subscription.__table__
    statement = insert_for(session)(table).on_conflict_do_nothing().returning(table.c.provider, table.c.external_id)
    rows = [fresh[key] for key in sorted(fresh)]
    created = {tuple(row) for row in await (await session.connection()).execute(statement, rows)}
    raced = [key for key in fresh if key not in created]
    return list((await _lock(session, tenant_id, raced)).values()) if raced else []


async def _refold(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    subscriptions: list[Row[Any]],
    by_subscription: dict[SubscriptionKey, list[CanonicalEvent]],
    customer_ids: dict[RefKey, uuid.UUID],
    history: History,
) -> None:
    """Rebuild each subscription's state and derived rows from its whole history."""
    if not subscriptions:
        return
    owners = {subscription.customer_id for subscription in subscriptions}
    for subscription in subscriptions:
        key = (subscription.provider, subscription.external_id)
        owners.update(customer_ids[ref_key(event.customer)] for event in by_subscription[key])
    histories: dict[SubscriptionKey, list[HistoryRow]] = defaultdict(list)
    for row in await history.rows(owners):
        if said := row.state.get("subscription"):
            histories[(said["provider"], said["id"])].append(row)
    have: dict[str, HistoryRow] = {}
    wanted: dict[str, dict[str, Any]] = {}
    updates = []
    for subscription in subscriptions:
        key = (subscription.provider, subscription.external_id)
        replay = Replay(Fold())
        for row in histories[key]:
            if "derived_from" in row.state:
                have[row.dedupe_key] = row
                continue
            for found in replay.step(row.state["subscription"], row.order, row.type):
                new = _derived(row.customer_id, row, found, key)
                wanted[new["dedupe_key"]] = new
        updates.append({"id": subscription.id, **replay.columns(), "updated_at": utcnow()})
    await update_by_id(session, Subscription, tenant_id, updates)
    await _reconcile(session, tenant_id, have, wanted)


async def _reconcile(
    session: AsyncSession, tenant_id: uuid.UUID, have: dict[str, HistoryRow], wanted: dict[str, dict[str, Any]]
) -> None:
    """Make the stored derived rows those `wanted`: drop the stale, add the missing, fix the changed."""
    stale = [row.id for key, row in have.items() if key not in wanted]
    if stale:
        stale_rows = CustomerEventRepository(session, tenant_id).delete_owned().where(CustomerEvent.id.in_(stale))
        await session.execute(stale_rows)
    await insert_rows(session, tenant_id, [row for key, row in wanted.items() if key not in have])
    changed = [
        {"id": have[key].id, "properties": row["properties"]}
        for key, row in wanted.items()
        if key in have and have[key].properties != row["properties"]
    ]
    await update_by_id(session, CustomerEvent, tenant_id, changed)


def _derived(
    customer_id: uuid.UUID,
    origin: HistoryRow | CanonicalEvent,
    found: Transition,
    key: SubscriptionKey,
) -> dict[str, Any]:
    subscription = {"provider": key[0], "id": key[1]}
    return derived_row(customer_id, origin, found.type, found.properties, subscription)


def _new_row(tenant_id: uuid.UUID, customer_id: uuid.UUID, key: SubscriptionKey, replay: Replay) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "provider": key[0],
        "external_id": key[1],
        **replay.columns(),
        "created_at": now,
        "updated_at": now,
    }
