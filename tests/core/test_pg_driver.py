"""PostgreSQL's unit of work on the asyncpg connection itself (pg_driver.py): as binding as a
tenant session's, and leaving the pool sound whatever happens to it (PostgreSQL only)."""

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.unit_of_work import UnitOfWork
from tests.fixtures.factories import create_customers
from tests.fixtures.ingest_state import ingest_counters

COUNT = text(
    "INSERT INTO ingest_daily_stats (id, tenant_id, source, day, accepted, duplicate, rejected) "
    "VALUES (:id, :tenant_id, 'whop', :day, :accepted, 0, 0) "
    "ON CONFLICT (tenant_id, source, day) DO UPDATE SET accepted = ingest_daily_stats.accepted + excluded.accepted"
)


@pytest.fixture(autouse=True)
def postgres_only(db: Database) -> None:
    if db.settings.is_sqlite:
        pytest.skip("the driver path is PostgreSQL's")


def count(unit: UnitOfWork, tenant_id: uuid.UUID, accepted: int) -> None:
    unit.execute(COUNT, {"id": uuid.uuid4(), "tenant_id": tenant_id, "day": utcnow().date(), "accepted": accepted})


async def test_row_level_security_binds_it_to_its_tenant(db: Database, tenant, other_tenant):
    await create_customers(db, tenant.id, 2)
    await create_customers(db, other_tenant.id, 3)

    seen = await db.run_unit_of_work(tenant.id, lambda unit: unit.fetch_column(text("SELECT tenant_id FROM customers")))
    assert set(seen) == {tenant.id}

    # Writing another tenant's row is refused by the policy, and the transaction rolls back.
    def writes_both(unit: UnitOfWork) -> None:
        count(unit, tenant.id, 1)
        count(unit, other_tenant.id, 5)

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.run_unit_of_work(tenant.id, writes_both)
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    assert await ingest_counters(db, other_tenant.id) == (0, 0, 0)


async def test_the_tenant_is_set_for_its_transaction_only(db: Database, tenant):
    def setting_and_connection(unit: UnitOfWork) -> tuple:
        setting = unit.fetch_column(text("SELECT current_setting('churnsaver.tenant_id')"))[0]
        return setting, unit.session.connection().connection.driver_connection

    setting, connection = await db.run_unit_of_work(tenant.id, setting_and_connection)
    assert setting == str(tenant.id)
    # The same pooled connection, its transaction over: no tenant, so no tenant's rows.
    assert await connection.fetchval("SELECT current_setting('churnsaver.tenant_id', true)") == ""
    assert not connection.is_in_transaction()


async def test_work_cancelled_mid_statement_leaves_no_connection_in_a_transaction(db: Database, tenant):
    def sleeping(unit: UnitOfWork) -> None:
        count(unit, tenant.id, 7)
        unit.execute(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(db.run_unit_of_work(tenant.id, sleeping))
    await wait_until(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(30)'",
        1,
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    in_a_transaction = "state LIKE 'idle in transaction%' OR query = 'SELECT pg_sleep(30)'"
    await wait_until(
        db, f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ({in_a_transaction})", 0
    )
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    await db.run_unit_of_work(tenant.id, lambda unit: count(unit, tenant.id, 1))  # the pool still serves
    assert await ingest_counters(db, tenant.id) == (1, 0, 0)


async def wait_until(db: Database, query: str, expected: int) -> None:
    async with db.system_session() as session:
        for _ in range(100):
            if (await session.execute(text(query))).scalar_one() == expected:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{query} never gave {expected}")


async def test_a_connection_lost_mid_transaction_fails_the_work_and_the_pool_serves_on(db: Database, tenant):
    def losing_its_connection(unit: UnitOfWork) -> None:
        count(unit, tenant.id, 7)
        unit.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        count(unit, tenant.id, 1)

    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
        await db.run_unit_of_work(tenant.id, losing_its_connection)

    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    for _ in range(3):  # whichever pooled connection comes next
        await db.run_unit_of_work(tenant.id, lambda unit: count(unit, tenant.id, 1))
    assert await ingest_counters(db, tenant.id) == (3, 0, 0)
