"""Migration 0006 (the outbox's not-before time), down and up again on a database of its own:
a row written before it is due at once after it."""

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, insert, inspect

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.migrate import alembic_config, migrate
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.relay import OutboxRelay
from tests.fixtures.databases import migrated_database


async def test_the_not_before_migration_downgrades_and_upgrades_keeping_pending_jobs(
    settings: Settings, tmp_path: Path
) -> None:
    backend = "sqlite" if settings.is_sqlite else "postgres"
    async with migrated_database(backend, tmp_path) as fresh:
        await asyncio.to_thread(command.downgrade, alembic_config(fresh), "0005")
        assert await _outbox_shape(fresh) == (False, ["dispatched_at", "created_at"])
        db = Database(fresh)
        try:
            async with db.system_unit_of_work() as session:
                # Written as code from before 0006 writes it: no not_before column to fill.
                await session.execute(insert(OutboxJob).values(actor_name="tests.record", kwargs={"token": "old"}))
        finally:
            await db.dispose()

        await asyncio.to_thread(migrate, fresh)
        assert await _outbox_shape(fresh) == (True, ["dispatched_at", "not_before"])
        db = Database(fresh)
        broker = create_broker(fresh)
        try:
            assert await OutboxRelay(db, broker).relay_once() == 1
        finally:
            broker.close()
            await db.dispose()


async def _outbox_shape(settings: Settings) -> tuple[bool, list[str | None]]:
    """Whether outbox_jobs has a not_before column, and the columns of its pending index."""

    def shape(connection: Connection) -> tuple[bool, list[str | None]]:
        inspector = inspect(connection)
        columns = {column["name"] for column in inspector.get_columns("outbox_jobs")}
        indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes("outbox_jobs")}
        return "not_before" in columns, indexes["ix_outbox_jobs_pending"]

    db = Database(settings)
    try:
        async with db.system_engine.connect() as connection:
            return await connection.run_sync(shape)
    finally:
        await db.dispose()
