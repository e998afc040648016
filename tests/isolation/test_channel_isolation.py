"""Channels behind row-level security: raw SQL in one tenant's transaction sees and changes none of
another tenant's messages, consent or sealed provider secrets (PostgreSQL's second wall)."""

import pytest
from sqlalchemy import text

from churnsaver.backend.channels import service
from churnsaver.backend.core.db import Database
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.channels import schedule, stored_message
from tests.fixtures.factories import create_customer


@pytest.fixture
def postgres_db(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return db


async def test_raw_sql_never_reaches_another_tenants_channel_rows(settings, postgres_db, tenant, other_tenant) -> None:
    db = postgres_db
    customer = await create_customer(db, other_tenant.id, "victim", email="victim@example.com")
    outcome = await schedule(db, other_tenant.id, customer.id)
    async with db.tenant_unit_of_work(other_tenant.id) as session:
        await service.update_channel_settings(
            session,
            AuthSubject.system(other_tenant.id),
            secret_key=settings.resolved_secret_key,
            sms_auth_token="t0ken",
        )
        await service.opt_out(session, other_tenant.id, customer.id, "sms", "api")

    async with db.tenant_unit_of_work(tenant.id) as session:
        for table in ("messages", "message_events", "channel_settings", "channel_opt_outs"):
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        changed = await session.execute(text("UPDATE messages SET status = 'failed', to_address = 'me@evil.example'"))
        assert changed.rowcount == 0
    message = await stored_message(db, other_tenant.id, outcome.message_id)
    assert (message.status, message.to_address) == ("scheduled", "victim@example.com")
