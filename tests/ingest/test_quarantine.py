"""One delivery that cannot be applied is set aside with its reason (failed when processing's
reading refuses it, quarantined when the database does) while the tenant's other deliveries,
before and after it, are applied; a failure of the moment sets nothing aside.

The poison deliveries are stored directly, as a receiver that accepted them would have: the
HTTP edge refuses such input, and processing must hold even for rows stored before it did."""

import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.quarantine import is_transient
from churnsaver.backend.ingest.inbox import Delivery
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.ingest.tasks import process_pending
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.ingest_state import ingest_state
from tests.fixtures.poison_deliveries import (
    POISONS,
    REFUSED_MESSAGE,
    Poison,
    api_item,
    inbox,
    run_job,
    store_one,
    store_refusing,
    valid,
)


async def timeline_by_customer(db: Database, tenant_id: uuid.UUID) -> Counter[str]:
    state = await ingest_state(db, tenant_id)
    return Counter(key[0] for key, count in state.timeline.items() for _ in range(count))


@pytest.mark.parametrize("poison", POISONS, ids=[poison.name for poison in POISONS])
async def test_a_poison_delivery_is_quarantined_and_the_tenants_other_deliveries_go_on(
    settings: Any, db: Database, tenant: TenantWithKey, other_tenant: TenantWithKey, poison: Poison
) -> None:
    await store_one(db, tenant.id, "api", valid("acct_before"))
    poison_id = await store_one(db, tenant.id, poison.source, Delivery(poison.external_id, "poison", poison.body))
    await store_one(db, tenant.id, "api", valid("acct_after"))
    theirs = await store_one(db, other_tenant.id, "api", valid("acct_theirs"))

    # The job enqueued for the poison row sweeps the rows stored before and after it.
    await run_job(db, settings, tenant.id, [poison_id])

    rows = await inbox(db, tenant.id)
    poisoned = rows[poison.external_id]
    assert poisoned.status == poison.status
    assert poison.reasons[db.engine.dialect.name] in poisoned.error
    assert {rows["m_acct_before"].status, rows["m_acct_after"].status} == {InboxStatus.processed}
    applied = await timeline_by_customer(db, tenant.id)
    assert (applied["acct_before"], applied["acct_after"]) == (1, 1)

    # The tenant's processing did not stop: a later delivery is processed by its own job.
    later = await store_one(db, tenant.id, "api", valid("acct_later"))
    await run_job(db, settings, tenant.id, [later])
    assert (await inbox(db, tenant.id))["m_acct_later"].status == InboxStatus.processed
    applied = await timeline_by_customer(db, tenant.id)
    assert (applied["acct_before"], applied["acct_after"], applied["acct_later"]) == (1, 1, 1)

    # Another tenant's row was never touched, and its own job processes it.
    assert (await inbox(db, other_tenant.id))["m_acct_theirs"].status == InboxStatus.pending
    await run_job(db, settings, other_tenant.id, [theirs])
    assert (await inbox(db, other_tenant.id))["m_acct_theirs"].status == InboxStatus.processed


