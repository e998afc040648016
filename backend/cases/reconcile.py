"""Bring a batch of customers' stored cases in line with what `derivation.py` derives for them.

Inputs are read in bulk, a fixed number of statements per batch of customers (their billing
timeline, daily usage, tier changes, current scores, stored cases and the case events people made),
never per customer. Cases are matched by (kind, trigger key): new ones are inserted, changed ones
updated, and each transition not yet recorded becomes a case event (unique per case and key, so a
retry or a second copy records nothing twice) published after the commit. Openings, joinings and
status changes are also recorded as `case.changed` domain events for the domains above cases.

A stored case no longer derived (a late event showed its trigger stale) is deleted when nobody
touched it, else dismissed with the reason: what people did to a case is never thrown away.

The batch's customers are locked first (PostgreSQL; SQLite has one writer): two reconciliations
of the same customer, an ingest batch's and a tier change's, take turns instead of both opening
the same case.
"""

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from churnsaver.backend.cases.derivation import (
    MANUAL_KEY_PREFIX,
    CustomerInputs,
    DerivedCase,
    ManualAction,
    TierChange,
    TimelineEntry,
    derive_cases,
)
from churnsaver.backend.cases.models import (
    CASE_CHANGED,
    CASE_CHANGED_TYPES,
    CaseEvent,
    CaseEventType,
    CaseStatus,
    RecoveryCase,
)
from churnsaver.backend.cases.publishing import publish_case_event
from churnsaver.backend.cases.repository import CaseEventRepository, CaseRepository
from churnsaver.backend.cases.settings import CaseSettings, load_settings
from churnsaver.backend.core.bulk import is_one_of, update_by_id
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.domain_events import DomainEvent, DomainEventRepository
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.customers.activity import NON_USAGE_NAMES
from churnsaver.backend.customers.events import BILLING_TYPES
from churnsaver.backend.customers.models import Customer, CustomerDailyActivity, CustomerEvent
from churnsaver.backend.customers.repository import (
    CustomerDailyActivityRepository,
    CustomerEventRepository,
    CustomerRepository,
)
from churnsaver.backend.risk.models import TIER_CHANGED, RiskScore
from churnsaver.backend.risk.repository import RiskScoreRepository
from churnsaver.jobs.outbox import notify

BATCH_CUSTOMERS = 500
# A customer not scored yet: the rules' base rate (risk/rules.py BASE_RATE), the cold-start score
# of a customer no rule has anything to say about.
UNSCORED_PROBABILITY = 0.10
STALE_REASON = "its trigger no longer holds: a later event showed it was stale"
# Case events that mean somebody worked the case: such a case is never deleted.
WORKED_TYPES = (
    CaseEventType.note.value,
    CaseEventType.assigned.value,
    CaseEventType.touched.value,
    CaseEventType.offer_shown.value,
    CaseEventType.offer_accepted.value,
)
# The columns the derivation decides; the rest (first touch, assignee) belong to people and campaigns.
DERIVED_COLUMNS = (
    "status",
    "trigger_type",
    "trigger_occurred_at",
    "subscription_id",
    "opened_at",
    "window_ends_at",
    "resolved_at",
    "verified_at",
    "resolution_reason",
    "revenue_at_risk",
    "currency",
    "priority",
    "first_touch_due_at",
    "details",
    "manual_status",
)


@dataclass(slots=True)
class ReconcileReport:
    customers: int = 0
    opened: int = 0
    updated: int = 0
    removed: int = 0
    events: int = 0

    def add(self, other: "ReconcileReport") -> None:
        self.customers += other.customers
        self.opened += other.opened
        self.updated += other.updated
        self.removed += other.removed
        self.events += other.events


async def reconcile_customers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: Iterable[uuid.UUID],
    now: datetime | None = None,
    actor: str = "job:cases.evaluate_customers",
) -> ReconcileReport:
    """Reconcile the cases of `customer_ids` as of `now`, in the caller's transaction; `actor`
    (the job or person that asked) is noted on the case events it records."""
    now = now or utcnow()
    ids = sorted(set(customer_ids), key=str)
    report = ReconcileReport()
    if not ids:
        return report
    settings = await load_settings(session, tenant_id)
    for start in range(0, len(ids), BATCH_CUSTOMERS):
        report.add(
            await _reconcile_batch(session, tenant_id, ids[start : start + BATCH_CUSTOMERS], now, actor, settings)
        )
    return report


