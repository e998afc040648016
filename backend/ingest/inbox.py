"""The inbox: raw deliveries stored before they are acknowledged, and the daily counters.

`store_deliveries` inserts with ON CONFLICT DO NOTHING on (tenant, source, external id) and
tells which rows are new: only those are processed, so a duplicate delivery changes nothing.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from churnsaver.backend.db import ordered_uuid, utcnow
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat
from churnsaver.backend.ingest.row_batches import RowBatch


@dataclass(frozen=True, slots=True)
class Delivery:
    external_id: str
    event_type: str
    payload: str  # raw JSON text
    status: InboxStatus = InboxStatus.pending


# The columns that differ from row to row in `store_deliveries`; tenant, source and time are bound once.
DELIVERY_COLUMNS = ("id", "external_id", "event_type", "payload", "status")


def store_deliveries(
    session: Session, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery]
) -> dict[str, uuid.UUID]:
    """Store `deliveries` in one statement and count them; the rows that were new, in input order,
    as external id -> inbox id. A delivery already stored, or repeated earlier in `deliveries`,
    stores nothing and counts as a duplicate. Synchronous: the receivers' group commits run it in
    `Database.run_unit_of_work`, async code with `await session.run_sync(store_deliveries, ...)`.

    Whatever the number of rows, one `RowBatch` INSERT: a group commit's few dozen webhooks or an
    events API batch of hundreds cost a fraction of what SQLAlchemy's executemany spends on them."""
    if not deliveries:
        return {}
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
    created = set(session.execute(statement, batch.parameters(list(rows.values()))).scalars())
    new = {external_id: row["id"] for external_id, row in rows.items() if external_id in created}
    add_counts(session, tenant_id, source, accepted=len(new), duplicate=len(deliveries) - len(new))
    return new


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
    await session.run_sync(add_counts, tenant_id, source, accepted=accepted, duplicate=duplicate, rejected=rejected)


def add_counts(
    session: Session, tenant_id: uuid.UUID, source: str, *, accepted: int = 0, duplicate: int = 0, rejected: int = 0
) -> None:
    """`count`, in a synchronous session."""
    if not (accepted or duplicate or rejected):
        return
    parameters = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "source": source,
        "day": utcnow().date(),
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
    }
    session.execute(_count_statement(session.bind.dialect.name), parameters)


async def mark(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID], status: InboxStatus, error: str | None = None
) -> None:
    await session.execute(
        update(InboxEvent)
        .where(InboxEvent.tenant_id == tenant_id, InboxEvent.id.in_(ids))
        .values(status=status, processed_at=utcnow(), error=error)
    )
