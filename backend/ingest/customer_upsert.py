"""Bulk upsert of imported customers: a few statements per batch of thousands, whatever its size.

A customer is found by its events-API id: through its ("api", id) identity first, since a
customer merged from several providers may carry another external id, otherwise by external id.
New customers, and existing ones without that identity, get it. Traits merge into the ones
already known; a blank label, churn date or profile field keeps what is stored.
"""

import uuid
from typing import Any

from sqlalchemy import JSON, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.db import insert_for, ordered_uuid, utcnow
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
        row["id"] = ordered_uuid()  # kept only if the row creates its customer
        targets[row["external_id"]] = row
    customer_ids = await _upsert(session, tenant_id, list(targets.values()))
    created = sum(1 for external_id, row in targets.items() if customer_ids[external_id] == row["id"])
    # An id not found through an identity was upserted under itself as the external id.
    unlinked = {api_id: customer_ids[api_id] for api_id in by_api_id if api_id not in via_identity}
    await _link_api_identities(session, tenant_id, unlinked)
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


async def _upsert(session: AsyncSession, tenant_id: uuid.UUID, customers: list[dict[str, Any]]) -> dict[str, uuid.UUID]:
    """Upsert `customers` (unique external ids); the id of each, by external id."""
    table = Customer.__table__
    row_batch = RowBatch(session, {name: table.c[name].type for name in ROW_COLUMNS})
    batch = row_batch.rows()
    now = utcnow()
    rows = select(
        *(batch.c[name] for name in ROW_COLUMNS),
        literal(tenant_id, table.c.tenant_id.type),
        literal(now, table.c.created_at.type),
        literal(now, table.c.updated_at.type),
    ).where(true())
    insert = insert_for(session)(table).from_select([*ROW_COLUMNS, "tenant_id", "created_at", "updated_at"], rows)
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "traits": _merged_traits(session, table.c.traits, insert.excluded.traits),
            **{name: func.coalesce(insert.excluded[name], table.c[name]) for name in KEPT_UNLESS_GIVEN},
            "updated_at": insert.excluded.updated_at,
        },
    )
    if row_batch.is_postgres:
        returned = await row_batch.execute(session, statement.returning(table.c.external_id, table.c.id), customers)
        return dict(returned)
    # SQLite's executemany returns no rows. The batch holds the write lock since it began, so
    # the customers found now are exactly those the upsert updates; the others get the new id.
    existing = await _ids_by_external_id(session, tenant_id, [customer["external_id"] for customer in customers])
    await row_batch.execute(session, statement, customers)
    return {customer["external_id"]: existing.get(customer["external_id"], customer["id"]) for customer in customers}


async def _ids_by_external_id(
    session: AsyncSession, tenant_id: uuid.UUID, external_ids: list[str]
) -> dict[str, uuid.UUID]:
    statement = select(Customer.external_id, Customer.id).where(
        Customer.tenant_id == tenant_id, is_one_of(session, Customer.external_id, external_ids)
    )
    return dict((await session.execute(statement)).all())


async def _link_api_identities(session: AsyncSession, tenant_id: uuid.UUID, customer_ids: dict[str, uuid.UUID]) -> None:
    """Give each customer in `customer_ids` (events-API id -> customer id) its ("api", id) identity."""
    table = CustomerIdentity.__table__
    row_batch = RowBatch(session, {name: table.c[name].type for name in ("id", "provider_id", "customer_id")})
    batch = row_batch.rows()
    rows = select(
        batch.c.id,
        batch.c.provider_id,
        batch.c.customer_id,
        literal(tenant_id, table.c.tenant_id.type),
        literal(Source.api.value, table.c.provider.type),
    ).where(true())
    columns = ["id", "provider_id", "customer_id", "tenant_id", "provider"]
    statement = insert_for(session)(table).from_select(columns, rows).on_conflict_do_nothing()
    identities = [
        {"id": ordered_uuid(), "provider_id": api_id, "customer_id": customer_id}
        for api_id, customer_id in customer_ids.items()
    ]
    await row_batch.execute(session, statement, identities)


def _merged_traits(session: AsyncSession, current: Any, incoming: Any) -> Any:
    if session.bind.dialect.name == "postgresql":
        return cast(cast(current, JSONB).op("||")(cast(incoming, JSONB)), JSON)
    return func.json_patch(current, incoming)
