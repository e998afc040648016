"""`Database.run_unit_of_work`: synchronous work in one tenant transaction, on either backend
(SQLite: the writer thread; PostgreSQL: an async tenant session)."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from churnsaver.backend.core.db import Database
from churnsaver.backend.ingest.inbox import add_counts
from tests.fixtures.factories import create_customers
from tests.fixtures.ingest_state import ingest_counters


async def test_what_the_work_writes_is_committed_and_its_result_returned(db: Database, tenant):
    def work(session: Session) -> str:
        add_counts(session, tenant.id, "whop", accepted=3)
        return "done"

    assert await db.run_unit_of_work(tenant.id, work) == "done"
    assert await ingest_counters(db, tenant.id) == (3, 0, 0)


async def test_work_that_raises_leaves_nothing_behind(db: Database, tenant):
    def work(session: Session) -> None:
        add_counts(session, tenant.id, "whop", accepted=3)
        raise LookupError("changed its mind")

    with pytest.raises(LookupError):
        await db.run_unit_of_work(tenant.id, work)
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    # The unit of work after a failed one starts clean.
    await db.run_unit_of_work(tenant.id, lambda session: add_counts(session, tenant.id, "whop", accepted=1))
    assert await ingest_counters(db, tenant.id) == (1, 0, 0)


async def test_the_work_sees_only_its_tenants_rows(db: Database, tenant, other_tenant):
    await create_customers(db, tenant.id, 2)
    await create_customers(db, other_tenant.id, 3)

    def tenants_seen(session: Session) -> list:
        return list(session.execute(text("SELECT DISTINCT tenant_id FROM customers")).scalars())

    seen = {str(uuid.UUID(str(tenant_id))) for tenant_id in await db.run_unit_of_work(tenant.id, tenants_seen)}
    if db.settings.is_sqlite:
        # No row-level security on SQLite (the repositories scope every query): the writer
        # thread reads the same database as the async sessions.
        assert {str(tenant.id), str(other_tenant.id)} <= seen
    else:
        assert seen == {str(tenant.id)}
