"""Processing the inbox through the real job path: stored deliveries become customers,
subscriptions and timelines, once in effect, even when a worker dies in the middle."""

import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.ingest.inbox import Delivery, store
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.backend.ingest.tasks import normalize_delivery, process_inbox
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.relay import REDELIVER_AFTER, OutboxRelay
from churnsaver.jobs.worker import running_jobs
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.billing_stream import StreamDelivery, billing_stream
from tests.fixtures.factories import TenantWithKey, create_tenant_with_key
from tests.fixtures.ingest_state import IngestState, assert_same_state, ingest_state
from tests.fixtures.jobs import clear_job_tables, eventually, outbox_rows, with_redis

JOB = "ingest.process_inbox"
API_ITEMS_PER_JOB = 100


@pytest.fixture(autouse=True)
async def empty_job_tables(db: Database) -> None:
    await clear_job_tables(db)


def whop_delivery(payload: dict) -> StreamDelivery:
    return StreamDelivery("whop", payload["id"], payload["type"], payload)


def stripe_delivery(payload: dict) -> StreamDelivery:
    return StreamDelivery("stripe", payload["id"], payload["type"], payload)


async def receive(db: Database, tenant_id: uuid.UUID, deliveries: list[StreamDelivery]) -> list[uuid.UUID]:
    """Store deliveries and enqueue their processing in one transaction, as the receivers do."""
    new_ids = []
    async with db.tenant_unit_of_work(tenant_id) as session:
        for source, group in itertools.groupby(deliveries, key=lambda delivery: delivery.source):
            stored = [Delivery(d.external_id, d.event_type, d.body) for d in group]
            ids = await store(session, tenant_id, source, stored)
            if ids:
                enqueue(session, JOB, tenant_id=tenant_id, inbox_ids=[str(inbox_id) for inbox_id in ids])
            new_ids += ids
    return new_ids


def as_received(deliveries: list[StreamDelivery]) -> Iterator[list[StreamDelivery]]:
    """The groups receivers store together: each webhook alone, events-API items by the batch."""
    api_batch: list[StreamDelivery] = []
    for delivery in deliveries:
        if delivery.source != "api":
            yield [delivery]
            continue
        api_batch.append(delivery)
        if len(api_batch) == API_ITEMS_PER_JOB:
            yield api_batch
            api_batch = []
    if api_batch:
        yield api_batch


async def inbox_statuses(db: Database, tenant_id: uuid.UUID) -> Counter[str]:
    async with db.tenant_session(tenant_id) as session:
        statement = (
            select(InboxEvent.status, func.count()).where(InboxEvent.tenant_id == tenant_id).group_by(InboxEvent.status)
        )
        return Counter(dict((status, count) for status, count in await session.execute(statement)))


async def inbox_rows(db: Database, tenant_id: uuid.UUID) -> dict[str, InboxEvent]:
    async with db.tenant_session(tenant_id) as session:
        rows = (await session.execute(select(InboxEvent).where(InboxEvent.tenant_id == tenant_id))).scalars()
        return {row.external_id: row for row in rows}


async def applied_directly(db: Database, deliveries: list[StreamDelivery]) -> IngestState:
    """The state the same deliveries give when applied inline, in order: what processing must reach."""
    tenant = await create_tenant_with_key(db)
    events = [event for d in deliveries for event in normalize_delivery(d.source, d.body)]
    for start in range(0, len(events), 500):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await apply_events(session, tenant.id, events[start : start + 500])
    return await ingest_state(db, tenant.id)


async def test_stored_deliveries_are_processed_by_the_job(settings: Settings, db: Database, tenant) -> None:
    deliveries = billing_stream(600, seed=11)
    async with running_jobs(settings, db, consume=True):
        for group in as_received(deliveries):
            await receive(db, tenant.id, group)

        async def all_processed() -> bool:
            return await inbox_statuses(db, tenant.id) == {InboxStatus.processed: len(deliveries)}

        await eventually(all_processed, timeout=120)
        await eventually(lambda: _no_jobs_left(db), timeout=30)
    assert_same_state(await ingest_state(db, tenant.id), await applied_directly(db, deliveries))


