"""Bulk upsert of imported customers: a few statements per batch of thousands, whatever its size.

A customer is found by its events-API id: through its ("api", id) identity first, since a
customer merged from several providers may carry another external id, otherwise by external id.
A customer found or created by external id gets no identity row: its external id already is its
events-API id, and events resolve an id without an identity by external id (identities.py), so
the row would double the writes of a large import for nothing. Traits merge into the ones
already known; a blank label, churn date or profile field keeps what is stored.
"""

import uuid
from typing import Any

from sqlalchemy import JSON, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.db import ordered_uuid, utcnow
from churnsaver.backend.ingest.models import Source
from churnsaver.backend.ingest.row_batches import RowBatch, is_one_of, start_bulk_transaction

# What an imported row gives its customer; the last five keep the stored value where it is blank.
ROW_COLUMNS = ("id", "external_id", "traits", "churn_label", "churned_at", "email", "name", "phone")
KEPT_UNLESS_GIVEN = ("churn_label", "churned_at", "email", "name", "phone")


async def upsert_customers(session: AsyncSession, tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Create or update a customer per row (`ROW_COLUMNS` but `id`, with `external_id` the
    events-API id); (created, updated). A later row for the same id wins. The rows become the
    statement's parameters: `id` and `external_id` are set in place."""
    await start_bulk_transaction(session, Customer.__table__)
    by_api_id = {row["external_id"]: row for row in rows}
    via_identity = await _external_ids_by_api_identity(session, tenant_id, list(by_api_id))
    targets: dict[str, dict[str, Any]] = {}
    for api_id, row in by_api_id.items():
        row["external_id"] = via_identity.get(api_id, api_id)
        row["id"] = ordered_uuid()  # used only if the row creates its customer
        targets[row["external_id"]] = row
    created = await _upsert(session, tenant_id, list(targets.values()))
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


async def _upsert(session: AsyncSession, tenant_id: uuid.UUID, customers: list[dict[str, Any]]) -> int:
    """Upsert `customers` (unique external ids); how many were created."""
    table = Customer.__table__
    row_batch = RowBatch(session, table, ROW_COLUMNS)
    now = utcnow()
    insert = row_batch.insert({"tenant_id": tenant_id, "created_at": now, "updated_at": now})
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "traits": _merged_traits(session, table.c.traits, insert.excluded.traits),
            **{name: func.coalesce(insert.excluded[name], table.c[name]) for name in KEPT_UNLESS_GIVEN},
            "updated_at": insert.excluded.updated_at,
        },
    )
    await row_batch.execute(session, statement, customers)
    # Counted rather than returned row by row: fetching a row per customer costs more than the
    # upsert. A customer created here has this batch's time as its creation time; one updated
    # kept its own.
    created = select(func.count()).where(
        Customer.tenant_id == tenant_id,
        Customer.created_at == now,
        is_one_of(session, Customer.external_id, [customer["external_id"] for customer in customers]),
    )
    return (await session.execute(created)).scalar_one()


def _merged_traits(session: AsyncSession, current: Any, incoming: Any) -> Any:
    if session.bind.dialect.name == "postgresql":
        return cast(cast(current, JSONB).op("||")(cast(incoming, JSONB)), JSON)
    return func.json_patch(current, incoming)
