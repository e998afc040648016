"""Bulk upsert of imported customers: a few statements per batch of thousands, whatever its size.

A customer is found by its events-API id: through its ("api", id) identity first, since a
customer merged from several providers may carry another external id, otherwise by external id.
A customer found or created by external id gets no identity row: its external id already is its
events-API id, and events resolve an id without an identity by external id (identities.py), so
the row would double the writes of a large import for nothing. Traits merge into the ones
already known; a blank label, churn date or profile field keeps what is stored.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.db import ordered_uuid_hexes, utcnow
from churnsaver.backend.ingest.models import Source
from churnsaver.backend.ingest.row_batches import StagedRows, is_one_of, start_bulk_transaction

# An imported customer, in `ROW_COLUMNS` order, with its traits as a JSON object's text. A plain
# tuple: the garbage collector stops tracking a tuple of text and None (not a NamedTuple), and a
# large import holds tens of thousands until they are written.
CustomerRow = tuple[str, str, bool | None, datetime | None, str | None, str | None, str | None]
ROW_COLUMNS = ("external_id", "traits", "churn_label", "churned_at", "email", "name", "phone")
# Where a row leaves these blank, the stored value stays.
KEPT_UNLESS_GIVEN = ("churn_label", "churned_at", "email", "name", "phone")


async def upsert_customers(session: AsyncSession, tenant_id: uuid.UUID, rows: list[CustomerRow]) -> tuple[int, int]:
    """Create or update a customer per row (`external_id` the events-API id); (created, updated).
    A later row for the same id wins."""
    await start_bulk_transaction(session, Customer.__table__)
    by_api_id = {row[0]: row for row in rows}
    via_identity = await _external_ids_by_api_identity(session, tenant_id, list(by_api_id))
    targets = {via_identity.get(api_id, api_id): row for api_id, row in by_api_id.items()}
    # Each row with the id its customer gets if the row creates it, and its target's external id.
    staged = [
        (customer_id, external_id, *row[1:])
        for customer_id, (external_id, row) in zip(ordered_uuid_hexes(len(targets)), targets.items(), strict=True)
    ]
    created = await _upsert(session, tenant_id, staged)
    return created, len(rows) - created


async def _external_ids_by_api_identity(
    session: AsyncSession, tenant_id: uuid.UUID, api_ids: list[str]
) -> dict[str, str]:
    statement = (
        select(CustomerIdentity.provider_id, Customer.external_id)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(
            CustomerIdentity.tenant_id == tenant_id,
            CustomerIdentity.provider == Source.api,
            is_one_of(session, CustomerIdentity.provider_id, api_ids),
        )
    )
    return dict((await session.execute(statement)).all())


async def _upsert(session: AsyncSession, tenant_id: uuid.UUID, rows: list[tuple[Any, ...]]) -> int:
    """Upsert `rows` (an id, then `ROW_COLUMNS`; unique external ids); how many were created."""
    table = Customer.__table__
    staged = StagedRows(session, table, ("id", *ROW_COLUMNS), ("tenant_id", "created_at", "updated_at"))
    now = utcnow()
    parameters = await staged.load(rows, {"tenant_id": tenant_id, "created_at": now, "updated_at": now})
    insert = staged.insert()
    upsert = insert.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "traits": _merged_traits(session, table.c.traits, insert.excluded.traits),
            **{name: func.coalesce(insert.excluded[name], table.c[name]) for name in KEPT_UNLESS_GIVEN},
            "updated_at": insert.excluded.updated_at,
        },
    )
    # Counted rather than returned row by row: fetching a row per customer costs more than the
    # upsert. A customer created here has this batch's time as its creation time; one updated
    # kept its own.
    if staged.is_postgres:
        upserted = upsert.returning(table.c.created_at).cte("upserted")
        created = select(func.count()).select_from(upserted).where(upserted.c.created_at == now)
        return (await session.execute(created, parameters)).scalar_one()
    await session.execute(upsert, parameters)
    # SQLite: this transaction has held the write lock since it began, before `now`: any other
    # customer was created earlier. Read from the (tenant, created_at, id) index alone.
    created = select(func.count()).where(Customer.tenant_id == tenant_id, Customer.created_at == now)
    return (await session.execute(created)).scalar_one()


def _merged_traits(session: AsyncSession, current: Any, incoming: Any) -> Any:
    if session.bind.dialect.name == "postgresql":
        return cast(cast(current, JSONB).op("||")(cast(incoming, JSONB)), JSON)
    return func.json_patch(current, incoming)
