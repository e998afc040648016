"""Embeds across tenants: one tenant's widget key and secret reach none of another tenant's
customers or offers; behind row-level security, one tenant's transaction sees none of another's
embedding settings or origins through raw SQL and cannot overwrite them (PostgreSQL's second
wall); the system connection may only look them up."""

import uuid

import pytest
from sqlalchemy import text

from churnsaver.backend.core.db import Database
from tests.fixtures.embeds import create_embedding
from tests.fixtures.offers import cancellation_case, case_now, default_offer, redemptions


@pytest.fixture
def postgres_db(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return db


async def test_raw_sql_never_reaches_another_tenants_embedding(settings, postgres_db, tenant, other_tenant) -> None:
    db = postgres_db
    theirs = await create_embedding(db, settings.resolved_secret_key, other_tenant.id, "https://theirs.example.com")
    async with db.tenant_unit_of_work(tenant.id) as session:
        for table in ("embed_settings", "embed_origins"):
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        changed = await session.execute(text("UPDATE embed_origins SET origin = 'https://evil.example.net'"))
        assert changed.rowcount == 0
    async with db.system_session() as session:
        origins = (
            await session.execute(text("SELECT origin FROM embed_origins WHERE tenant_id = :t"), {"t": other_tenant.id})
        ).scalars()
        assert list(origins) == ["https://theirs.example.com"]
        key = (
            await session.execute(
                text("SELECT publishable_key FROM embed_settings WHERE tenant_id = :t"), {"t": other_tenant.id}
            )
        ).scalar_one()
        assert key == theirs.publishable_key


async def test_one_tenants_widget_key_reaches_none_of_another_tenants_customers_or_offers(
    settings, db, tenant, other_tenant, client
) -> None:
    ours = await create_embedding(db, settings.resolved_secret_key, tenant.id, "https://ours.example.com")
    case = await cancellation_case(db, other_tenant.id, "user_only_theirs")
    theirs = await default_offer(db, other_tenant.id, "uncancel")
    # Our own key and secret, naming a customer that exists only in the other tenant.
    session = await client.post("/widgets/v1/session", json=ours.body("user_only_theirs"), headers=ours.headers())
    assert session.status_code == 200
    assert session.json()["customer"] == {"known": False, "caseId": None}
    assert session.json()["messages"] == [] and session.json()["offers"] == []
    accept = await client.post(
        f"/widgets/v1/offers/{theirs.id}/accept",
        json=ours.body("user_only_theirs", attempt=str(uuid.uuid4())),
        headers=ours.headers(),
    )
    assert accept.status_code == 404
    assert await redemptions(db, other_tenant.id) == []
    assert (await case_now(db, other_tenant.id, case.id)).status == "open"