async def test_test_deliveries_and_unknown_types_are_ignored_and_malformed_ones_fail_alone(
    db: Database, tenant: TenantWithKey
) -> None:
    good = payloads.whop_payment_succeeded(user_id="user_Good", membership_id="mem_Good")
    no_user = payloads.whop_payment_failed()
    del no_user["data"]["user"]
    bad_price = payloads.stripe_subscription_event()
    bad_price["data"]["object"]["items"]["data"][0]["quantity"] = "lots"
    unknown = payloads.stripe_event("charge.refunded", {"id": "ch_1", "customer": "cus_1"})
    deliveries = [
        whop_delivery(good),
        whop_delivery(payloads.whop_test_delivery()),
        whop_delivery(no_user),
        stripe_delivery(bad_price),
        stripe_delivery(unknown),
    ]
    ids = await receive(db, tenant.id, deliveries)
    async with db.tenant_unit_of_work(tenant.id) as session:
        result = await process_inbox(session, tenant.id, ids)
    assert (result.processed, result.ignored, result.failed, result.applied.applied) == (1, 2, 2, 1)

    rows = await inbox_rows(db, tenant.id)
    assert rows[good["id"]].status == InboxStatus.processed
    test_row = rows["msg_xxxxxxxxxxxxxxxxxxxxxxxx"]
    assert (test_row.status, test_row.error) == (InboxStatus.ignored, "Whop dashboard test delivery")
    assert rows[unknown["id"]].status == InboxStatus.ignored
    assert (rows[no_user["id"]].status, rows[no_user["id"]].error) == (
        InboxStatus.failed,
        "the delivery names no Whop user (data.user.id)",
    )
    assert rows[bad_price["id"]].status == InboxStatus.failed
    assert rows[bad_price["id"]].error.startswith("TypeError: ")
    assert [customer[0] for customer in (await ingest_state(db, tenant.id)).customers] == ["user_Good"]


