"""Tenant isolation below GraphQL: the scoping helper, and on PostgreSQL row-level security."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.models import metadata
from churnsaver.tenants.api_keys import ApiKeyRepository, revoke_api_key
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.factories import create_customers

# Every table with a tenant_id holds tenant data, except the outbox, where it is only a label.
TENANT_TABLES = sorted(t.name for t in metadata.sorted_tables if "tenant_id" in t.c and t.name != "outbox_jobs")


async def test_a_repository_cannot_read_another_tenants_rows_by_id(db: Database, tenant, other_tenant):
    [theirs] = await create_customers(db, other_tenant.id, 1)

    async with db.tenant_session(tenant.id) as session:
        repository = CustomerRepository(session, tenant.id)
        assert await repository.get(theirs.id) is None
        assert await repository.get_many([theirs.id]) == {}
        assert await repository.count() == 0


async def test_a_repository_refuses_to_add_a_row_for_another_tenant(db: Database, tenant, other_tenant):
    async with db.tenant_session(tenant.id) as session:
        repository = CustomerRepository(session, tenant.id)
        with pytest.raises(ValueError, match="own tenant"):
            await repository.add(Customer(tenant_id=other_tenant.id, external_id="smuggled", traits={}))


async def test_revoking_another_tenants_key_id_is_not_found(db: Database, tenant, other_tenant):
    async with db.tenant_session(other_tenant.id) as session:
        [their_key] = (await session.execute(ApiKeyRepository(session, other_tenant.id).select_readable())).scalars()

    async with db.tenant_unit_of_work(tenant.id) as session:
        with pytest.raises(NotFound):
            await revoke_api_key(session, AuthSubject.system(tenant.id), their_key.id)


def test_every_tenant_table_is_listed_for_rls():
    assert {"api_keys", "customers"} <= set(TENANT_TABLES)


@pytest.fixture
def postgres_db(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return db


async def test_rls_is_forced_on_every_tenant_table(postgres_db: Database):
    async with postgres_db.system_session() as session:
        rows = (
            await session.execute(
                text("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:names)"),
                {"names": TENANT_TABLES},
            )
        ).all()

    assert {row.relname for row in rows} == set(TENANT_TABLES)
    assert all(row.relrowsecurity and row.relforcerowsecurity for row in rows)


async def test_app_connections_act_as_a_non_owner_role(postgres_db: Database):
    async with postgres_db.tenant_session(uuid.uuid4()) as session:
        role = (
            await session.execute(
                text("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()

    assert role.current_user == postgres_db.settings.database_role
    assert not role.rolsuper
    assert not role.rolbypassrls


async def test_a_connection_whose_first_transaction_rolled_back_still_acts_as_the_app_role(postgres_db: Database):
    fresh = Database(postgres_db.settings)  # a pool of its own: its first connection opens below
    try:
        with pytest.raises(LookupError):
            async with fresh.tenant_unit_of_work(uuid.uuid4()) as session:
                await session.execute(text("SELECT 1"))
                raise LookupError("rolled back")
        async with fresh.tenant_session(uuid.uuid4()) as session:  # the same connection, back from the pool
            assert (await session.execute(text("SELECT current_user"))).scalar_one() == fresh.settings.database_role
    finally:
        await fresh.dispose()


async def test_raw_sql_sees_only_the_sessions_tenant(postgres_db: Database, tenant, other_tenant):
    await create_customers(postgres_db, tenant.id, 2)
    await create_customers(postgres_db, other_tenant.id, 3)

    async with postgres_db.tenant_session(tenant.id) as session:
        tenants_seen = (await session.execute(text("SELECT DISTINCT tenant_id FROM customers"))).scalars().all()

    assert tenants_seen == [tenant.id]


async def test_without_a_tenant_no_rows_are_visible(postgres_db: Database, tenant):
    await create_customers(postgres_db, tenant.id, 2)

    async with postgres_db.tenant_session(None) as session:
        customers = (await session.execute(text("SELECT count(*) FROM customers"))).scalar_one()
        keys = (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one()

    assert customers == 0
    assert keys == 0


async def test_rls_rejects_writing_a_row_for_another_tenant(postgres_db: Database, tenant, other_tenant):
    async with postgres_db.tenant_session(tenant.id) as session:
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.execute(
                text(
                    "INSERT INTO customers (id, tenant_id, external_id, traits, created_at, updated_at) "
                    "VALUES (:id, :tenant, 'smuggled', '{}', now(), now())"
                ),
                {"id": uuid.uuid4(), "tenant": other_tenant.id},
            )


async def test_rls_hides_other_tenants_rows_from_updates(postgres_db: Database, tenant, other_tenant):
    await create_customers(postgres_db, other_tenant.id, 2, prefix="victim")

    async with postgres_db.tenant_unit_of_work(tenant.id) as session:
        result = await session.execute(text("UPDATE customers SET name = 'pwned' WHERE external_id LIKE 'victim%'"))

    assert result.rowcount == 0


async def test_the_migrations_build_exactly_the_mapped_schema(db: Database):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.system_engine.connect() as connection:
        diff = await connection.run_sync(differences)

    assert diff == []
