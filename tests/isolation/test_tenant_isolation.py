"""Tenant isolation below GraphQL: the scoping helper, and on PostgreSQL row-level security."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import Conflict, NotFound
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.models import metadata
from churnsaver.tenants.api_keys import ApiKeyRepository, revoke_api_key
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.models import Tenant
from churnsaver.tenants.service import create_tenant, get_tenants_by_id, list_tenants, new_tenant_id
from tests.fixtures.factories import create_customers


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


async def test_a_taken_slug_is_a_conflict(db: Database, tenant):
    tenant_id = new_tenant_id()
    with pytest.raises(Conflict, match="already exists"):
        async with db.tenant_unit_of_work(tenant_id) as session:
            await create_tenant(session, tenant_id, name="Copycat", slug=tenant.tenant.slug)

    async with db.system_session() as session:
        assert tenant_id not in await get_tenants_by_id(session, [tenant_id])


@pytest.fixture
def postgres_db(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return db


# Found in the catalog, not in our models, so a table a migration adds without a policy is named.
TABLES_WITHOUT_FORCED_POLICY = text(
    """
    SELECT c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
      AND (c.relname = 'tenants' OR EXISTS (
          SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
      AND NOT (c.relrowsecurity AND c.relforcerowsecurity
               AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid))
    ORDER BY c.relname
    """
)


async def test_rls_is_forced_with_a_policy_on_every_table_that_names_a_tenant(postgres_db: Database):
    async with postgres_db.system_session() as session:
        unprotected = (await session.execute(TABLES_WITHOUT_FORCED_POLICY)).scalars().all()

    assert unprotected == [], f"tables without forced row-level security and a policy: {', '.join(unprotected)}"


async def test_the_catalog_check_names_a_tenant_table_without_a_policy(postgres_db: Database):
    async with postgres_db.system_session() as session, session.begin():
        await session.execute(text("CREATE TABLE unguarded_notes (id uuid PRIMARY KEY, tenant_id uuid NOT NULL)"))
        unprotected = (await session.execute(TABLES_WITHOUT_FORCED_POLICY)).scalars().all()
        await session.rollback()

    assert unprotected == ["unguarded_notes"]


async def test_a_tenant_session_cannot_read_another_tenants_row(postgres_db: Database, tenant, other_tenant):
    theirs = other_tenant.id
    async with postgres_db.tenant_session(tenant.id) as session:
        by_sql = (await session.execute(text("SELECT id FROM tenants WHERE id = :id"), {"id": theirs})).all()
        by_orm = await session.get(Tenant, theirs)
        by_ids = await get_tenants_by_id(session, [tenant.id, theirs])
        listed = [row.id for row in await list_tenants(session)]

    assert by_sql == []
    assert by_orm is None
    assert list(by_ids) == [tenant.id]
    assert listed == [tenant.id]


async def test_a_tenant_session_cannot_rename_another_tenant(postgres_db: Database, tenant, other_tenant):
    async with postgres_db.tenant_unit_of_work(tenant.id) as session:
        result = await session.execute(
            text("UPDATE tenants SET name = 'pwned' WHERE id = :id"), {"id": other_tenant.id}
        )

    assert result.rowcount == 0


async def test_system_sessions_still_see_every_tenant(postgres_db: Database, tenant, other_tenant):
    async with postgres_db.system_session() as session:
        listed = {row.id for row in await list_tenants(session)}

    assert {tenant.id, other_tenant.id} <= listed


async def test_a_tenant_session_sees_only_its_own_outbox_jobs(postgres_db: Database, tenant, other_tenant):
    async with postgres_db.system_unit_of_work() as session:
        await session.execute(
            text(
                "INSERT INTO outbox_jobs (id, actor_name, kwargs, tenant_id, created_at, dispatch_count) "
                "VALUES (:id, 'test.noop', '{}', :tenant, now(), 0)"
            ),
            {"id": uuid.uuid4(), "tenant": other_tenant.id},
        )

    async with postgres_db.tenant_session(tenant.id) as session:
        seen = (
            await session.execute(
                text("SELECT count(*) FROM outbox_jobs WHERE tenant_id = :id"), {"id": other_tenant.id}
            )
        ).scalar_one()

    assert seen == 0


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
