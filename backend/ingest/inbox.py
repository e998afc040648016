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

from churnsaver.backend.core.bulk import RowBatch, json_array
from churnsaver.backend.core.db import ordered_uuid_hexes, utcnow
from churnsaver.backend.core.pg_driver import DriverStatement, DriverTransaction
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
        rows = [
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


def _insert_and_count(
    session: Session, batch: RowBatch, statement: Any, planned: _PlannedRows, given: int, rejected: int
) -> set[str]:
    """Insert the `planned` rows and count them against the `given` deliveries they came from,
    with the `rejected` ones; the external ids of those stored now.

    On SQLite not by RETURNING: each returned row is one step of SQLite's, and pysqlite lets go of
    the GIL around every step. On the receivers' writer thread, each time it takes the GIL back it
    waits for the busy event loop, so a commit of 32 rows took several times its own work. When
    the INSERT stored every row (its count of changes says so), all are new; otherwise the rows
    stored now are those holding the ids this batch gave them, found in one row of one step.
    Skipping that look-up in the usual case saves 0.15 ms of the writer's 1.6 ms per commit."""
    if batch.is_postgres:
        return set(session.execute(statement, _postgres_values(batch, planned, given, rejected)).scalars())
    inserted = session.execute(statement, batch.parameters(planned.rows, planned.constants)).rowcount
    if inserted == len(planned.rows):
        created = set(planned.firsts)
    else:
        ids = json_array([row[0] for row in planned.rows])
        created = set(orjson.loads(session.execute(NEW_EXTERNAL_IDS, {"ids": ids}).scalar_one()))
    tenant_id, source = planned.constants["tenant_id"], planned.constants["source"]
    add_counts(session, tenant_id, source, accepted=len(created), duplicate=given - len(created), rejected=rejected)
    return created


def _postgres_values(batch: RowBatch, planned: _PlannedRows, given: int, rejected: int) -> dict[str, Any]:
    """The PostgreSQL statement's values: the rows, and what its counters row adds."""
    counts = {
        "count_id": uuid.uuid4(),
        "day": planned.constants["received_at"].date(),
        "given": given,
        "rejected": rejected,
    }
    return batch.parameters(planned.rows, planned.constants | counts)


def store_deliveries(
    session: Session, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery], *, rejected: int = 0
) -> dict[str, str]:
    """Store `deliveries` in one statement and count them, with the `rejected` deliveries of the
    same request that were refused before getting here; the rows that were new, in input order,
    as external id -> inbox id. A delivery already stored, or repeated earlier in `deliveries`,
    stores nothing and counts as a duplicate. An inbox id is 32 hex digits: made as text, the form
    SQLite stores and a job's arguments carry, never as a UUID object (made, then written out
    again, one cost 2 µs of the writer's time per delivery). Synchronous: the receivers' group
    commits on SQLite and the events API run it in `Database.run_unit_of_work`, other async code
    through `store`.

    Whatever the number of rows, one `RowBatch` INSERT: a group commit's few dozen webhooks or an
    events API batch of hundreds cost a fraction of what SQLAlchemy's executemany spends on them."""
    if not deliveries:
        add_counts(session, tenant_id, source, rejected=rejected)
        return {}
    batch, insert = _delivery_insert(session.bind.dialect)
    planned = _PlannedRows.of(tenant_id, source, deliveries)
    return planned.created(_insert_and_count(session, batch, insert, planned, len(deliveries), rejected))


async def store_deliveries_on_driver(
    transaction: DriverTransaction, tenant_id: uuid.UUID, source: str, deliveries: list[Delivery]
) -> dict[str, str]:
    """`store_deliveries` (of at least one delivery) on PostgreSQL's driver (pg_driver.py): the
    same statement, for the receivers' group commits."""
    batch, statement = _driver_insert(transaction.dialect)
    planned = _PlannedRows.of(tenant_id, source, deliveries)
    values = _postgres_values(batch, planned, len(deliveries), rejected=0)
    return planned.created(set(await transaction.fetch_column(statement, values)))


@lru_cache(maxsize=1)
def _driver_insert(dialect: Dialect) -> tuple[RowBatch, DriverStatement]:
    batch, statement = _delivery_insert(dialect)
    return batch, DriverStatement(statement, dialect)


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