@dataclass(slots=True)
class _Stored:
    cases: list[RecoveryCase]
    manual: dict[uuid.UUID, list[ManualAction]]  # per customer
    worked: set[uuid.UUID]  # case ids somebody worked on
    recorded: set[tuple[uuid.UUID, str]]  # (case id, key) of every case event


async def _reconcile_batch(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    now: datetime,
    actor: str,
    settings: CaseSettings,
) -> ReconcileReport:
    customer_ids = await _lock_customers(session, tenant_id, customer_ids)
    inputs = await _load_inputs(session, tenant_id, customer_ids)
    probabilities = await _probabilities(session, tenant_id, customer_ids)
    stored = await _load_stored(session, tenant_id, customer_ids)
    for customer_id, actions in stored.manual.items():
        inputs[customer_id] = CustomerInputs(
            inputs[customer_id].timeline, inputs[customer_id].tier_changes, inputs[customer_id].usage, actions
        )
    by_key = {(case.customer_id, case.kind, case.trigger_key): case for case in stored.cases}
    report = ReconcileReport(customers=len(customer_ids))
    new_rows: list[dict[str, Any]] = []
    changes: list[tuple[RecoveryCase, dict[str, Any]]] = []
    derived_keys: set[tuple[uuid.UUID, str, str]] = set()
    transitions: list[tuple[_CaseRef, DerivedCase]] = []
    for customer_id in customer_ids:
        probability = probabilities.get(customer_id, UNSCORED_PROBABILITY)
        for derived in derive_cases(inputs[customer_id], settings, now):
            key = (customer_id, derived.kind, derived.trigger_key)
            derived_keys.add(key)
            values = _values(derived, probability)
            case = by_key.get(key)
            if case is None:
                row = {"id": ordered_uuid(), "tenant_id": tenant_id, "customer_id": customer_id, **values}
                row |= {"kind": derived.kind, "trigger_key": derived.trigger_key, "created_at": now, "updated_at": now}
                new_rows.append(row)
                transitions.append((_CaseRef.of_row(row), derived))
            else:
                if any(getattr(case, name) != value for name, value in values.items()):
                    changes.append((case, values))
                ref = _CaseRef(tenant_id, case.id, customer_id, case.kind, derived.status)
                transitions.append((ref, derived))
    stale = [case for case in stored.cases if (case.customer_id, case.kind, case.trigger_key) not in derived_keys]
    report.removed = await _retire(session, tenant_id, stale, stored.worked, now)
    await _update(session, tenant_id, changes, now)
    report.updated = len(changes)
    if new_rows:
        await (await session.connection()).execute(insert(RecoveryCase.__table__), new_rows)
    report.opened = len(new_rows)
    report.events = await _record_transitions(session, tenant_id, transitions, stored.recorded, actor)
    return report


