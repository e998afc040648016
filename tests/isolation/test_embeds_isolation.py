"""Embeds behind row-level security: one tenant's transaction sees none of another's embedding
settings or origins through raw SQL, and cannot overwrite them (PostgreSQL's second wall); the
system connection may only look them up."""

import pytest
from sqlalchemy import text

from churnsaver.backend.core.db import Database
from tests.fixtures.embeds import create_embedding


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
