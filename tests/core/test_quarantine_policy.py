"""The shared policy for a tenant's items: which failures are of the moment (retry) and which
are an item's (isolate), and how an isolating batch finds the items that fail alone."""

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, text

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.quarantine import Batch, describe, is_transient, run_isolating
from tests.fixtures.factories import TenantWithKey


def json_check(session: Any) -> Any:
    """A statement the database refuses for text that is not JSON, whichever the backend."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return text("SELECT CAST(:value AS jsonb)" if postgres else "SELECT json(:value)")


class SavepointCounter:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.count = 0

    def __enter__(self) -> "SavepointCounter":
        event.listen(self.engine, "before_cursor_execute", self.seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self.seen)

    def seen(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += statement.lstrip().upper().startswith("SAVEPOINT")


async def test_items_that_fail_alone_are_found_in_order_and_the_others_applied(
    db: Database, tenant: TenantWithKey
) -> None:
    items = ["1", "[2]", "{bad", "4", "5", "nope", "7"]
    applied: list[str] = []

    async def work(session: Any, batch: Batch) -> Any:
        async def apply(group: list[str]) -> int:
            for item in group:
                await session.execute(json_check(session), {"value": item})
            applied.extend(group)
            return len(group)

        return await batch.apply(items, apply)

    with SavepointCounter(db) as savepoints:
        outcome = await run_isolating(db, tenant.id, work, what="test")

    assert [failure.item for failure in outcome.failures] == ["{bad", "nope"]
    assert all(failure.reason for failure in outcome.failures)
    assert (sum(outcome.results), applied) == (5, ["1", "[2]", "4", "5", "7"])
    assert savepoints.count > 0


async def test_the_normal_case_takes_no_savepoint(db: Database, tenant: TenantWithKey) -> None:
    async def work(session: Any, batch: Batch) -> Any:
        async def apply(group: list[str]) -> None:
            for item in group:
                await session.execute(json_check(session), {"value": item})

        return await batch.apply(["1", "2", "3"], apply)

    with SavepointCounter(db) as savepoints:
        outcome = await run_isolating(db, tenant.id, work, what="test")

    assert (outcome.failures, savepoints.count) == ([], 0)


def test_a_reason_quoting_the_item_can_be_stored_on_both_backends() -> None:
    reason = describe(ValueError("bad value 'a\ud800b\x00c'"))

    assert reason == "bad value 'a\\ud800b\\x00c'"
    reason.encode("utf-8")


async def test_an_items_fault_is_not_transient_but_a_busy_or_dead_database_is(db: Database) -> None:
    async with db.system_session() as session:
        with pytest.raises(Exception) as bad_json:
            await session.execute(json_check(session), {"value": "{bad"})
    assert not is_transient(bad_json.value)
    assert not is_transient(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert is_transient(ConnectionResetError())

    if db.engine.dialect.name == "sqlite":
        holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        waiter = sqlite3.connect(db.engine.url.database, timeout=0.05, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError) as busy:
                waiter.execute("BEGIN IMMEDIATE")
        finally:
            holder.rollback()
            holder.close()
            waiter.close()
        assert is_transient(busy.value)
        return

    # PostgreSQL: a serialization failure, a deadlock, a killed connection.
    async with db.system_engine.connect() as setup:
        await setup.execute(text("CREATE TABLE quarantine_probe (id int PRIMARY KEY, n int)"))
        await setup.execute(text("INSERT INTO quarantine_probe VALUES (1, 0), (2, 0)"))
        await setup.commit()
    try:
        await _postgres_failures_of_the_moment(db)
    finally:
        async with db.system_engine.connect() as cleanup:
            await cleanup.execute(text("DROP TABLE quarantine_probe"))
            await cleanup.commit()


async def _postgres_failures_of_the_moment(db: Database) -> None:
    async with db.system_engine.connect() as first, db.system_engine.connect() as second:
        for connection in (first, second):
            await connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            await connection.execute(text("SELECT n FROM quarantine_probe WHERE id = 1"))
        await first.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 1"))
        await first.commit()
        with pytest.raises(Exception) as serialization:
            await second.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 1"))
        await second.rollback()
    assert is_transient(serialization.value)

    async with db.system_engine.connect() as first, db.system_engine.connect() as second:
        await first.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 1"))
        await second.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 2"))
        crossing = asyncio.gather(
            first.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 2")),
            second.execute(text("UPDATE quarantine_probe SET n = n + 1 WHERE id = 1")),
            return_exceptions=True,
        )
        [deadlock] = [outcome for outcome in await crossing if isinstance(outcome, Exception)]
        await first.rollback()
        await second.rollback()
    assert is_transient(deadlock)

    async with db.system_engine.connect() as victim, db.system_engine.connect() as killer:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar()
        await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(Exception) as killed:
            await victim.execute(text("SELECT 1"))
    assert is_transient(killed.value)
