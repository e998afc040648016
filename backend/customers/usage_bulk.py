"""Events that carry no state (usage, payments without a subscription), written in bulk.

Most events of a history say nothing of a subscription, a profile or traits: applying one is its
timeline row and +1 in its daily activity counts, nothing else (`apply.py` would do exactly
that). Here a whole batch of them costs a fixed number of statements, with no per-event Python in
the writing process: the rows are encoded as text ahead (`usage_row`, then `STAGED.encode`, in an
import's parsing worker), staged in a temporary table (core/bulk.py: COPY on PostgreSQL), and then

1. they are inserted into the timeline, each joined to its customer through its provider id (the
   caller has made sure every id has a customer: `resolve_provider_ids`), those whose key is
   there already skipped (ON CONFLICT DO NOTHING: a re-run adds nothing);
2. when some were skipped, the staged rows not stored now (by id) are dropped;
3. the new rows' daily counts are added in one grouped upsert from the staged rows.

The result equals `apply_events` on the same events: same rows, same counts, same idempotency.
"""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, String, Uuid, and_, cast, delete, func, literal, select, true, union_all
from sqlalchemy.orm import Session

from churnsaver.backend.core.bulk import StagedText
from churnsaver.backend.core.db import UTCDateTime, dialect_insert
from churnsaver.backend.core.repository import owned_by
from churnsaver.backend.customers.activity import ACTIVITY, activity_names, utc_day
from churnsaver.backend.customers.events import CanonicalEvent
from churnsaver.backend.customers.models import CustomerEvent, CustomerIdentity
from churnsaver.backend.customers.timeline import STATE_KEY, profile_of, stored_key

EVENTS = CustomerEvent.__table__
IDENTITIES = CustomerIdentity.__table__
STAGED = StagedText(
    "staged_usage_events",
    [
        Column("id", Uuid()),  # given as 32 hex digits, as `ordered_uuid_hexes` gives them
        Column("provider_id", String(255)),
        Column("type", String(100)),
        Column("occurred_at", UTCDateTime()),
        Column("dedupe_key", String(255)),
        Column("properties", JSON()),
        Column("day", Date()),
        Column("decline", String(100)),  # a payment failure's second activity name
    ],
)

TIMELINE_COLUMNS = [
    "id",
    "tenant_id",
    "customer_id",
    "type",
    "occurred_at",
    "source",
    "dedupe_key",
    "properties",
    "created_at",
]
# (id, provider id, type, occurred_at, dedupe key, properties as JSON text, UTC day, decline name)
UsageRow = tuple[str, str, str, datetime, str, str, date, str | None]


def carries_state(event: CanonicalEvent) -> bool:
    """Whether applying `event` changes more than the timeline and activity counts."""
    return event.subscription is not None or bool(event.traits) or bool(profile_of(event.customer))


def usage_row(row_id: str, event: CanonicalEvent, properties_json: str) -> UsageRow:
    """The staged row of an event that carries no state; `properties_json`: its properties (with
    no STATE_KEY, which is always ours) as JSON text."""
    names = activity_names(event.type, event.properties)
    return (
        row_id,
        event.customer.provider_id,
        event.type,
        event.occurred_at,
        stored_key(event.dedupe_key),
        properties_json,
        utc_day(event.occurred_at),
        names[1] if len(names) > 1 else None,
    )


def own_properties(event: CanonicalEvent) -> dict[str, Any]:
    """The properties a timeline row keeps of `event` (as `timeline.event_row`)."""
    if STATE_KEY not in event.properties:
        return event.properties
    return {key: value for key, value in event.properties.items() if key != STATE_KEY}


