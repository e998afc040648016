"""Group commit: concurrent deliveries share one transaction per tenant, each caller is answered
only after its commit, duplicates are told apart, a failed transaction acknowledges nothing, and
tenants never share a transaction."""

import asyncio
import uuid

import pytest
from sqlalchemy import delete, select, text

from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.group_commit import DeliveryNotStored, InboxWriter
from churnsaver.backend.ingest.inbox import Delivery, store, store_deliveries
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.models import Tenant
from tests.fixtures.billing_payloads import whop_payment_failed, whop_test_delivery
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.ingest_state import ingest_counters
from tests.fixtures.senders import create_webhook_target, deliver, whop_body, whop_v1_delivery

PROCESS_JOB = "ingest.process_inbox"


def delivery(event_id: str | None = None) -> Delivery:
    envelope = whop_payment_failed(event_id=event_id)
    return Delivery(external_id=envelope["id"], event_type=envelope["type"], payload=whop_body(envelope).decode())


async def inbox(db, tenant_id: uuid.UUID) -> list[InboxEvent]:
    """The rows a tenant session sees: on PostgreSQL, row-level security shows only the tenant's own."""
    statement = select(InboxEvent).order_by(InboxEvent.external_id)
    if db.settings.is_sqlite:  # no second wall there: the scoping filter is the only one
        statement = statement.where(InboxEvent.tenant_id == tenant_id)
    async with db.tenant_session(tenant_id) as session:
        return list((await session.execute(statement)).scalars())


async def process_jobs(db, tenant_id: uuid.UUID) -> list[list[uuid.UUID]]:
    """The inbox ids of each processing job queued for the tenant."""
    async with db.system_session() as session:
        statement = select(OutboxJob).where(OutboxJob.tenant_id == tenant_id, OutboxJob.actor_name == PROCESS_JOB)
        jobs = (await session.execute(statement)).scalars()
        return [[uuid.UUID(inbox_id) for inbox_id in job.kwargs["inbox_ids"]] for job in jobs]


async def test_concurrent_deliveries_are_stored_once_each_in_few_transactions(db, tenant):
    writer = InboxWriter(db)
    deliveries = [delivery() for _ in range(200)]

    answers = await asyncio.gather(*(writer.store(tenant.id, Source.whop, d) for d in deliveries))

    assert answers == [True] * 200
    rows = await inbox(db, tenant.id)
    assert sorted(row.external_id for row in rows) == sorted(d.external_id for d in deliveries)
    assert all(row.tenant_id == tenant.id and row.status == "pending" for row in rows)
    jobs = await process_jobs(db, tenant.id)
    queued = [inbox_id for job in jobs for inbox_id in job]
    assert sorted(queued) == sorted(row.id for row in rows)  # every new row queued, once
    assert len(jobs) < 10  # one job per flush: they arrived together, so few flushes
    assert await ingest_counters(db, tenant.id) == (200, 0, 0)


async def test_deliveries_arriving_while_a_batch_commits_go_in_the_next_one(db, tenant):
    writer = InboxWriter(db)
    first = asyncio.create_task(writer.store(tenant.id, Source.whop, delivery()))
    await asyncio.sleep(0)  # the first flush has started with the first delivery alone
    later = [asyncio.create_task(writer.store(tenant.id, Source.whop, delivery())) for _ in range(20)]

    assert await first is True
    assert await asyncio.gather(*later) == [True] * 20
    assert sorted(len(job) for job in await process_jobs(db, tenant.id)) == [1, 20]


async def test_a_delivery_stored_just_as_the_last_flush_ends_is_flushed_too(db, tenant):
    writer = InboxWriter(db)
    assert await writer.store(tenant.id, Source.whop, delivery()) is True
    # Resumed by the commit, in the loop turn its flush ended: this one must start a flush.
    async with asyncio.timeout(10):  # inline: a task for it would start a loop turn later
        assert await writer.store(tenant.id, Source.whop, delivery()) is True


