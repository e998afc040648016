"""`pg_driver.tenant_transaction`: a tenant transaction on the asyncpg connection itself, as
binding as a tenant session's (PostgreSQL only: SQLite has no such path)."""

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pg_driver import tenant_transaction
from tests.fixtures.factories import create_customers
from tests.fixtures.ingest_state import ingest_counters

COUNT = (
    "INSERT INTO ingest_daily_stats (id, tenant_id, source, day, accepted, duplicate, rejected) "
    "VALUES ($1, $2, 'whop', current_date, $3, 0, 0) "
    "ON CONFLICT (tenant_id, source, day) DO UPDATE SET accepted = ingest_daily_stats.accepted + excluded.accepted"
)


@pytest.fixture(autouse=True)
def postgres_only(db: Database) -> None:
    if db.settings.is_sqlite:
        pytest.skip("the driver path is PostgreSQL's")


async def test_what_the_block_writes_is_committed_then_the_after_commit_callbacks_run(db: Database, tenant):
    seen_after_commit = []
    async with tenant_transaction(db, tenant.id) as transaction:
        await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 3)
        transaction.after_commit.append(lambda: seen_after_commit.append("called"))

    assert seen_after_commit == ["called"]
    assert await ingest_counters(db, tenant.id) == (3, 0, 0)


async def test_a_block_that_raises_leaves_nothing_behind_and_calls_nothing(db: Database, tenant):
    called = []
    with pytest.raises(LookupError):
        async with tenant_transaction(db, tenant.id) as transaction:
            await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 3)
            transaction.after_commit.append(lambda: called.append(True))
            raise LookupError("changed its mind")

    assert called == []
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    async with tenant_transaction(db, tenant.id) as transaction:  # the next one starts clean
        await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 1)
    assert await ingest_counters(db, tenant.id) == (1, 0, 0)


async def test_row_level_security_binds_it_to_its_tenant(db: Database, tenant, other_tenant):
    await create_customers(db, tenant.id, 2)
    await create_customers(db, other_tenant.id, 3)

    async with tenant_transaction(db, tenant.id) as transaction:
        seen = await transaction.connection.fetch("SELECT DISTINCT tenant_id FROM customers")
    assert [row[0] for row in seen] == [tenant.id]

    # Writing another tenant's row is refused by the policy, and the transaction rolls back.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(db, tenant.id) as transaction:
            await transaction.connection.execute(COUNT, uuid.uuid4(), other_tenant.id, 5)
    assert await ingest_counters(db, other_tenant.id) == (0, 0, 0)


async def test_the_tenant_is_set_for_its_transaction_only(db: Database, tenant):
    async with tenant_transaction(db, tenant.id) as transaction:
        assert await transaction.connection.fetchval("SELECT current_setting('churnsaver.tenant_id')") == str(tenant.id)
        connection = transaction.connection
    # The same pooled connection, its transaction over: no tenant, so no tenant's rows.
    assert await connection.fetchval("SELECT current_setting('churnsaver.tenant_id', true)") == ""


async def test_a_transaction_cancelled_mid_statement_leaves_no_connection_in_a_transaction(db: Database, tenant):
    async def sleeping() -> None:
        async with tenant_transaction(db, tenant.id) as transaction:
            await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 7)
            await transaction.connection.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(sleeping())
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
    async with tenant_transaction(db, tenant.id) as transaction:  # the pool still serves
        await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 1)
    assert await ingest_counters(db, tenant.id) == (1, 0, 0)


async def wait_until(db: Database, query: str, expected: int) -> None:
    async with db.system_session() as session:
        for _ in range(100):
            if (await session.execute(text(query))).scalar_one() == expected:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{query} never gave {expected}")


async def test_a_connection_lost_mid_transaction_fails_the_block_and_the_pool_serves_on(db: Database, tenant):
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
        async with tenant_transaction(db, tenant.id) as transaction:
            await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 7)
            pid = await transaction.connection.fetchval("SELECT pg_backend_pid()")
            async with db.system_session() as session:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 1)

    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    for _ in range(3):  # whichever pooled connection comes next
        async with tenant_transaction(db, tenant.id) as transaction:
            await transaction.connection.execute(COUNT, uuid.uuid4(), tenant.id, 1)
    assert await ingest_counters(db, tenant.id) == (3, 0, 0)
