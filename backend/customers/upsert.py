"""Bulk upsert of imported customers: a few statements per batch of thousands, whatever its size.

A customer is found by its events-API id: through its ("api", id) identity first, since a
customer merged from several providers may carry another external id, otherwise by external id.
A customer found or created by external id gets no identity row: its external id already is its
events-API id, and events resolve an id without an identity by external id (identities.py), so
the row would double the writes of a large import for nothing. Traits merge into the ones
already known; a blank label, churn date or profile field keeps what is stored. A row labelled
churned (or given a churn date without a label) makes its customer `churned`, one labelled not
churned makes it `active`; a row with neither keeps the stored status.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from churnsaver.backend.core.bulk import (
    StagedRows,
    is_one_of,
    merged_json,
    start_bulk_transaction,
    upsert_counting_created,
)
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.ids import ordered_uuid_hexes
from churnsaver.backend.core.repository import owned_by
from churnsaver.backend.core.unit_of_work import UnitOfWork
from churnsaver.backend.customers.events import Source
from churnsaver.backend.customers.models import Customer, CustomerIdentity, CustomerStatus

# An imported customer, in `ROW_COLUMNS` order, with its traits as a JSON object's text. A plain
# tuple: the garbage collector stops tracking a tuple of text and None (not a NamedTuple), and a
# large import holds tens of thousands until they are written.
CustomerRow = tuple[str, str, bool | None, datetime | None, str | None, str | None, str | None]
ROW_COLUMNS = ("external_id", "traits", "churn_label", "churned_at", "email", "name", "phone")
# Where a row leaves these blank, the stored value stays.
KEPT_UNLESS_GIVEN = ("churn_label", "churned_at", "email", "name", "phone")


@dataclass(frozen=True, slots=True)
class CustomerBatch:
    """Rows ready for `upsert_customers`, prepared by `prepare_customers` without a transaction, so
    an import prepares a batch while the database writes the one before."""

    rows: list[tuple[Any, ...]]  # the id a customer gets if its row creates it, ROW_COLUMNS, its status
    staging: StagedRows  # how the rows reach the database
    encoded: Any  # `rows` as `staging.encode` gave them
    given: int  # the rows the batch was made of, an id given twice counted twice


@lru_cache(maxsize=4)
def _staged_customers(dialect: Dialect) -> StagedRows:
    columns = ("id", *ROW_COLUMNS, "status")
    return StagedRows(dialect, Customer.__table__, columns, ("tenant_id", "created_at", "updated_at"))


def _status(row: CustomerRow) -> str:
    label, churned_at = row[2], row[3]
    churned = label if label is not None else churned_at is not None
    return CustomerStatus.churned.value if churned else CustomerStatus.active.value


def prepare_customers(dialect: Dialect, rows: list[CustomerRow], parts: int = 1) -> list[CustomerBatch]:
    """One row per events-API id (a later row for the same id wins), each with a new id, in up to
    `parts` batches of about equal size: no id is in two of them, so they can be written at once."""
    by_api_id = {row[0]: row for row in rows}
    ids = ordered_uuid_hexes(len(by_api_id))
    staged = [(customer_id, *row, _status(row)) for customer_id, row in zip(ids, by_api_id.values(), strict=True)]
    staging = _staged_customers(dialect)
    size = max(-(-len(staged) // parts), 1)
    slices = [staged[start : start + size] for start in range(0, len(staged), size)] or [[]]
    # The rows given twice count where the first part's do: each part's `given` adds up to the whole.
    repeats = len(rows) - len(staged)
    return [
        CustomerBatch(part, staging, staging.encode(part), len(part) + (repeats if index == 0 else 0))
        for index, part in enumerate(slices)
    ]


def upsert_customers(work: UnitOfWork, tenant_id: uuid.UUID, batch: CustomerBatch) -> tuple[int, int]:
    """Create or update a customer per row of `batch`; (created, updated)."""
    session = work.session
    start_bulk_transaction(session, Customer.__table__)
    via_identity = _external_ids_by_api_identity(session, tenant_id, [row[1] for row in batch.rows])
    if via_identity:
        batch = _retargeted(batch, via_identity)
    created = _upsert(session, tenant_id, batch)
    return created, batch.given - created


async def has_api_identities(db: Database, tenant_id: uuid.UUID) -> bool:
    """Whether any customer of the tenant carries an events-API identity (one merged from several
    providers): only then can two ids of an import be the same customer."""
    async with db.tenant_session(tenant_id) as session:
        return (await session.execute(_any_api_identity(tenant_id))).first() is not None


def _any_api_identity(tenant_id: uuid.UUID) -> Select[uuid.UUID]:
    return (
        select(CustomerIdentity.id)
        .where(owned_by(tenant_id, CustomerIdentity), CustomerIdentity.provider == Source.api)
        .limit(1)
    )


def _external_ids_by_api_identity(session: Session, tenant_id: uuid.UUID, api_ids: list[str]) -> dict[str, str]:
    # Most tenants have none (only a customer merged from several providers has one): then one
    # index probe stands in for looking up every id of the batch.
    if session.execute(_any_api_identity(tenant_id)).first() is None:
        return {}
    statement = (
        select(CustomerIdentity.provider_id, Customer.external_id)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(
            owned_by(tenant_id, CustomerIdentity),
            CustomerIdentity.provider == Source.api,
            is_one_of(session, CustomerIdentity.provider_id, api_ids),
        )
    )
    return dict(session.execute(statement).all())


def _retargeted(batch: CustomerBatch, external_ids: dict[str, str]) -> CustomerBatch:
    """`batch` with the rows of customers merged from several providers aimed at their customer's
    external id; a later row for the same customer wins. Rare, so batches are prepared as if none
    were: this prepares a batch again only where some are."""
    targets = {external_ids.get(row[1], row[1]): row for row in batch.rows}
    rows = [(row[0], external_id, *row[2:]) for external_id, row in targets.items()]
    return CustomerBatch(rows, batch.staging, batch.staging.encode(rows), batch.given)


def _upsert(session: Session, tenant_id: uuid.UUID, batch: CustomerBatch) -> int:
    """Upsert the rows of `batch` (unique external ids); how many were created."""
    table = Customer.__table__
    staged = batch.staging
    now = utcnow()
    parameters = staged.load(session, batch.encoded, {"tenant_id": tenant_id, "created_at": now, "updated_at": now})
    insert = staged.insert()
    upsert = insert.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "traits": merged_json(session, table.c.traits, insert.excluded.traits),
            **{name: func.coalesce(insert.excluded[name], table.c[name]) for name in KEPT_UNLESS_GIVEN},
            "status": case(
                (insert.excluded.churn_label.is_(None) & insert.excluded.churned_at.is_(None), table.c.status),
                else_=insert.excluded.status,
            ),
            "updated_at": insert.excluded.updated_at,
        },
    )
    # A customer created here has this batch's time as its creation time; one updated kept its own.
    return upsert_counting_created(session, upsert, parameters, tenant_id=tenant_id, created_at=now)