async def test_every_poison_row_of_a_batch_is_quarantined_and_every_other_row_applied_in_one_job(
    db: Database, tenant: TenantWithKey
) -> None:
    poisons = POISONS
    ids: list[uuid.UUID] = []
    for number in range(40):
        ids.append(await store_one(db, tenant.id, "api", valid(f"acct_{number:02d}")))
        if number % 10 == 5:
            poison = poisons[number // 10 % len(poisons)]
            delivery = Delivery(f"{poison.external_id}_{number}", "poison", poison.body)
            ids.append(await store_one(db, tenant.id, poison.source, delivery))

    result = await process_pending(db, tenant.id, ids)

    assert (result.processed, result.failed + result.quarantined) == (40, 4)
    assert set(result.not_processed) == {
        row.id for row in (await inbox(db, tenant.id)).values() if row.status != InboxStatus.processed
    }
    applied = await timeline_by_customer(db, tenant.id)
    assert applied == Counter({f"acct_{number:02d}": 1 for number in range(40)})


@asynccontextmanager
async def database_busy(db: Database) -> AsyncIterator[None]:
    """Another transaction holds what processing needs, longer than processing waits for it: on
    SQLite the write lock, on PostgreSQL every customer row (the job's lock wait times out)."""
    if db.engine.dialect.name == "sqlite":

        def wait_briefly(connection: Any) -> None:
            connection.exec_driver_sql("PRAGMA busy_timeout = 100")

        holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        event.listen(db.engine.sync_engine, "begin", wait_briefly)
        try:
            yield
        finally:
            event.remove(db.engine.sync_engine, "begin", wait_briefly)
            holder.rollback()
            holder.close()
            await db.engine.dispose()  # the pooled connections go back to waiting as configured
        return

    def wait_briefly(connection: Any) -> None:
        connection.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")

    async with db.system_engine.connect() as holder:
        await holder.begin()
        await holder.execute(text("SELECT id FROM customers FOR UPDATE"))
        event.listen(db.engine.sync_engine, "begin", wait_briefly)
        try:
            yield
        finally:
            event.remove(db.engine.sync_engine, "begin", wait_briefly)
            await holder.rollback()


async def test_a_failure_of_the_moment_quarantines_nothing_and_the_retry_processes_everything(
    settings: Any, db: Database, tenant: TenantWithKey
) -> None:
    poison = POISONS[1]
    await run_job(db, settings, tenant.id, [await store_one(db, tenant.id, "api", valid("acct_known"))])
    known_again = Delivery(
        "m_known_again",
        "identify",
        json.dumps(api_item("acct_known", "m_known_again", type="identify", traits={"plan": "pro"})),
    )
    ids = [
        await store_one(db, tenant.id, "api", valid("acct_first")),
        await store_one(db, tenant.id, poison.source, Delivery(poison.external_id, "poison", poison.body)),
        await store_one(db, tenant.id, "api", known_again),
    ]
    state = await ingest_state(db, tenant.id)

    async with database_busy(db):
        with pytest.raises(Exception) as failure:
            await run_job(db, settings, tenant.id, ids)
    assert is_transient(failure.value)
    statuses = Counter(row.status for row in (await inbox(db, tenant.id)).values())
    assert statuses == {InboxStatus.processed: 1, InboxStatus.pending: 3}
    assert await ingest_state(db, tenant.id) == state

    await run_job(db, settings, tenant.id, ids)  # the job's retry
    rows = await inbox(db, tenant.id)
    assert rows[poison.external_id].status == poison.status
    assert {rows[key].status for key in ("m_acct_first", "m_known_again")} == {InboxStatus.processed}
    applied = await timeline_by_customer(db, tenant.id)
    assert (applied["acct_first"], applied["acct_known"]) == (1, 2)


async def test_a_delivery_the_database_refuses_is_quarantined_and_the_rest_applied_in_order(
    settings: Any, db: Database, tenant: TenantWithKey
) -> None:
    refused = api_item("acct_refused", REFUSED_MESSAGE)
    ids = [
        await store_one(db, tenant.id, "api", valid("acct_before")),
        await store_one(db, tenant.id, "api", Delivery(REFUSED_MESSAGE, "report_exported", json.dumps(refused))),
        await store_one(db, tenant.id, "api", valid("acct_after")),
    ]

    async with store_refusing(db, settings):
        await run_job(db, settings, tenant.id, ids)

    rows = await inbox(db, tenant.id)
    assert rows[REFUSED_MESSAGE].status == InboxStatus.quarantined
    assert "the store refuses this event" in rows[REFUSED_MESSAGE].error
    assert {rows["m_acct_before"].status, rows["m_acct_after"].status} == {InboxStatus.processed}
    applied = await timeline_by_customer(db, tenant.id)
    assert (applied["acct_before"], applied["acct_after"], applied["acct_refused"]) == (1, 1, 0)