async def test_the_same_delivery_twice_in_one_batch_is_one_row_one_new_one_duplicate(db, tenant):
    writer = InboxWriter(db)
    twice = delivery("evt_twice_in_a_batch")
    other = delivery()

    answers = await asyncio.gather(
        writer.store(tenant.id, Source.whop, twice),
        writer.store(tenant.id, Source.whop, other),
        writer.store(tenant.id, Source.whop, twice),
    )

    assert answers == [True, True, False]
    rows = await inbox(db, tenant.id)
    assert sorted(row.external_id for row in rows) == sorted(["evt_twice_in_a_batch", other.external_id])
    [job] = await process_jobs(db, tenant.id)
    assert sorted(job) == sorted(row.id for row in rows)
    assert await ingest_counters(db, tenant.id) == (2, 1, 0)


async def test_a_delivery_already_stored_is_a_duplicate_for_every_caller_of_a_later_batch(db, tenant):
    writer = InboxWriter(db)
    stored = delivery()
    assert await writer.store(tenant.id, Source.whop, stored) is True

    answers = await asyncio.gather(*(writer.store(tenant.id, Source.whop, stored) for _ in range(3)))

    assert answers == [False, False, False]
    assert len(await inbox(db, tenant.id)) == 1
    assert len(await process_jobs(db, tenant.id)) == 1  # the later batch queued nothing
    assert await ingest_counters(db, tenant.id) == (1, 3, 0)


async def test_the_same_event_id_from_two_sources_is_two_deliveries(db, tenant):
    writer = InboxWriter(db)

    answers = await asyncio.gather(
        writer.store(tenant.id, Source.whop, delivery("evt_shared_id")),
        writer.store(tenant.id, Source.stripe, delivery("evt_shared_id")),
    )

    assert answers == [True, True]
    assert sorted(row.source for row in await inbox(db, tenant.id)) == ["stripe", "whop"]


async def test_stored_but_ignored_deliveries_are_not_queued(db, tenant):
    writer = InboxWriter(db)
    test_payload = whop_test_delivery()
    ignored = Delivery(
        "evt_dashboard_test", test_payload["type"], whop_body(test_payload).decode(), InboxStatus.ignored
    )

    answers = await asyncio.gather(
        writer.store(tenant.id, Source.whop, ignored), writer.store(tenant.id, Source.whop, delivery())
    )

    assert answers == [True, True]
    [job] = await process_jobs(db, tenant.id)
    [queued] = [row for row in await inbox(db, tenant.id) if row.status == "pending"]
    assert job == [queued.id]


async def test_a_failed_transaction_acknowledges_nothing_of_its_batch(db, tenant):
    writer = InboxWriter(db)
    good = [delivery() for _ in range(5)]
    refused = Delivery(external_id="evt_refused", event_type=None, payload="{}")  # NOT NULL: the database says no

    answers = await asyncio.gather(
        *(writer.store(tenant.id, Source.whop, d) for d in [*good[:3], refused, *good[3:]]), return_exceptions=True
    )

    assert all(isinstance(answer, DeliveryNotStored) for answer in answers)
    assert await inbox(db, tenant.id) == []
    assert await process_jobs(db, tenant.id) == []
    assert await ingest_counters(db, tenant.id) == (0, 0, 0)
    # The provider retries; without the refused row, the same deliveries are stored as new.
    assert await asyncio.gather(*(writer.store(tenant.id, Source.whop, d) for d in good)) == [True] * 5
    assert len(await inbox(db, tenant.id)) == 5


async def test_a_failing_tenant_does_not_fail_another_tenant_in_the_same_flush(db, tenant, other_tenant):
    writer = InboxWriter(db)
    gone = await create_tenant_with_key(db)
    async with db.system_unit_of_work() as session:
        await session.execute(delete(Tenant).where(Tenant.id == gone.id))  # its deliveries break the foreign key

    answers = await asyncio.gather(
        writer.store(gone.id, Source.whop, delivery()),
        writer.store(tenant.id, Source.whop, delivery()),
        return_exceptions=True,
    )

    assert isinstance(answers[0], DeliveryNotStored)
    assert answers[1] is True
    assert len(await inbox(db, tenant.id)) == 1


