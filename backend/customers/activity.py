"""The per-customer daily aggregates features are computed from, kept as events are applied.

Ingestion calls `record_aggregates` with the events that are new (their timeline row was just
inserted), so a replayed event never counts twice. `rebuild_aggregates` recomputes both tables
from the timeline (for data ingested before they existed); both give the same rows for the same
set of events, whatever order and batches they came in.

- Activity: one count per (customer, name, UTC day). Every event counts under its type (a usage
  event's own name, a billing event's canonical type); a payment failure also counts under the
  name of its decline class (`decline_name`). Rows that ingestion derives on the timeline
  (cancel_scheduled from a flag that turned, ...) are not counted: a later refold may move or
  drop them, and the daily state already says what they say.
- State: per (customer, UTC day), each subscription field as the newest event of that day that
  says it. A batch whose events are all newer than the stored day folds onto it; a late event
  (not newer than the day's `state_at`) refolds that day from the timeline, so arrival order never
  shows. Days are per customer, so a customer's several subscriptions share them.

A batch costs one activity upsert and, when it carries subscription state, one read of the days
it touches and one upsert (plus one timeline read when some of its events are late). Rows are
written in key order so concurrent batches on PostgreSQL wait for each other instead of
deadlocking.
"""

import uuid
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import insert_for
from churnsaver.backend.customers.declines import classify_decline
from churnsaver.backend.customers.events import CanonicalEvent, DeclineClass, EventType
from churnsaver.backend.customers.identities import RefKey, ref_key
from churnsaver.backend.customers.models import CustomerDailyActivity, CustomerDailyState, CustomerEvent
from churnsaver.backend.customers.repository import (
    CustomerDailyActivityRepository,
    CustomerDailyStateRepository,
    CustomerEventRepository,
)
from churnsaver.backend.customers.timeline import STATE_KEY, OrderKey, order_key, subscription_said

ACTIVITY = CustomerDailyActivity.__table__
STATE = CustomerDailyState.__table__
STATE_FIELDS = ("status", "plan", "mrr", "currency", "cancel_at_period_end")
DECLINE_PREFIX = "payment_failed:"
REBUILD_CUSTOMERS = 1_000

ActivityKey = tuple[uuid.UUID, str, date]
DayKey = tuple[uuid.UUID, date]


def decline_name(decline_class: str) -> str:
    """The activity name payment failures of `decline_class` ("hard"/"soft") count under."""
    return DECLINE_PREFIX + decline_class


DECLINE_CLASSES = frozenset(DeclineClass)
DECLINE_NAMES = frozenset(decline_name(value) for value in DeclineClass)
# Discounts a customer received: a track event the tenant (or incentive redemption) sends.
DISCOUNT_NAMES = frozenset({"discount_applied"})
# Names that are not product usage: billing types, decline classes, discounts.
NON_USAGE_NAMES = frozenset(EventType) | DECLINE_NAMES | DISCOUNT_NAMES


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def activity_names(event_type: str, properties: Mapping[str, Any]) -> list[str]:
    """The names an event counts under: its type, and a payment failure's decline class too."""
    if event_type != EventType.payment_failed:
        return [event_type]
    declared = properties.get("decline_class")
    decline_class = declared if declared in DECLINE_CLASSES else classify_decline(properties.get("decline_code"))
    return [event_type, decline_name(decline_class)]


@dataclass(slots=True)
class DayState:
    """One customer-day's state: per field, the (order, value) of the newest event saying it; the
    orders of the day's oldest and newest events."""

    oldest: OrderKey
    newest: OrderKey
    fields: dict[str, tuple[OrderKey, Any]] = field(default_factory=dict)

    def merge(self, said: Mapping[str, Any], order: OrderKey) -> None:
        for name in STATE_FIELDS:
            if name in said and (name not in self.fields or self.fields[name][0] < order):
                self.fields[name] = (order, said[name])
        self.oldest = min(self.oldest, order)
        self.newest = max(self.newest, order)

    def values(self) -> dict[str, Any]:
        return {name: self.fields[name][1] if name in self.fields else None for name in STATE_FIELDS}


