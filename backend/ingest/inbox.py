"""The inbox: raw deliveries stored before they are acknowledged, and the daily counters.

`store_deliveries` inserts with ON CONFLICT DO NOTHING on (tenant, source, external id) and
tells which rows are new: only those are processed, so a duplicate delivery changes nothing.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.db import insert_for, ordered_uuid, utcnow
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat
from churnsaver.backend.ingest.row_batches import RowBatch


@dataclass(frozen=True, slots=True)
class Delivery:
    external_id: str
    event_type: str
    payload: str  # raw JSON text
    status: InboxStatus = InboxStatus.pending


def inbox_row(tenant_id: uuid.UUID, source: str, delivery: Delivery, received_at: datetime) -> dict[str, Any]:
    """The inbox_events row of `delivery`, with its id chosen here: it tells which rows were new."""
    return {
        "id": ordered_uuid(),
        "tenant_id": tenant_id,
        "source": source,
        "external_id": delivery.external_id,
        "event_type": delivery.event_type,
        "payload": delivery.payload,
        "received_at": received_at,
        "status": delivery.status,
    }


async def insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert `rows` (from `inbox_row`) in one statement; the ids of those that were not stored yet.

    A row whose (tenant, source, external id) is already stored, or repeated earlier in `rows`,
    inserts nothing."""
    if not rows:
        return set()
    # The table rather than the mapped class, and the rows as executemany parameters: the
    # statement is compiled once and cached, and SQLAlchemy sends the rows as multi-row VALUES
    # pages. A `.values(rows)` statement is compiled anew on every call, a bind parameter per
    # cell: at 500 rows that cost ten times the database's own work.
    table = InboxEvent.__table__
    statement = insert_for(session)(table).on_conflict_do_nothing().returning(table.c.id)
    return set((await session.execute(statement, rows)).scalars())


# The columns that differ from row to row in `store_deliveries`; tenant, source and time are bound once.
DELIVERY_COLUMNS = ("id", "external_id", "event_type", "payload", "status")


async def store_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery]
) -> list[uuid.UUID]:
    """Store `deliveries` in one statement; returns the ids of the rows that were new (in input order).

    A batch of the events API or of an import is hundreds of rows: as one `RowBatch` INSERT they
    cost a fraction of what `insert_new`'s executemany spends on them in SQLAlchemy."""
    if not deliveries:
        return []
    table = InboxEvent.__table__
    batch = RowBatch(session, table, DELIVERY_COLUMNS)
    constants = {"tenant_id": tenant_id, "source": source, "received_at": utcnow()}
    statement = batch.insert(constants).on_conflict_do_nothing().returning(table.c.external_id)
    # The first delivery of each external id: a repeat within the batch is a duplicate. With no
    # repeat in the statement, the external ids it returns name the new rows exactly, and text
    # comes back without the per-row UUID parsing that returning the ids would cost.
    rows: dict[str, dict[str, Any]] = {}
    for delivery in deliveries:
        if delivery.external_id not in rows:
            rows[delivery.external_id] = {
                "id": ordered_uuid(),
                "external_id": delivery.external_id,
                "event_type": delivery.event_type,
                "payload": delivery.payload,
                "status": delivery.status,
            }
    created = {external_id for (external_id,) in await batch.execute(session, statement, list(rows.values()))}
    new_ids = [row["id"] for external_id, row in rows.items() if external_id in created]
    await count(session, tenant_id, source, accepted=len(new_ids), duplicate=len(deliveries) - len(new_ids))
    return new_ids


COUNT_COLUMNS = ("id", "tenant_id", "source", "day", "accepted", "duplicate", "rejected")


@lru_cache(maxsize=2)
def _count_statement(dialect: str) -> Any:
    """The counters' upsert, built once per dialect: building it per call costs more than running it."""
    table = IngestDailyStat.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    statement = insert.values({column: bindparam(column) for column in COUNT_COLUMNS})
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "source", "day"],
        set_={name: table.c[name] + statement.excluded[name] for name in ("accepted", "duplicate", "rejected")},
    )


async def count(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    source: str,
    *,
    accepted: int = 0,
    duplicate: int = 0,
    rejected: int = 0,
) -> None:
    """Add to today's counters for (tenant, source)."""
    if not (accepted or duplicate or rejected):
        return
    today: date = utcnow().date()
    parameters = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "source": source,
        "day": today,
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
    }
    await session.execute(_count_statement(session.bind.dialect.name), parameters)


async def pending_deliveries(session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[InboxEvent]:
    statement = select(InboxEvent).where(
        InboxEvent.tenant_id == tenant_id, InboxEvent.id.in_(ids), InboxEvent.status == InboxStatus.pending
    )
    return list((await session.execute(statement)).scalars())


async def mark(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID], status: InboxStatus, error: str | None = None
) -> None:
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.tenant_id == tenant_id, InboxEvent.id.in_(ids))
        .values(status=status, processed_at=utcnow(), error=error)
    )
