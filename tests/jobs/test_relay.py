"""The outbox relay: nothing is lost to a broker outage or a worker killed mid-job."""

import uuid
from datetime import datetime

import pytest
import redis
from sqlalchemy import select, update

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.relay import REDELIVER_AFTER, OutboxRelay
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.factories import TenantWithKey, create_customers
from tests.fixtures.jobs import enqueue_committed, eventually, outbox_rows
from tests.jobs.sample_jobs import record

CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"


async def test_a_broker_outage_loses_no_job(redis_settings: Settings, db: Database) -> None:
    tokens = [f"outage-{n}" for n in range(3)]
    for token in tokens:
        await enqueue_committed(db, "tests.record", token=token)

    unreachable = create_broker(redis_settings.model_copy(update={"redis_url": CLOSED_REDIS_URL}))
    try:
        with pytest.raises(redis.ConnectionError):
            await OutboxRelay(db, unreachable).relay_once()
    finally:
        unreachable.close()
    pending = await outbox_rows(db)
    assert [(row.dispatched_at, row.dispatch_count) for row in pending] == [(None, 0)] * len(tokens)

    async with running_jobs(redis_settings, db, consume=True):
        await eventually(lambda: all(record.finished[token] == 1 for token in tokens))
        await eventually(lambda: _outbox_is_empty(db))


async def test_a_row_for_a_job_this_process_does_not_know_waits_without_blocking_others(
    settings: Settings, db: Database
) -> None:
    async with db.system_unit_of_work() as session:
        # As written by a newer version of the code, which has a job this one lacks.
        session.add(OutboxJob(actor_name="tests.added_in_a_later_release", kwargs={}))
    await enqueue_committed(db, "tests.record", token="known")

    broker = create_broker(settings)
    try:
        assert await OutboxRelay(db, broker).relay_once() == 1
    finally:
        broker.close()
    sent = {row.actor_name: row.dispatch_count for row in await outbox_rows(db)}
    assert sent == {"tests.added_in_a_later_release": 0, "tests.record": 1}


async def test_a_merging_job_runs_once_for_the_items_of_its_rows_sent_together(
    settings: Settings, db: Database
) -> None:
    for items in (["a", "b"], ["b", "c"], ["d"], ["e", "f", "g"]):
        await enqueue_committed(db, "tests.record_items", token="merge", items=items)
    await enqueue_committed(db, "tests.record_items", token="other", items=["a"])

    async with running_jobs(settings, db, consume=True):
        await eventually(lambda: _outbox_is_empty(db))
    # Equal other arguments, up to merge_limit (5) items a message: the last row starts another;
    # a row with another token is never merged into them.
    assert dict(record.finished) == {"merge:a,b,c,d": 1, "merge:e,f,g": 1, "other:a": 1}
    assert len(record.attempts["merge"]) == 2


async def test_a_job_sent_but_never_finished_is_sent_again(settings: Settings, db: Database) -> None:
    await enqueue_committed(db, "tests.record", token="lost")
    # Sent to a broker no worker ever reads: the job is lost as with a killed in-process worker.
    lost_to = create_broker(settings)
    try:
        assert await OutboxRelay(db, lost_to).relay_once() == 1
        assert await OutboxRelay(db, lost_to).relay_once() == 0  # not due again yet
    finally:
        lost_to.close()
    [row] = await outbox_rows(db)
    assert row.dispatch_count == 1

    await _age_dispatch(db, row.id)
    async with running_jobs(settings, db, consume=True):
        await eventually(lambda: record.finished["lost"] == 1)
        await eventually(lambda: _outbox_is_empty(db))


async def test_an_idempotent_job_run_twice_changes_nothing_more(
    settings: Settings, db: Database, tenant: TenantWithKey
) -> None:
    [customer] = await create_customers(db, tenant.id, 1, prefix=f"idem{uuid.uuid4().hex[:6]}")

    async with running_jobs(settings, db, consume=True):
        await _enqueue_mark_contacted(db, tenant.id, customer.id)
        await eventually(lambda: record.finished["contact"] == 1)
        after_first = await _customer_state(db, tenant.id, customer.id)

        await _enqueue_mark_contacted(db, tenant.id, customer.id)
        await eventually(lambda: record.finished["contact"] == 2)
        await eventually(lambda: _outbox_is_empty(db))

    assert after_first[0]["contacted"] is True
    assert await _customer_state(db, tenant.id, customer.id) == after_first


async def _enqueue_mark_contacted(db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    async with db.tenant_unit_of_work(tenant_id) as session:
        enqueue(session, "tests.mark_contacted", tenant_id=tenant_id, customer_id=str(customer_id), token="contact")


async def _customer_state(
    db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> tuple[dict[str, object], datetime]:
    """What a run of tests.mark_contacted may change: the traits, and the update time."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        customer = (await session.execute(select(Customer).where(Customer.id == customer_id))).scalar_one()
        return customer.traits, customer.updated_at


async def _age_dispatch(db: Database, outbox_id: uuid.UUID) -> None:
    """Make the row look dispatched long ago, by a worker that has since died."""
    long_ago = utcnow() - REDELIVER_AFTER - REDELIVER_AFTER
    async with db.system_unit_of_work() as session:
        await session.execute(update(OutboxJob).where(OutboxJob.id == outbox_id).values(dispatched_at=long_ago))


async def _outbox_is_empty(db: Database) -> bool:
    return await outbox_rows(db) == []