async def _lock_customers(session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The customers among `ids` that exist, locked in id order."""
    statement = (
        CustomerRepository(session, tenant_id)
        .select_readable(Customer.id)
        .where(is_one_of(session, Customer.id, ids))
        .order_by(Customer.id)
        # FOR NO KEY UPDATE: ingestion inserting the customer's timeline rows (a key share) never waits.
        .with_for_update(key_share=True)
    )
    return list((await session.execute(statement)).scalars())


async def _load_inputs(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CustomerInputs]:
    timelines: dict[uuid.UUID, list[TimelineEntry]] = defaultdict(list)
    timeline = CustomerEventRepository(session, tenant_id).select_readable(
        CustomerEvent.customer_id,
        CustomerEvent.type,
        CustomerEvent.occurred_at,
        CustomerEvent.source,
        CustomerEvent.dedupe_key,
        CustomerEvent.properties,
    )
    timeline = timeline.where(
        is_one_of(session, CustomerEvent.customer_id, customer_ids), CustomerEvent.type.in_(sorted(BILLING_TYPES))
    )
    for customer_id, *entry in await session.execute(timeline):
        timelines[customer_id].append(TimelineEntry(*entry))

    usage: dict[uuid.UUID, dict[date, int]] = defaultdict(dict)
    activity = CustomerDailyActivityRepository(session, tenant_id).select_readable(
        CustomerDailyActivity.customer_id, CustomerDailyActivity.day, func.sum(CustomerDailyActivity.count)
    )
    activity = activity.where(
        is_one_of(session, CustomerDailyActivity.customer_id, customer_ids),
        CustomerDailyActivity.name.not_in(sorted(NON_USAGE_NAMES)),
    ).group_by(CustomerDailyActivity.customer_id, CustomerDailyActivity.day)
    for customer_id, day, count in await session.execute(activity):
        usage[customer_id][day] = int(count)

    tiers: dict[uuid.UUID, list[TierChange]] = defaultdict(list)
    changes = DomainEventRepository(session, tenant_id).select_readable(
        DomainEvent.id, DomainEvent.subject_id, DomainEvent.occurred_at, DomainEvent.payload
    )
    changes = changes.where(DomainEvent.type == TIER_CHANGED, is_one_of(session, DomainEvent.subject_id, customer_ids))
    for event_id, customer_id, occurred_at, payload in await session.execute(changes):
        tiers[customer_id].append(tier_change(event_id, occurred_at, payload))
    return {
        customer_id: CustomerInputs(timelines[customer_id], tiers[customer_id], usage[customer_id])
        for customer_id in customer_ids
    }


def tier_change(event_id: uuid.UUID, occurred_at: datetime, payload: dict[str, Any]) -> TierChange:
    """A tier event at its score's as-of time (when recorded, if the payload does not say)."""
    as_of = payload.get("as_of")
    at = datetime.fromisoformat(as_of) if isinstance(as_of, str) else occurred_at
    return TierChange(id=str(event_id), occurred_at=at, from_tier=payload.get("from"), to_tier=str(payload.get("to")))


async def _probabilities(session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    statement = RiskScoreRepository(session, tenant_id).select_readable(RiskScore.customer_id, RiskScore.score)
    statement = statement.where(is_one_of(session, RiskScore.customer_id, ids))
    return {customer_id: float(score) for customer_id, score in await session.execute(statement)}


async def _load_stored(session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID]) -> _Stored:
    cases = await CaseRepository(session, tenant_id).of_customers(customer_ids)
    stored = _Stored(cases=cases, manual=defaultdict(list), worked=set(), recorded=set())
    if not cases:
        return stored
    by_id = {case.id: case for case in cases}
    events = CaseEventRepository(session, tenant_id).select_readable(
        CaseEvent.case_id, CaseEvent.type, CaseEvent.key, CaseEvent.occurred_at, CaseEvent.data
    )
    events = events.where(is_one_of(session, CaseEvent.case_id, list(by_id))).order_by(
        CaseEvent.occurred_at, CaseEvent.id
    )
    for case_id, event_type, key, occurred_at, data in await session.execute(events):
        stored.recorded.add((case_id, key))
        case = by_id[case_id]
        if event_type in WORKED_TYPES:
            stored.worked.add(case_id)
        elif key.startswith(MANUAL_KEY_PREFIX):
            stored.worked.add(case_id)
            action = ManualAction(case.kind, case.trigger_key, data.get("manual", ""), occurred_at, data.get("reason"))
            stored.manual[case.customer_id].append(action)
    return stored


def _values(derived: DerivedCase, probability: float) -> dict[str, Any]:
    return {
        "status": derived.status,
        "trigger_type": derived.trigger_type,
        "trigger_occurred_at": derived.trigger_occurred_at,
        "subscription_id": derived.subscription_id,
        "opened_at": derived.opened_at,
        "window_ends_at": derived.window_ends_at,
        "resolved_at": derived.resolved_at,
        "verified_at": derived.verified_at,
        "resolution_reason": derived.resolution_reason,
        "revenue_at_risk": derived.revenue_at_risk,
        "currency": derived.currency,
        "priority": round(probability * derived.revenue_at_risk, 6),
        "first_touch_due_at": derived.first_touch_due_at,
        "details": derived.details,
        "manual_status": derived.manual_status,
    }


async def _retire(
    session: AsyncSession, tenant_id: uuid.UUID, stale: list[RecoveryCase], worked: set[uuid.UUID], now: datetime
) -> int:
    """Delete the stale cases nobody worked on; dismiss the others (once), with the reason."""
    untouched = [case.id for case in stale if case.id not in worked and not _worked(case)]
    if untouched:
        await session.execute(CaseRepository(session, tenant_id).delete_owned().where(RecoveryCase.id.in_(untouched)))
    kept = [case for case in stale if case.id not in untouched and case.resolution_reason != STALE_REASON]
    for case in kept:
        case.status, case.resolved_at, case.resolution_reason = CaseStatus.dismissed.value, now, STALE_REASON
        case.manual_status, case.updated_at = CaseStatus.dismissed.value, now
    if kept:
        await session.flush()
    return len(untouched)


def _worked(case: RecoveryCase) -> bool:
    return case.first_touch_at is not None or case.assignee is not None


async def _update(
    session: AsyncSession, tenant_id: uuid.UUID, changes: list[tuple[RecoveryCase, dict[str, Any]]], now: datetime
) -> None:
    """Closing updates before opening ones: at most one case per customer and kind is ever open."""
    closing = [(case, values) for case, values in changes if values["status"] != CaseStatus.open.value]
    opening = [(case, values) for case, values in changes if values["status"] == CaseStatus.open.value]
    for group in (closing, opening):
        rows = [{"id": case.id, **values, "updated_at": now} for case, values in group]
        await update_by_id(session, RecoveryCase, tenant_id, rows)
        for case, values in group:
            # The loaded objects say what was written, without the ORM writing it again.
            for name, value in {**values, "updated_at": now}.items():
                set_committed_value(case, name, value)


@dataclass(frozen=True, slots=True)
class _CaseRef:
    """What a case event's message says about its case."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    status: str

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> "_CaseRef":
        return cls(row["tenant_id"], row["id"], row["customer_id"], row["kind"], row["status"])


async def _record_transitions(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    transitions: list[tuple["_CaseRef", DerivedCase]],
    recorded: Collection[tuple[uuid.UUID, str]],
    actor: str,
) -> int:
    """Insert the transitions not recorded yet (a concurrent copy's are skipped) and publish them."""
    rows: list[dict[str, Any]] = []
    cases: dict[uuid.UUID, _CaseRef] = {}
    for ref, derived in transitions:
        cases[ref.id] = ref
        for transition in derived.transitions:
            if (ref.id, transition.key) in recorded:
                continue
            rows.append(
                {
                    "id": ordered_uuid(),
                    "tenant_id": tenant_id,
                    "case_id": ref.id,
                    "type": transition.type,
                    "key": transition.key,
                    "occurred_at": transition.occurred_at,
                    "actor": transition.actor,
                    "data": {**transition.data, "evaluated_by": actor},
                    "created_at": utcnow(),
                }
            )
    if not rows:
        return 0
    table = CaseEvent.__table__
    statement = insert_for(session)(table).on_conflict_do_nothing().returning(table.c.id)
    inserted = {row_id for (row_id,) in await (await session.connection()).execute(statement, rows)}
    news = [row for row in rows if row["id"] in inserted]
    for row in news:
        publish_case_event(session, cases[row["case_id"]], _EventRef(**row))
    await _record_case_changes(session, tenant_id, [(cases[row["case_id"]], row) for row in news])
    return len(inserted)


async def _record_case_changes(
    session: AsyncSession, tenant_id: uuid.UUID, news: list[tuple["_CaseRef", dict[str, Any]]]
) -> None:
    """A `case.changed` domain event per recorded opening, joining or status change, and its
    consumers notified: the news the domains above cases read."""
    rows = [
        {
            "id": ordered_uuid(),
            "tenant_id": tenant_id,
            "type": CASE_CHANGED,
            "subject_id": ref.id,
            "payload": {
                "case_event": row["type"],
                "kind": ref.kind,
                "customer_id": str(ref.customer_id),
                "status": ref.status,
            },
            "occurred_at": utcnow(),
        }
        for ref, row in news
        if row["type"] in CASE_CHANGED_TYPES
    ]
    if rows:
        await (await session.connection()).execute(insert(DomainEvent.__table__), rows)
        notify(session, tenant_id, CASE_CHANGED)


@dataclass(frozen=True, slots=True)
class _EventRef:
    id: uuid.UUID
    tenant_id: uuid.UUID
    case_id: uuid.UUID
    type: str
    key: str
    occurred_at: datetime
    actor: str
    data: dict[str, Any]
    created_at: datetime
