"""Alembic environment: runs migrations over the async engine, as the database URL's own user."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import create_engine
from churnsaver.backend.models import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        user_module_prefix="",  # our own column types render by name; the template imports them
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    settings: Settings = config.attributes.get("settings") or Settings()
    engine = create_engine(settings, app_role=False)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # A table SQLite rebuilds (batch mode) is dropped and renamed: with foreign keys
                # enforced, dropping a parent would cascade to its children's rows.
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.run_sync(run_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `churnsaver migrate`")
asyncio.run(run_async())