def _merge_day(days: dict[DayKey, DayState], key: DayKey, said: Mapping[str, Any], order: OrderKey) -> None:
    """Fold what an event `said` into its customer-day's state, begun by the day's first event."""
    state = days.get(key)
    if state is None:
        state = days[key] = DayState(oldest=order, newest=order)
    state.merge(said, order)


async def record_aggregates(
    session: AsyncSession, tenant_id: uuid.UUID, events: list[CanonicalEvent], customer_ids: Mapping[RefKey, uuid.UUID]
) -> None:
    """Count the NEW `events` (just inserted on the timeline) into the daily tables."""
    counts: Counter[ActivityKey] = Counter()
    days: dict[DayKey, DayState] = {}
    for event in events:
        customer_id = customer_ids[ref_key(event.customer)]
        day = utc_day(event.occurred_at)
        for name in activity_names(event.type, event.properties):
            counts[(customer_id, name, day)] += 1
        if event.subscription is not None:
            said = subscription_said(event.subscription, event.customer.provider)
            _merge_day(days, (customer_id, day), said, order_key(event))
    await _add_activity(session, tenant_id, counts)
    if days:
        await _fold_days(session, tenant_id, days)


async def _add_activity(session: AsyncSession, tenant_id: uuid.UUID, counts: Mapping[ActivityKey, int]) -> None:
    if not counts:
        return
    statement = insert_for(session)(ACTIVITY)
    statement = statement.on_conflict_do_update(
        index_elements=[ACTIVITY.c.tenant_id, ACTIVITY.c.customer_id, ACTIVITY.c.name, ACTIVITY.c.day],
        set_={"count": ACTIVITY.c["count"] + statement.excluded["count"]},
    )
    rows = [
        {"tenant_id": tenant_id, "customer_id": customer_id, "name": name, "day": day, "count": count}
        for (customer_id, name, day), count in sorted(counts.items(), key=lambda item: _activity_order(item[0]))
    ]
    await (await session.connection()).execute(statement, rows)


def _activity_order(key: ActivityKey) -> tuple[str, str, date]:
    """The order every batch writes its rows in, so concurrent batches lock them in one order."""
    return (str(key[0]), key[1], key[2])


async def _fold_days(session: AsyncSession, tenant_id: uuid.UUID, days: dict[DayKey, DayState]) -> None:
    """Fold the batch's states onto the stored days; days with late events are refolded."""
    stored = await _stored_days(session, tenant_id, list(days))
    # Not newer than the stored day's newest event: it may fall between events already folded.
    late = {key for key, state in days.items() if key in stored and state.oldest[0] <= stored[key]["state_at"]}
    rows: dict[DayKey, dict[str, Any]] = {}
    for key, state in days.items():
        if key in late:
            continue
        values = state.values()
        if key in stored:
            values = {name: stored[key][name] if values[name] is None else values[name] for name in STATE_FIELDS}
        rows[key] = _state_row(tenant_id, key, values, state.newest[0])
    if late:
        for key, state in (await _timeline_days(session, tenant_id, late)).items():
            rows[key] = _state_row(tenant_id, key, state.values(), state.newest[0])
    await _write_days(session, rows)


async def _stored_days(session: AsyncSession, tenant_id: uuid.UUID, keys: list[DayKey]) -> dict[DayKey, dict[str, Any]]:
    statement = CustomerDailyStateRepository(session, tenant_id).select_readable(STATE)
    statement = statement.where(tuple_(STATE.c.customer_id, STATE.c.day).in_(sorted(keys, key=_day_order)))
    return {(row.customer_id, row.day): row._asdict() for row in await session.execute(statement)}


