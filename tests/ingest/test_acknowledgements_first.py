"""Processing waits while a tenant's deliveries arrive as a burst, for a bounded time, and only
for that tenant's own deliveries; a slower stream, or a job whose rows are taken, waits for
nothing (tasks.wait_while_arriving)."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.ingest import tasks
from churnsaver.backend.ingest.inbox import Delivery, store
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from tests.fixtures.factories import create_tenant_with_key

# Wide enough that no test depends on how fast the machine is.
ARRIVING_SECONDS = 3.0
MAX_DEFER_SECONDS = 30.0


@pytest.fixture(autouse=True)
def deferral_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "ARRIVING_SECONDS", ARRIVING_SECONDS)
    monkeypatch.setattr(tasks, "MAX_DEFER_SECONDS", MAX_DEFER_SECONDS)
    monkeypatch.setattr(tasks, "ARRIVAL_POLL_SECONDS", 0.02)
    monkeypatch.setattr(tasks, "BURST_ROWS", 1)  # one recent delivery makes a burst, unless a test says otherwise


async def received(
    db: Database, tenant_id: uuid.UUID, seconds_ago: float, status: str = InboxStatus.pending
) -> uuid.UUID:
    """A delivery stored `seconds_ago`; its inbox id."""
    delivery = Delivery(f"evt_{uuid.uuid4().hex}", "payment.succeeded", "{}", InboxStatus(status))
    async with db.tenant_unit_of_work(tenant_id) as session:
        [inbox_id] = await store(session, tenant_id, "whop", [delivery])
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == inbox_id)
            .values(received_at=utcnow() - timedelta(seconds=seconds_ago))
        )
    return inbox_id


async def test_a_job_with_nothing_pending_ends_at_once(db: Database) -> None:
    tenant = await create_tenant_with_key(db)
    done = await received(db, tenant.id, seconds_ago=0, status=InboxStatus.ignored)

    assert await asyncio.wait_for(tasks.wait_while_arriving(db, tenant.id, [done]), 2) is False


async def test_processing_waits_while_deliveries_arrive_and_starts_when_they_stop(db: Database) -> None:
    tenant = await create_tenant_with_key(db)
    first = await received(db, tenant.id, seconds_ago=ARRIVING_SECONDS + 5)
    await received(db, tenant.id, seconds_ago=0)

    waiting = asyncio.create_task(tasks.wait_while_arriving(db, tenant.id, [first]))
    await asyncio.sleep(0.5)
    assert not waiting.done()

    # The newest delivery is now as old as a lull: the burst is over.
    async with db.tenant_unit_of_work(tenant.id) as session:
        await session.execute(
            update(InboxEvent)
            .where(InboxEvent.tenant_id == tenant.id)
            .values(received_at=utcnow() - timedelta(seconds=ARRIVING_SECONDS))
        )
    assert await asyncio.wait_for(waiting, 2) is True


async def test_processing_waits_no_longer_than_the_bound_under_a_stream_that_never_stops(db: Database) -> None:
    tenant = await create_tenant_with_key(db)
    first = await received(db, tenant.id, seconds_ago=MAX_DEFER_SECONDS)
    await received(db, tenant.id, seconds_ago=0)

    assert await asyncio.wait_for(tasks.wait_while_arriving(db, tenant.id, [first]), 2) is True


async def test_another_tenants_arrivals_do_not_hold_back_this_tenants_processing(db: Database) -> None:
    quiet, busy = await create_tenant_with_key(db), await create_tenant_with_key(db)
    quiet_row = await received(db, quiet.id, seconds_ago=ARRIVING_SECONDS + 1)
    busy_row = await received(db, busy.id, seconds_ago=0)

    assert await asyncio.wait_for(tasks.wait_while_arriving(db, quiet.id, [quiet_row]), 2) is True
    busy_waiting = asyncio.create_task(tasks.wait_while_arriving(db, busy.id, [busy_row]))
    await asyncio.sleep(0.3)
    assert not busy_waiting.done()
    busy_waiting.cancel()


async def test_a_stream_slower_than_a_burst_is_processed_at_once(db: Database, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "BURST_ROWS", 3)
    tenant = await create_tenant_with_key(db)
    first = await received(db, tenant.id, seconds_ago=0)
    await received(db, tenant.id, seconds_ago=0)

    assert await asyncio.wait_for(tasks.wait_while_arriving(db, tenant.id, [first]), 2) is True

    await received(db, tenant.id, seconds_ago=0)  # the third within the window: a burst
    waiting = asyncio.create_task(tasks.wait_while_arriving(db, tenant.id, [first]))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    waiting.cancel()


async def test_a_job_whose_rows_were_taken_ends_at_once_while_others_arrive(db: Database) -> None:
    tenant = await create_tenant_with_key(db)
    taken = await received(db, tenant.id, seconds_ago=0, status=InboxStatus.processed)
    await received(db, tenant.id, seconds_ago=0)  # pending, just arrived: a burst for BURST_ROWS = 1

    assert await asyncio.wait_for(tasks.wait_while_arriving(db, tenant.id, [taken]), 2) is False
