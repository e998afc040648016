"""`Database.run_unit_of_work`: synchronous work in one tenant transaction, on either backend
(SQLite: the writer thread; PostgreSQL: the asyncpg connection itself, in a greenlet)."""

import uuid

import pytest
from sqlalchemy import select, text

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.unit_of_work import UnitOfWork
from churnsaver.backend.ingest.inbox import add_counts
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue, on_commit_wake
from tests.fixtures.factories import create_customers
from tests.fixtures.ingest_state import ingest_counters

PROCESS_JOB = "ingest.process_inbox"
ADD_ACCEPTED = text(
    "INSERT INTO ingest_daily_stats (id, tenant_id, source, day, accepted, duplicate, rejected) "
    "VALUES (:id, :tenant_id, 'whop', :day, :accepted, 0, 0) "
    "ON CONFLICT (tenant_id, source, day) DO UPDATE SET accepted = ingest_daily_stats.accepted + excluded.accepted"
)


def add_accepted(tenant_id: uuid.UUID, accepted: int) -> dict:
    # A text() statement types no parameter: its UUIDs as their hex, which both backends read.
    return {"id": uuid.uuid4().hex, "tenant_id": tenant_id.hex, "day": utcnow().date(), "accepted": accepted}


async def test_what_the_work_writes_is_committed_and_its_result_returned(db: Database, tenant):
    def work(unit: UnitOfWork) -> str:
        add_counts(unit, tenant.id, "whop", accepted=3)
        return "done"

    assert await db.run_unit_of_work(tenant.id, work) == "done"
    assert await ingest_counters(db, tenant.id) == (3, 0, 0)


async def test_work_that_raises_leaves_nothing_behind(db: Database, tenant):
    def work(unit: UnitOfWork) -> None:
        add_counts(unit, tenant.id, "whop", accepted=3)
        raise LookupError("changed its mind")

    with pytest.raises(LookupError):
        await db.run_unit_of_work(tenant.id, work)
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    # The unit of work after a failed one starts clean.
    await db.run_unit_of_work(tenant.id, lambda unit: add_counts(unit, tenant.id, "whop", accepted=1))
    assert await ingest_counters(db, tenant.id) == (1, 0, 0)


async def test_its_session_writes_in_the_same_transaction(db: Database, tenant):
    def work(unit: UnitOfWork, *, fail: bool) -> None:
        unit.execute(ADD_ACCEPTED, add_accepted(tenant.id, 1))
        unit.session.execute(ADD_ACCEPTED, add_accepted(tenant.id, 2))
        unit.execute(ADD_ACCEPTED, add_accepted(tenant.id, 4))
        if fail:
            raise LookupError("changed its mind")

    with pytest.raises(LookupError):
        await db.run_unit_of_work(tenant.id, lambda unit: work(unit, fail=True))
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    await db.run_unit_of_work(tenant.id, lambda unit: work(unit, fail=False))
    assert await ingest_counters(db, tenant.id) == (7, 0, 0)


async def test_jobs_it_enqueues_are_written_with_its_commit_and_wake_the_relays_after(db: Database, tenant):
    woken = []
    unregister = on_commit_wake(lambda: woken.append(True))
    try:

        def rolled_back(unit: UnitOfWork) -> None:
            enqueue(unit, PROCESS_JOB, tenant_id=tenant.id, inbox_ids=["a"])
            raise LookupError("changed its mind")

        with pytest.raises(LookupError):
            await db.run_unit_of_work(tenant.id, rolled_back)
        assert woken == []

        def work(unit: UnitOfWork) -> None:
            enqueue(unit, PROCESS_JOB, tenant_id=tenant.id, inbox_ids=["b"])
            enqueue(unit, PROCESS_JOB, tenant_id=tenant.id, inbox_ids=["c"])

        await db.run_unit_of_work(tenant.id, work)
    finally:
        unregister()

    assert woken
    async with db.system_session() as session:
        # Its tenant's: the suite's other tests leave their own tenants' jobs in the outbox.
        mine = select(OutboxJob).where(OutboxJob.tenant_id == tenant.id).order_by(OutboxJob.created_at)
        jobs = (await session.execute(mine)).scalars().all()
    assert sorted(job.kwargs["inbox_ids"][0] for job in jobs) == ["b", "c"]
    assert all(job.tenant_id == tenant.id and job.kwargs["tenant_id"] == str(tenant.id) for job in jobs)
    assert all(job.dispatch_count == 0 and job.created_at is not None for job in jobs)


async def test_the_work_sees_only_its_tenants_rows(db: Database, tenant, other_tenant):
    await create_customers(db, tenant.id, 2)
    await create_customers(db, other_tenant.id, 3)

    def tenants_seen(unit: UnitOfWork) -> list:
        return unit.fetch_column(text("SELECT DISTINCT tenant_id FROM customers"))

    seen = {str(uuid.UUID(str(tenant_id))) for tenant_id in await db.run_unit_of_work(tenant.id, tenants_seen)}
    if db.settings.is_sqlite:
        # No row-level security on SQLite (the repositories scope every query): the writer
        # thread reads the same database as the async sessions.
        assert {str(tenant.id), str(other_tenant.id)} <= seen
    else:
        assert seen == {str(tenant.id)}


async def test_execute_tells_how_many_rows_changed(db: Database, tenant):
    changed = await db.run_unit_of_work(tenant.id, lambda unit: unit.execute(ADD_ACCEPTED, add_accepted(tenant.id, 1)))
    assert changed == 1


def test_sqlite_has_one_writer_postgres_more(db: Database):
    assert db.concurrent_writers == (1 if db.settings.is_sqlite else 2)