async def _timeline_days(
    session: AsyncSession, tenant_id: uuid.UUID, keys: Collection[DayKey]
) -> dict[DayKey, DayState]:
    """The given customer-days folded from every timeline event of theirs that carries state."""
    first = min(day for _, day in keys)
    last = max(day for _, day in keys)
    statement = _timeline_rows(session, tenant_id).where(
        CustomerEvent.customer_id.in_({customer_id for customer_id, _ in keys}),
        CustomerEvent.occurred_at >= _day_start(first),
        CustomerEvent.occurred_at < _day_start(last + timedelta(days=1)),
    )
    wanted = set(keys)
    days: dict[DayKey, DayState] = {}
    for row in await session.execute(statement):
        said = _said(row.properties)
        key = (row.customer_id, utc_day(row.occurred_at))
        if said is not None and key in wanted:
            _merge_day(days, key, said, (row.occurred_at, row.dedupe_key))
    return days


def _timeline_rows(session: AsyncSession, tenant_id: uuid.UUID) -> Any:
    return CustomerEventRepository(session, tenant_id).select_readable(
        CustomerEvent.customer_id,
        CustomerEvent.type,
        CustomerEvent.occurred_at,
        CustomerEvent.dedupe_key,
        CustomerEvent.properties,
    )


def _said(properties: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What a stored event said about its subscription; None for derived rows and stateless events."""
    state = properties.get(STATE_KEY)
    if not isinstance(state, dict) or "derived_from" in state:
        return None
    return state.get("subscription")


def _is_derived(properties: Mapping[str, Any]) -> bool:
    state = properties.get(STATE_KEY)
    return isinstance(state, dict) and "derived_from" in state


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_order(key: DayKey) -> tuple[str, date]:
    return (str(key[0]), key[1])


def _state_row(tenant_id: uuid.UUID, key: DayKey, values: dict[str, Any], state_at: datetime) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "customer_id": key[0], "day": key[1], **values, "state_at": state_at}


async def _write_days(session: AsyncSession, rows: dict[DayKey, dict[str, Any]]) -> None:
    if not rows:
        return
    statement = insert_for(session)(STATE)
    statement = statement.on_conflict_do_update(
        index_elements=[STATE.c.tenant_id, STATE.c.customer_id, STATE.c.day],
        set_={name: statement.excluded[name] for name in (*STATE_FIELDS, "state_at")},
    )
    ordered = [rows[key] for key in sorted(rows, key=_day_order)]
    await (await session.connection()).execute(statement, ordered)


async def rebuild_aggregates(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, int]:
    """Recompute the tenant's daily tables from its whole timeline; returns (activity, state) rows.

    Customers are folded REBUILD_CUSTOMERS at a time (their rows read, folded and written before
    the next group), so memory stays bounded however long the timeline is."""
    await session.execute(CustomerDailyActivityRepository(session, tenant_id).delete_owned())
    await session.execute(CustomerDailyStateRepository(session, tenant_id).delete_owned())
    owners = CustomerEventRepository(session, tenant_id).select_readable(CustomerEvent.customer_id).distinct()
    customers = sorted((await session.scalars(owners)).all(), key=str)
    activity_rows = state_rows = 0
    for start in range(0, len(customers), REBUILD_CUSTOMERS):
        group = customers[start : start + REBUILD_CUSTOMERS]
        counts: Counter[ActivityKey] = Counter()
        days: dict[DayKey, DayState] = {}
        rows = _timeline_rows(session, tenant_id).where(CustomerEvent.customer_id.in_(group))
        for row in await session.execute(rows):
            if _is_derived(row.properties):
                continue
            day = utc_day(row.occurred_at)
            for name in activity_names(row.type, row.properties):
                counts[(row.customer_id, name, day)] += 1
            if (said := _said(row.properties)) is not None:
                _merge_day(days, (row.customer_id, day), said, (row.occurred_at, row.dedupe_key))
        await _add_activity(session, tenant_id, counts)
        await _write_days(
            session, {key: _state_row(tenant_id, key, day.values(), day.newest[0]) for key, day in days.items()}
        )
        activity_rows += len(counts)
        state_rows += len(days)
    return activity_rows, state_rows
