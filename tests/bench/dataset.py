"""A freshly migrated database with one tenant, its API key and N customers; dropped afterwards."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from tests.fixtures.databases import POSTGRES_URL, migrated_database
from tests.fixtures.factories import create_customers, create_tenant_with_key

BACKENDS = {"sqlite": "SQLite (embedded default)", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class SeededDatabase:
    backend: str
    settings: Settings
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def available_backends() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


async def settle_statistics(db: Database) -> None:
    """On PostgreSQL, what autovacuum does soon after a bulk insert, done now so that every request
    of the run sees the same plans. (The embedded SQLite gathers no statistics by itself.)"""
    if db.settings.is_sqlite:
        return
    async with db.system_engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


@contextlib.asynccontextmanager
async def seeded_database(backend: str, data_dir: Path, customers: int) -> AsyncIterator[SeededDatabase]:
    async with migrated_database(backend, data_dir) as settings:
        db = Database(settings)
        try:
            tenant = await create_tenant_with_key(db)
            await create_customers(db, tenant.id, customers)
            await settle_statistics(db)
        finally:
            await db.dispose()
        yield SeededDatabase(backend=backend, settings=settings, api_key=tenant.api_key)
