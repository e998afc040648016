"""The inbox: raw deliveries stored before they are acknowledged, and the daily counters.

`store_deliveries` inserts with ON CONFLICT DO NOTHING on (tenant, source, external id) and
tells which rows are new: only those are processed, so a duplicate delivery changes nothing.
"""

import uuid
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Date, Integer, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from churnsaver.backend.db import ordered_uuid_hexes, utcnow
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus, IngestDailyStat
from churnsaver.backend.ingest.row_batches import RowBatch, json_array


@dataclass(frozen=True, slots=True)
class Delivery:
    external_id: str
    event_type: str
    payload: str  # raw JSON text
    status: InboxStatus = InboxStatus.pending


# The columns that differ from row to row in `store_deliveries`; the others are bound once.
DELIVERY_COLUMNS = ("id", "external_id", "event_type", "payload", "status")
DELIVERY_CONSTANTS = ("tenant_id", "source", "received_at")


# SQLite: the external ids of the rows just inserted, found by the ids they were given.
NEW_EXTERNAL_IDS = text(
    "SELECT json_group_array(external_id) FROM inbox_events WHERE id IN (SELECT value FROM json_each(:ids))"
)


@lru_cache(maxsize=8)
def _delivery_insert(dialect: Dialect) -> tuple[RowBatch, Any]:
    """The batch and its statement, built once per dialect: the receivers store every few
    milliseconds under a burst, and building the statement cost more than running it."""
    table = InboxEvent.__table__
    batch = RowBatch(dialect, table, DELIVERY_COLUMNS, DELIVERY_CONSTANTS, stored_form=["id"])
    insert = batch.insert().on_conflict_do_nothing()
    if not batch.is_postgres:
        return batch, insert
    # PostgreSQL: the statement counts what it stored too, in a second INSERT reading the first's
    # RETURNING, which saves a group commit a round trip. With no repeat in the statement, the
    # external ids it returns name the new rows exactly, and text comes back without the per-row
    # UUID parsing that returning ids would cost.
    stored = insert.returning(table.c.external_id).cte("stored")
    accepted = select(func.count()).select_from(stored).scalar_subquery()
    given = bindparam("given", type_=Integer())
    counts = {
        "id": bindparam("count_id", type_=IngestDailyStat.__table__.c.id.type),
        "tenant_id": bindparam("tenant_id", type_=table.c.tenant_id.type),
        "source": bindparam("source", type_=table.c.source.type),
        "day": bindparam("day", type_=Date()),
        "accepted": accepted,
        "duplicate": given - accepted,
        "rejected": bindparam("rejected", type_=Integer()),
    }
    counted = postgresql.insert(IngestDailyStat.__table__).from_select(list(counts), select(*counts.values()))
    return batch, select(stored.c.external_id).add_cte(_adding_to_counts(counted).cte("counted"))


def _insert_and_count(
    session: Session,
    batch: RowBatch,
    statement: Any,
    rows: list[tuple[str, ...]],
    constants: dict[str, Any],
    given: int,
    rejected: int,
) -> set[str]:
    """Insert `rows` (no external id twice) and count them against the `given` deliveries they
    came from, with the `rejected` ones; the external ids of those stored now.

    On SQLite not by RETURNING: each returned row is one step of SQLite's, and pysqlite lets go of
    the GIL around every step. On the receivers' writer thread, each time it takes the GIL back it
    waits for the busy event loop, so a commit of 32 rows took several times its own work. The
    rows stored now are those holding the ids this batch gave them: one row of one step."""
    if batch.is_postgres:
        counts = {
            "count_id": uuid.uuid4(),
            "day": constants["received_at"].date(),
            "given": given,
            "rejected": rejected,
        }
        return set(session.execute(statement, batch.parameters(rows, constants | counts)).scalars())
    session.execute(statement, batch.parameters(rows, constants))
    ids = json_array([row[0] for row in rows])
    created = set(orjson.loads(session.execute(NEW_EXTERNAL_IDS, {"ids": ids}).scalar_one()))
    tenant_id, source = constants["tenant_id"], constants["source"]
    add_counts(session, tenant_id, source, accepted=len(created), duplicate=given - len(created), rejected=rejected)
    return created


def store_deliveries(
    session: Session, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery], *, rejected: int = 0
) -> dict[str, str]:
    """Store `deliveries` in one statement and count them, with the `rejected` deliveries of the
    same request that were refused before getting here; the rows that were new, in input order,
    as external id -> inbox id. A delivery already stored, or repeated earlier in `deliveries`,
    stores nothing and counts as a duplicate. An inbox id is 32 hex digits: made as text, the form
    SQLite stores and a job's arguments carry, never as a UUID object (made, then written out
    again, one cost 2 µs of the writer's time per delivery). Synchronous: the receivers' group commits run it in
    `Database.run_unit_of_work`, async code through `store`.

    Whatever the number of rows, one `RowBatch` INSERT: a group commit's few dozen webhooks or an
    events API batch of hundreds cost a fraction of what SQLAlchemy's executemany spends on them."""
    if not deliveries:
        add_counts(session, tenant_id, source, rejected=rejected)
        return {}
    batch, insert = _delivery_insert(session.bind.dialect)
    # The first delivery of each external id: a repeat within the batch is a duplicate.
    firsts: dict[str, Delivery] = {}
    for delivery in deliveries:
        firsts.setdefault(delivery.external_id, delivery)
    inbox_ids = ordered_uuid_hexes(len(firsts))
    # In the order of their keys: two transactions storing the same new external ids (a provider
    # retrying while the first attempt commits) then wait for each other in one order, never
    # each for the other (a deadlock, on PostgreSQL). Rows are tuples in DELIVERY_COLUMNS order.
    rows = [
        (inbox_id, external_id, delivery.event_type, delivery.payload, delivery.status)
        for inbox_id, (external_id, delivery) in zip(inbox_ids, firsts.items(), strict=True)
    ]
    rows.sort(key=itemgetter(1))
    constants = {"tenant_id": tenant_id, "source": source, "received_at": utcnow()}
    created = _insert_and_count(session, batch, insert, rows, constants, given=len(deliveries), rejected=rejected)
    return {
        external_id: inbox_id for inbox_id, external_id in zip(inbox_ids, firsts, strict=True) if external_id in created
    }


COUNT_COLUMNS = ("id", "tenant_id", "source", "day", "accepted", "duplicate", "rejected")


@lru_cache(maxsize=2)
def _count_statement(dialect: str) -> Any:
    """The counters' upsert, built once per dialect: building it per call costs more than running it."""
    table = IngestDailyStat.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
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
    created = await session.run_sync(partial(store_deliveries, rejected=rejected), tenant_id, source, deliveries)
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
