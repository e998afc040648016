"""The inbox: raw deliveries stored before they are acknowledged, and the daily counters.

`store_deliveries` inserts with ON CONFLICT DO NOTHING on (tenant, source, external id) and
tells which rows are new: only those are processed, so a duplicate delivery changes nothing.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, bindparam, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.bulk import InsertIfNew
from churnsaver.backend.core.db import dialect_insert, utcnow
from churnsaver.backend.core.ids import ordered_uuid_hexes
from churnsaver.backend.core.unit_of_work import UnitOfWork, run_in_session
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat


@dataclass(frozen=True, slots=True)
class Delivery:
    external_id: str
    event_type: str
    payload: str  # raw JSON text
    status: InboxStatus = InboxStatus.pending


# The columns that differ from row to row in `store_deliveries`; the others are bound once.
DELIVERY_COLUMNS = ("id", "external_id", "event_type", "payload", "status")
DELIVERY_CONSTANTS = ("tenant_id", "source", "received_at")


@lru_cache(maxsize=8)
def _delivery_insert(dialect: Dialect) -> InsertIfNew:
    """The insert, built once per dialect: the receivers store every few milliseconds under a
    burst, and building the statement cost more than running it. It adds what it stored to the
    day's counters too: on PostgreSQL in the same statement."""
    return InsertIfNew(
        dialect,
        InboxEvent.__table__,
        DELIVERY_COLUMNS,
        DELIVERY_CONSTANTS,
        key="external_id",
        stored_form=["id"],
        then=partial(_counted, dialect),
    )


def _counted(dialect: Dialect, stored: ColumnElement[int]) -> Any:
    """The counters' upsert for a batch of `given` deliveries of which `stored` were new."""
    table = InboxEvent.__table__
    given = bindparam("given", type_=Integer())
    counts = {
        "id": bindparam("count_id", type_=IngestDailyStat.__table__.c.id.type),
        "tenant_id": bindparam("tenant_id", type_=table.c.tenant_id.type),
        "source": bindparam("source", type_=table.c.source.type),
        "day": bindparam("day", type_=Date()),
        "accepted": stored,
        "duplicate": given - stored,
        "rejected": bindparam("rejected", type_=Integer()),
    }
    # WHERE true: without a WHERE clause, SQLite's parser cannot tell an upsert's ON CONFLICT from a join's ON.
    rows = select(*counts.values()).where(true())
    return _adding_to_counts(dialect_insert(dialect)(IngestDailyStat.__table__).from_select(list(counts), rows))


@dataclass(frozen=True, slots=True)
class _PlannedRows:
    """The rows a batch of deliveries stores, one per external id, and the values they share."""

    firsts: dict[str, Delivery]  # the first delivery of each external id, in input order
    inbox_ids: list[str]  # the id each of `firsts` gets if its row is new
    rows: list[tuple[str, ...]]  # in DELIVERY_COLUMNS order, sorted by external id
    constants: dict[str, Any]

    @classmethod
    def of(cls, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery]) -> "_PlannedRows":
        # The first delivery of each external id: a repeat within the batch is a duplicate.
        firsts: dict[str, Delivery] = {}
        for delivery in deliveries:
            firsts.setdefault(delivery.external_id, delivery)
        inbox_ids = ordered_uuid_hexes(len(firsts))
        # In the order of their keys: two transactions storing the same new external ids (a
        # provider retrying while the first attempt commits) then wait for each other in one
        # order, never each for the other (a deadlock, on PostgreSQL).
        rows: list[tuple[str, ...]] = [
            (inbox_id, external_id, delivery.event_type, delivery.payload, delivery.status)
            for inbox_id, (external_id, delivery) in zip(inbox_ids, firsts.items(), strict=True)
        ]
        rows.sort(key=itemgetter(1))
        return cls(firsts, inbox_ids, rows, {"tenant_id": tenant_id, "source": source, "received_at": utcnow()})

    def created(self, stored: set[str]) -> dict[str, str]:
        """Of the rows, those `stored` now (by external id), in input order: external id -> inbox id."""
        return {
            external_id: inbox_id
            for inbox_id, external_id in zip(self.inbox_ids, self.firsts, strict=True)
            if external_id in stored
        }


def store_deliveries(
    work: UnitOfWork, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery], *, rejected: int = 0
) -> dict[str, str]:
    """Store `deliveries` in one statement and count them, with the `rejected` deliveries of the
    same request that were refused before getting here; the rows that were new, in input order,
    as external id -> inbox id. A delivery already stored, or repeated earlier in `deliveries`,
    stores nothing and counts as a duplicate. An inbox id is 32 hex digits: made as text, the form
    SQLite stores and a job's arguments carry, never as a UUID object made and written out again.
    Synchronous: the receivers' group commits and the events API run it in
    `Database.run_unit_of_work`, other async code through `store`."""
    if not deliveries:
        add_counts(work, tenant_id, source, rejected=rejected)
        return {}
    planned = _PlannedRows.of(tenant_id, source, deliveries)
    counts = {"count_id": uuid.uuid4(), "day": planned.constants["received_at"].date()}
    counts |= {"given": len(deliveries), "rejected": rejected}
    return planned.created(_delivery_insert(work.dialect).write(work, planned.rows, planned.constants, counts))


COUNT_COLUMNS = ("id", "tenant_id", "source", "day", "accepted", "duplicate", "rejected")


@lru_cache(maxsize=2)
def _count_statement(dialect: Dialect) -> Any:
    """The counters' upsert, built once per dialect: building it per call costs more than running it."""
    insert = dialect_insert(dialect)(IngestDailyStat.__table__)
    return _adding_to_counts(insert.values({column: bindparam(column) for column in COUNT_COLUMNS}))


def _adding_to_counts(insert: Any) -> Any:
    """`insert` of a counters row, adding to the row of its (tenant, source, day) if there is one."""
    table = IngestDailyStat.__table__
    return insert.on_conflict_do_update(
        index_elements=["tenant_id", "source", "day"],
        set_={name: table.c[name] + insert.excluded[name] for name in ("accepted", "duplicate", "rejected")},
    )


async def store(
    session: AsyncSession, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery], *, rejected: int = 0
) -> list[uuid.UUID]:
    """`store_deliveries` in an async session: the inbox ids of the new rows, in input order."""
    created = await run_in_session(
        session, partial(store_deliveries, tenant_id=tenant_id, source=source, deliveries=deliveries, rejected=rejected)
    )
    return [uuid.UUID(inbox_id) for inbox_id in created.values()]


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
    await run_in_session(
        session,
        partial(
            add_counts, tenant_id=tenant_id, source=source, accepted=accepted, duplicate=duplicate, rejected=rejected
        ),
    )


def add_counts(
    work: UnitOfWork, tenant_id: uuid.UUID, source: str, *, accepted: int = 0, duplicate: int = 0, rejected: int = 0
) -> None:
    """`count`, in a unit of work."""
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
    work.execute(_count_statement(work.dialect), parameters)