async def test_processing_again_does_nothing(db: Database, tenant: TenantWithKey) -> None:
    deliveries = billing_stream(200, seed=5)
    ids = await receive(db, tenant.id, deliveries)
    async with db.tenant_unit_of_work(tenant.id) as session:
        first = await process_inbox(session, tenant.id, ids)
    state = await ingest_state(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        again = await process_inbox(session, tenant.id, ids)
    assert (first.processed, first.applied.applied) == (200, 200)
    assert (again.processed, again.applied.received) == (0, 0)
    assert await ingest_state(db, tenant.id) == state


async def test_a_batch_takes_the_tenants_other_pending_rows_oldest_first_and_never_another_tenants(
    db: Database, tenant: TenantWithKey, other_tenant: TenantWithKey
) -> None:
    def payment(user: str) -> StreamDelivery:
        return whop_delivery(payloads.whop_payment_succeeded(user_id=user, membership_id=f"mem_{user}"))

    enqueued_for = await receive(db, tenant.id, [payment("user_Own")])
    older, newer = (
        await receive(db, tenant.id, [payment("user_Older")]),
        await receive(db, tenant.id, [payment("user_Newer")]),
    )
    theirs = await receive(db, other_tenant.id, [payment("user_Theirs")])

    async with db.tenant_unit_of_work(tenant.id) as session:
        first = await process_inbox(session, tenant.id, enqueued_for, also_pending=1)
    rows = await inbox_rows(db, tenant.id)
    assert first.processed == 2
    assert [row.id for row in rows.values() if row.status == InboxStatus.pending] == newer
    assert [row.id for row in rows.values() if row.status == InboxStatus.processed and row.id in older] == older

    async with db.tenant_unit_of_work(tenant.id) as session:
        second = await process_inbox(session, tenant.id, older, also_pending=10)
    assert second.processed == 1  # its own row was taken by the first batch; the newer one is swept
    assert await inbox_statuses(db, tenant.id) == {InboxStatus.processed: 3}
    assert await inbox_statuses(db, other_tenant.id) == {InboxStatus.pending: 1}
    async with db.tenant_unit_of_work(other_tenant.id) as session:
        assert (await process_inbox(session, other_tenant.id, theirs)).processed == 1


async def test_a_redelivered_delivery_is_stored_once_and_processed_once(
    settings: Settings, db: Database, tenant: TenantWithKey
) -> None:
    delivery = whop_delivery(payloads.whop_payment_failed(user_id="user_Again", membership_id="mem_Again"))
    async with running_jobs(settings, db, consume=True):
        first, second = await receive(db, tenant.id, [delivery]), await receive(db, tenant.id, [delivery])
        await eventually(lambda: _no_jobs_left(db))
    assert (len(first), second) == (1, [])
    assert (await ingest_state(db, tenant.id)).timeline_types() == {"payment_failed": 1}


async def test_a_worker_killed_mid_stream_and_restarted_loses_nothing(settings: Settings, db: Database) -> None:
    redis_settings = with_redis(settings)
    tenant = await create_tenant_with_key(db)
    deliveries = billing_stream(1_500, seed=99)
    groups = list(as_received(deliveries))
    first_half, second_half = groups[: len(groups) // 2], groups[len(groups) // 2 :]
    for group in first_half:
        await receive(db, tenant.id, group)

    worker = start_worker(redis_settings)
    try:
        # Keep delivering while it works, and kill it without warning once it is well under way.
        for group in second_half[: len(second_half) // 2]:
            await receive(db, tenant.id, group)

        async def under_way() -> bool:
            return (await inbox_statuses(db, tenant.id))[InboxStatus.processed] >= len(deliveries) // 4

        await eventually(under_way, timeout=120)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    at_kill = await inbox_statuses(db, tenant.id)
    assert at_kill[InboxStatus.processed] > 0 and at_kill[InboxStatus.pending] > 0, at_kill

    for group in second_half[len(second_half) // 2 :]:
        await receive(db, tenant.id, group)
    # The jobs the dead worker had taken are sent again once REDELIVER_AFTER has passed.
    await _age_dispatched_jobs(db)
    worker = start_worker(redis_settings)
    try:

        async def all_processed() -> bool:
            return await inbox_statuses(db, tenant.id) == {InboxStatus.processed: len(deliveries)}

        await eventually(all_processed, timeout=300)
        await eventually(lambda: _no_jobs_left(db), timeout=120)
    finally:
        worker.terminate()
        assert worker.wait(20) == 0
    assert_same_state(await ingest_state(db, tenant.id), await applied_directly(db, deliveries))


async def test_work_lost_with_an_in_process_worker_is_redone(settings: Settings, db: Database) -> None:
    """The same without Redis: jobs handed to a worker that died, and a batch cut off before commit."""
    tenant = await create_tenant_with_key(db)
    deliveries = billing_stream(400, seed=7)
    ids = [inbox_id for group in as_received(deliveries) for inbox_id in await receive(db, tenant.id, group)]
    dead_worker = create_broker(settings)  # takes the jobs, never runs them
    try:
        while await OutboxRelay(db, dead_worker).relay_once():
            pass
    finally:
        dead_worker.close()
    with pytest.raises(ProcessKilled):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await process_inbox(session, tenant.id, ids)
            raise ProcessKilled  # after applying everything, before the commit
    assert await inbox_statuses(db, tenant.id) == {InboxStatus.pending: len(deliveries)}

    await _age_dispatched_jobs(db)
    async with running_jobs(settings, db, consume=True):

        async def all_processed() -> bool:
            return await inbox_statuses(db, tenant.id) == {InboxStatus.processed: len(deliveries)}

        await eventually(all_processed, timeout=120)
        await eventually(lambda: _no_jobs_left(db), timeout=60)
    assert_same_state(await ingest_state(db, tenant.id), await applied_directly(db, deliveries))


class ProcessKilled(Exception):
    pass


def start_worker(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(settings.data_dir), "CHURNSAVER_REDIS_URL": settings.redis_url}
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    return subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _age_dispatched_jobs(db: Database) -> None:
    long_ago = utcnow() - REDELIVER_AFTER - timedelta(minutes=1)
    async with db.system_unit_of_work() as session:
        await session.execute(
            update(OutboxJob).where(OutboxJob.dispatched_at.is_not(None)).values(dispatched_at=long_ago)
        )


async def _no_jobs_left(db: Database) -> bool:
    return await outbox_rows(db) == []