def write_usage(
    session: Session,
    tenant_id: uuid.UUID,
    encoded: bytes,
    rows: int,
    *,
    source: str,
    provider: str,
    now: datetime,
) -> int:
    """Apply the `rows` usage events `encoded` by `STAGED.encode` (no key twice), from `source`,
    their customers named by `provider` ids; in the session's transaction. How many were new."""
    if not rows:
        return 0
    staged = STAGED.table
    STAGED.load(session, encoded)
    inserted = _changed(session, _insert_new(session, tenant_id, source, provider, now))
    if inserted != rows:
        # Some keys were on the timeline already (a re-run, a resumed run): only the rows stored
        # now are counted, known by their ids. Looked up only then: a first import pays nothing.
        stored_now = select(literal(1)).where(owned_by(tenant_id, EVENTS), EVENTS.c.id == staged.c.id).exists()
        session.execute(delete(staged).where(~stored_now))
    if inserted:
        session.execute(_add_counts(session, tenant_id, provider))
    STAGED.drop(session)
    return inserted


def _changed(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def _customer_of(tenant_id: uuid.UUID, provider: str, provider_id: Any) -> Any:
    return and_(
        owned_by(tenant_id, IDENTITIES), IDENTITIES.c.provider == provider, IDENTITIES.c.provider_id == provider_id
    )


def _insert_new(session: Session, tenant_id: uuid.UUID, source: str, provider: str, now: datetime) -> Any:
    """The staged rows into the timeline, in key order (as `timeline.insert_rows`: concurrent
    writers on PostgreSQL wait for each other rather than deadlock)."""
    staged = STAGED.table
    rows = (
        select(
            staged.c.id,
            literal(tenant_id, EVENTS.c.tenant_id.type),
            IDENTITIES.c.customer_id,
            staged.c.type,
            staged.c.occurred_at,
            literal(source, EVENTS.c.source.type),
            staged.c.dedupe_key,
            staged.c.properties,
            literal(now, EVENTS.c.created_at.type),
        )
        .select_from(staged.join(IDENTITIES, _customer_of(tenant_id, provider, staged.c.provider_id)))
        .where(true())  # SQLite: an upsert's ON CONFLICT is otherwise read as the join's ON
        .order_by(staged.c.dedupe_key)
    )
    insert = dialect_insert(session.get_bind().dialect)(EVENTS)
    return insert.from_select(TIMELINE_COLUMNS, rows).on_conflict_do_nothing()


def _add_counts(session: Session, tenant_id: uuid.UUID, provider: str) -> Any:
    """The staged (new) rows' daily counts added to the activity table, in one grouped upsert,
    in `activity.py`'s row order."""
    staged = STAGED.table
    names = union_all(
        select(staged.c.provider_id, staged.c.type.label("name"), staged.c.day),
        select(staged.c.provider_id, staged.c.decline.label("name"), staged.c.day).where(staged.c.decline.is_not(None)),
    ).subquery("names")
    grouped = (
        select(names.c.provider_id, names.c.name, names.c.day, func.count().label("count"))
        .group_by(names.c.provider_id, names.c.name, names.c.day)
        .subquery("grouped")
    )
    rows = (
        select(
            literal(tenant_id, ACTIVITY.c.tenant_id.type),
            IDENTITIES.c.customer_id,
            grouped.c.name,
            grouped.c.day,
            grouped.c["count"],
        )
        .select_from(grouped.join(IDENTITIES, _customer_of(tenant_id, provider, grouped.c.provider_id)))
        .where(true())
        .order_by(cast(IDENTITIES.c.customer_id, String()), grouped.c.name, grouped.c.day)
    )
    insert = dialect_insert(session.get_bind().dialect)(ACTIVITY)
    insert = insert.from_select(["tenant_id", "customer_id", "name", "day", "count"], rows)
    return insert.on_conflict_do_update(
        index_elements=[ACTIVITY.c.tenant_id, ACTIVITY.c.customer_id, ACTIVITY.c.name, ACTIVITY.c.day],
        set_={"count": ACTIVITY.c["count"] + insert.excluded["count"]},
    )


def encode_usage(dialect_name: str, rows: Sequence[UsageRow]) -> bytes:
    """`rows` as `write_usage` takes them on the dialect named (runs without a database)."""
    return STAGED.encode(dialect_name, rows)
