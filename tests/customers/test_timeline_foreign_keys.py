"""Migration 0012: the timeline and the daily activity refer to (tenant, customer) once. Down and
up again on a database of its own, rows written before it are kept; after it a row naming another
tenant's customer is refused, and a customer's deletion takes its rows with it."""

import asyncio
import uuid
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, delete, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer, CustomerDailyActivity, CustomerEvent
from churnsaver.backend.migrate import alembic_config, migrate
from churnsaver.tenants.service import create_tenant
from tests.fixtures.databases import migrated_database


async def test_the_timeline_refers_to_its_customer_once_and_keeps_its_rows_across_the_migration(
    settings: Settings, tmp_path: Path
) -> None:
    backend = "sqlite" if settings.is_sqlite else "postgres"
    async with migrated_database(backend, tmp_path) as fresh:
        await asyncio.to_thread(command.downgrade, alembic_config(fresh), "0012-1")
        db = Database(fresh)
        try:
            mine, theirs = uuid.uuid4(), uuid.uuid4()
            customer_id = await _customer_with_rows(db, mine, "mine")
            await _customer_with_rows(db, theirs, "theirs")
        finally:
            await db.dispose()

        await asyncio.to_thread(migrate, fresh)
        assert await _references(fresh) == {
            "customer_events": [(["tenant_id", "customer_id"], "customers", ["tenant_id", "id"])],
            "customer_daily_activity": [(["tenant_id", "customer_id"], "customers", ["tenant_id", "id"])],
        }
        db = Database(fresh)
        try:
            assert await _row_counts(db, mine) == (1, 1)
            if settings.is_sqlite:  # still clustered on its key (migration 0004)
                async with db.system_session() as session:
                    sql = (
                        await session.execute(
                            text("SELECT sql FROM sqlite_master WHERE name = 'customer_daily_activity'")
                        )
                    ).scalar_one()
                assert "WITHOUT ROWID" in sql

            with pytest.raises(IntegrityError):  # my tenant's row naming their customer
                async with db.system_unit_of_work() as session:
                    [their_customer] = (
                        await session.execute(select(Customer.id).where(Customer.tenant_id == theirs))
                    ).scalars()
                    session.add(_event(mine, their_customer, "crossed"))

            async with db.system_unit_of_work() as session:
                await session.execute(delete(Customer).where(Customer.id == customer_id))
            assert await _row_counts(db, mine) == (0, 0)
            assert await _row_counts(db, theirs) == (1, 1)
        finally:
            await db.dispose()


async def _customer_with_rows(db: Database, tenant_id: uuid.UUID, name: str) -> uuid.UUID:
    async with db.system_unit_of_work() as session:
        await create_tenant(session, tenant_id, name=f"Tenant {name}", slug=f"t-{name}")
        customer = Customer(tenant_id=tenant_id, external_id=f"{name}_1")
        session.add(customer)
        await session.flush()
        session.add(_event(tenant_id, customer.id, name))
        session.add(
            CustomerDailyActivity(
                tenant_id=tenant_id, customer_id=customer.id, name="login", day=date(2026, 1, 5), count=2
            )
        )
        return customer.id


def _event(tenant_id: uuid.UUID, customer_id: uuid.UUID, key: str) -> CustomerEvent:
    return CustomerEvent(
        tenant_id=tenant_id,
        customer_id=customer_id,
        type="login",
        occurred_at=utcnow(),
        source="api",
        dedupe_key=key,
        properties={},
    )


async def _row_counts(db: Database, tenant_id: uuid.UUID) -> tuple[int, int]:
    async with db.system_session() as session:
        events = (await session.execute(select(func.count()).where(CustomerEvent.tenant_id == tenant_id))).scalar_one()
        days = (
            await session.execute(select(func.count()).where(CustomerDailyActivity.tenant_id == tenant_id))
        ).scalar_one()
    return events, days


async def _references(settings: Settings) -> dict[str, list[tuple[list[str], str, list[str]]]]:
    def read(connection: Connection) -> dict[str, list[tuple[list[str], str, list[str]]]]:
        inspector = inspect(connection)
        return {
            table: [
                (key["constrained_columns"], key["referred_table"], key["referred_columns"])
                for key in inspector.get_foreign_keys(table)
            ]
            for table in ("customer_events", "customer_daily_activity")
        }

    db = Database(settings)
    try:
        async with db.system_engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await db.dispose()
