"""The demo tenant is seeded into an empty database once; later starts reuse it."""

import asyncio

from churnsaver.backend.config import Settings
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.db import Database
from churnsaver.backend.demo import DEMO_CUSTOMERS, seed_demo_tenant
from churnsaver.backend.migrate import migrate
from churnsaver.tenants.api_keys import authenticate_api_key


async def test_demo_is_seeded_once_and_its_key_is_kept(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings)
    try:
        first = await seed_demo_tenant(db, settings)
        second = await seed_demo_tenant(db, settings)

        assert first.created and not second.created
        assert first.api_key == second.api_key
        async with db.system_session() as session:
            subject = (await authenticate_api_key(session, first.api_key)).subject
        async with db.tenant_session(subject.tenant_id) as session:
            assert await CustomerRepository(session, subject.tenant_id).count() == DEMO_CUSTOMERS
    finally:
        await db.dispose()


async def test_no_demo_is_seeded_into_a_database_with_tenants(db, settings, tenant):
    assert await seed_demo_tenant(db, settings) is None
