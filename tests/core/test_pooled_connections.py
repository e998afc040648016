"""PostgreSQL's pooled connections: a dead one is replaced before it is handed out, and one in
steady use is handed out without a round trip to check it (`check_connections_on_checkout`)."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import ALIVE_WITHOUT_PING_SECONDS, Database


@pytest.fixture
async def own_pool(settings: Settings) -> AsyncIterator[Database]:
    """A `Database` of its own: these tests kill and count its connections."""
    if settings.is_sqlite:
        pytest.skip("a PostgreSQL pool's checks")
    db = Database(settings)
    yield db
    await db.dispose()


async def backend_pid(db: Database) -> int:
    async with db.engine.connect() as connection:
        return (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def terminate(db: Database, pid: int) -> None:
    """End the server process behind `pid`, as a restart would."""
    async with db.system_engine.connect() as connection:
        assert (await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()


async def closed(driver_connection) -> None:
    while not driver_connection.is_closed():
        await asyncio.sleep(0.01)


async def test_a_connection_the_server_closed_is_replaced_before_use(own_pool: Database) -> None:
    async with own_pool.engine.connect() as connection:
        killed = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        driver = (await connection.get_raw_connection()).driver_connection
    await terminate(own_pool, killed)
    await asyncio.wait_for(closed(driver), timeout=5)  # the client has read the server's goodbye

    # At once: the pooled connection was in use a moment ago, so it is not pinged.
    assert await backend_pid(own_pool) != killed


async def test_a_connection_idle_past_the_window_is_pinged_and_one_just_used_is_not(own_pool: Database) -> None:
    sent: list[str] = []
    async with own_pool.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        driver.add_query_logger(lambda logged: sent.append(logged.query))

    async def statements_to_select_one() -> list[str]:
        sent.clear()
        async with own_pool.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return sent.copy()

    just_used = await statements_to_select_one()
    time.sleep(ALIVE_WITHOUT_PING_SECONDS + 0.1)
    after_idling = await statements_to_select_one()

    # The ping is the empty statement ";" (with its BEGIN and ROLLBACK, which asyncpg logs too).
    assert ";" not in just_used
    assert after_idling.count(";") == 1