async def test_two_tenants_in_one_flush_each_get_their_own_rows_jobs_and_counters(db, tenant, other_tenant):
    writer = InboxWriter(db)
    # The same event ids for both: the inbox is unique per tenant, so each tenant stores its own.
    ours = [delivery(f"evt_{n}") for n in range(5)]
    theirs = [delivery(f"evt_{n}") for n in range(3)]

    answers = await asyncio.gather(
        *(writer.store(tenant.id, Source.whop, d) for d in ours),
        *(writer.store(other_tenant.id, Source.whop, d) for d in theirs),
    )

    assert answers == [True] * 8
    our_rows, their_rows = await inbox(db, tenant.id), await inbox(db, other_tenant.id)
    assert [row.external_id for row in our_rows] == [f"evt_{n}" for n in range(5)]
    assert [row.external_id for row in their_rows] == [f"evt_{n}" for n in range(3)]
    assert {row.tenant_id for row in our_rows} == {tenant.id}
    assert {row.tenant_id for row in their_rows} == {other_tenant.id}
    [our_job], [their_job] = await process_jobs(db, tenant.id), await process_jobs(db, other_tenant.id)
    assert sorted(our_job) == sorted(row.id for row in our_rows)
    assert sorted(their_job) == sorted(row.id for row in their_rows)
    assert await ingest_counters(db, tenant.id) == (5, 0, 0)
    assert await ingest_counters(db, other_tenant.id) == (3, 0, 0)


async def test_a_caller_that_goes_away_does_not_hold_up_the_others(db, tenant):
    writer = InboxWriter(db)
    leaving = asyncio.create_task(writer.store(tenant.id, Source.whop, delivery("evt_leaving")))
    staying = asyncio.create_task(writer.store(tenant.id, Source.whop, delivery()))
    await asyncio.sleep(0)
    leaving.cancel()

    assert await staying is True
    with pytest.raises(asyncio.CancelledError):
        await leaving
    # Stored all the same: unacknowledged, so its provider retries and is told "duplicate".
    assert "evt_leaving" in {row.external_id for row in await inbox(db, tenant.id)}
    assert await writer.store(tenant.id, Source.whop, delivery("evt_leaving")) is False


async def test_concurrent_http_deliveries_share_commits_and_a_redelivery_is_answered_duplicate(
    client, db, settings, tenant
):
    target = await create_webhook_target(db, settings, tenant.id, Source.whop)
    envelopes = [whop_payment_failed() for _ in range(30)]
    # A provider retrying before its first attempt was answered: the same event twice, in flight together.
    sends = [whop_v1_delivery(target.secret, envelope) for envelope in [*envelopes, envelopes[0]]]

    responses = await asyncio.gather(*(deliver(client, target.path, send) for send in sends))

    assert {response.status_code for response in responses} == {200}
    duplicates = [response.json()["duplicate"] for response in responses]
    assert duplicates.count(False) == 30 and duplicates.count(True) == 1
    assert len(await inbox(db, tenant.id)) == 30
    assert sum(len(job) for job in await process_jobs(db, tenant.id)) == 30


async def test_two_transactions_storing_the_same_new_ids_never_deadlock(db, tenant):
    """A provider's retry can reach the writer while its first attempt is still committing (two
    flushes in flight, on PostgreSQL), in another order. Rows are inserted in key order, so the
    later transaction waits for the earlier one and never holds a row the earlier one needs."""
    if db.settings.is_sqlite:
        pytest.skip("SQLite has one writer at a time: its transactions never wait for each other's rows")
    first, second = delivery("evt_a_first_in_key_order"), delivery("evt_b_second_in_key_order")
    async with db.tenant_unit_of_work(tenant.id) as earlier:
        assert await store(earlier, tenant.id, Source.whop, [first])
        # The retry, its deliveries in the other order, waits for the earlier transaction's row...
        retry = asyncio.create_task(db.run_unit_of_work(tenant.id, storing(tenant.id, [second, first])))
        await wait_for_a_transaction_waiting_on_a_lock(db)
        # ...and holds none the earlier one needs: had it inserted `second` first, this would
        # wait for the retry while the retry waits for this (a deadlock; one of them aborted).
        assert await store(earlier, tenant.id, Source.whop, [second])
    assert await retry == {}  # both rows were the earlier transaction's: duplicates
    assert await ingest_counters(db, tenant.id) == (2, 2, 0)


def storing(tenant_id: uuid.UUID, deliveries: list[Delivery]):
    """The work that stores `deliveries`, handed over in this order."""
    return lambda work: store_deliveries(work, tenant_id, Source.whop, deliveries)


async def wait_for_a_transaction_waiting_on_a_lock(db) -> None:
    async with db.system_session() as session:
        for _ in range(100):
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if (await session.execute(waiting)).scalar_one():
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the retry never waited for the earlier transaction's row")
