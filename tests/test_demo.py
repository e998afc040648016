"""The demo tenant is seeded into an empty database once; later starts reuse it."""

import asyncio
from collections import Counter

from sqlalchemy import select

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import Subscription
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.demo import DEMO_CUSTOMERS, seed_demo_tenant
from churnsaver.backend.migrate import migrate
from churnsaver.backend.risk.models import RiskModel
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.api_keys import authenticate_api_key


async def test_demo_is_seeded_once_with_synthetic_customers_and_its_key_is_kept(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings)
    try:
        first = await seed_demo_tenant(db, settings)
        second = await seed_demo_tenant(db, settings)

        assert first.created and not second.created
        assert first.api_key == second.api_key
        assert first.tenant_id == second.tenant_id
        async with db.system_session() as session:
            subject = (await authenticate_api_key(session, first.api_key)).subject
        assert subject.tenant_id == first.tenant_id
        async with db.tenant_session(subject.tenant_id) as session:
            assert await CustomerRepository(session, subject.tenant_id).count() == DEMO_CUSTOMERS
            statuses = Counter((await session.execute(select(Subscription.status))).scalars())
        # Enough history for the risk engine: most customers still subscribed, some churned.
        assert statuses["active"] > DEMO_CUSTOMERS / 2
        assert statuses["canceled"] >= 10
        async with db.system_session() as session:
            queued = sorted((await session.execute(select(OutboxJob.actor_name))).scalars())
        async with db.tenant_session(subject.tenant_id) as session:
            [model] = (await session.execute(select(RiskModel.version, RiskModel.status))).all()
        # Scored by the rules first, while the first model trains in the background.
        assert queued == ["risk.score_tenant", "risk.train"]
        assert tuple(model) == ("v1", "queued")
    finally:
        await db.dispose()


async def test_no_demo_is_seeded_into_a_database_with_tenants(db, settings, tenant):
    assert await seed_demo_tenant(db, settings) is None
