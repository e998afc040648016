"""The transactional outbox: a job is sent only if the transaction that enqueued it commits."""

import asyncio
import time

import pytest

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.relay import POLL_SECONDS, OutboxRelay
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.jobs import enqueue_committed, eventually, outbox_rows
from tests.jobs.sample_jobs import record


class Rollback(Exception):
    pass


async def test_a_job_enqueued_in_a_rolled_back_transaction_is_never_sent(settings: Settings, db: Database) -> None:
    with pytest.raises(Rollback):
        async with db.system_unit_of_work() as session:
            enqueue(session, "tests.record", token="rolled-back")
            raise Rollback

    broker = create_broker(settings)
    try:
        assert await OutboxRelay(db, broker).relay_once() == 0
    finally:
        broker.close()
    assert await outbox_rows(db) == []


async def test_a_committed_job_is_relayed_and_runs(broker_settings: Settings, db: Database) -> None:
    async with running_jobs(broker_settings, db, consume=True):
        with pytest.raises(Rollback):
            async with db.system_unit_of_work() as session:
                enqueue(session, "tests.record", token="rolled-back")
                raise Rollback
        await enqueue_committed(db, "tests.record", token="committed")

        await eventually(lambda: record.finished["committed"] == 1)
        await eventually(lambda: _outbox_is_empty(db))

    assert record.finished["rolled-back"] == 0


async def test_a_batch_of_jobs_is_sent_once_while_workers_finish_them(settings: Settings, db: Database) -> None:
    tokens = [f"batch-{n}" for n in range(20)]
    async with db.system_unit_of_work() as session:
        for token in tokens:
            enqueue(session, "tests.record", token=token)

    async with running_jobs(settings, db, consume=True):
        await eventually(lambda: _outbox_is_empty(db))
        await eventually(lambda: all(record.finished[token] >= 1 for token in tokens))

    assert {record.finished[token] for token in tokens} == {1}


async def test_a_commit_during_a_relay_pass_is_relayed_at_once(settings: Settings, db: Database) -> None:
    await enqueue_committed(db, "tests.record", token="first")
    broker = create_broker(settings)
    relay: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    try:
        async with db.system_unit_of_work() as session:
            enqueue(session, "tests.record", token="second")
            # On SQLite this holds the write lock: the relay's pass, sending "first", waits for
            # our commit, so the commit's wake-up arrives while the pass is still running.
            await session.flush()
            relay = asyncio.create_task(OutboxRelay(db, broker).run(stop))
            await asyncio.sleep(0.2)
        committed_at = time.monotonic()

        await eventually(lambda: _dispatched(db, 2))
        assert time.monotonic() - committed_at < POLL_SECONDS / 2
    finally:
        stop.set()
        if relay is not None:
            await relay
        broker.close()


async def test_a_job_enqueued_for_a_tenant_receives_the_tenant_id(
    settings: Settings, db: Database, tenant: TenantWithKey
) -> None:
    async with running_jobs(settings, db, consume=True):
        async with db.tenant_unit_of_work(tenant.id) as session:
            enqueue(session, "tests.record_tenant", tenant_id=tenant.id, token="tenant")

        await eventually(lambda: record.finished["tenant"] == 1)

    assert record.tenant_ids["tenant"] == str(tenant.id)


async def _outbox_is_empty(db: Database) -> bool:
    return await outbox_rows(db) == []


async def _dispatched(db: Database, count: int) -> bool:
    rows = await outbox_rows(db)
    return len(rows) == count and all(row.dispatched_at is not None for row in rows)


async def test_stopping_the_relay_lets_its_pass_finish(settings: Settings, db: Database) -> None:
    broker = create_broker(settings)
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, broker).run(stop))
    try:
        await enqueue_committed(db, "tests.record", token="before-stop")
        await eventually(lambda: _dispatched(db, 1))

        stop.set()
        await asyncio.wait_for(relay, timeout=5)
    finally:
        broker.close()

    assert relay.done() and not relay.cancelled() and relay.exception() is None
