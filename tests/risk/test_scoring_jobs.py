"""Scoring jobs: an ingested event re-scores its customer; retries, copies and reordering change nothing."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.tasks import RESCORE_CUSTOMERS, SCORE_TENANT
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.registry import get_job
from churnsaver.jobs.runtime import JobRuntime, set_runtime
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.jobs import eventually
from tests.fixtures.risk_activity import logins, payment_failures, seed_two_customers, stored, subscribed


@contextmanager
def job_runtime(settings, db: Database) -> Iterator[None]:
    """Job functions called directly, on this loop, with the test database."""
    set_runtime(JobRuntime(settings=settings, db=db))
    try:
        yield
    finally:
        set_runtime(None)


async def outbox_jobs(db: Database, tenant: TenantWithKey, name: str) -> list[OutboxJob]:
    async with db.system_session() as session:
        statement = select(OutboxJob).where(OutboxJob.tenant_id == tenant.id, OutboxJob.actor_name == name)
        return list((await session.execute(statement.order_by(OutboxJob.created_at))).scalars())


async def test_a_rescore_job_run_twice_or_late_changes_nothing_more(settings, db: Database, tenant: TenantWithKey):
    ids = await seed_two_customers(db, tenant.id)
    customer_ids = sorted(str(customer_id) for customer_id in ids.values())
    now, earlier = utcnow(), utcnow() - timedelta(days=2)
    rescore = get_job(RESCORE_CUSTOMERS).function
    with job_runtime(settings, db):
        await rescore(tenant_id=str(tenant.id), customer_ids=customer_ids, as_of=now.isoformat())
        after_first = await stored(db, tenant.id)
        await rescore(tenant_id=str(tenant.id), customer_ids=customer_ids, as_of=now.isoformat())  # a retry
        await rescore(tenant_id=str(tenant.id), customer_ids=customer_ids, as_of=earlier.isoformat())  # overtaken
        await rescore(tenant_id=str(tenant.id), customer_ids=customer_ids, as_of=earlier.isoformat())

    current, history, events = await stored(db, tenant.id)
    assert {row.as_of for row in current.values()} == {now}
    assert [(row.customer_id, row.score, row.tier) for row in current.values()] == [
        (row.customer_id, row.score, row.tier) for row in after_first[0].values()
    ]
    assert sorted(row.as_of for row in history) == [earlier, earlier, now, now]
    assert [event.subject_id for event in events] == [event.subject_id for event in after_first[2]] == [ids["risky"]]


async def test_an_ingested_batch_enqueues_one_rescore_of_its_customers(
    settings, db: Database, client, tenant: TenantWithKey
):
    now = utcnow()
    batch = [
        subscribed("new_a", now - timedelta(days=40)),
        *logins("new_a", now - timedelta(days=40), 3),
        *payment_failures("new_b", now - timedelta(hours=2), 3),
    ]
    response = await client.post("/v1/events", json={"batch": batch}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    [process] = await outbox_jobs(db, tenant, "ingest.process_inbox")

    with job_runtime(settings, db):
        await get_job("ingest.process_inbox").function(**process.kwargs)
        await get_job("ingest.process_inbox").function(**process.kwargs)  # a second copy: nothing new
    [rescore] = await outbox_jobs(db, tenant, RESCORE_CUSTOMERS)
    assert len(rescore.kwargs["customer_ids"]) == 2

    with job_runtime(settings, db):
        await get_job(RESCORE_CUSTOMERS).function(**rescore.kwargs)
    current, history, _ = await stored(db, tenant.id)
    assert set(map(str, current)) == set(rescore.kwargs["customer_ids"])
    # new_a, idle 37 days after 3 active ones: 0.10 + 0.25 + 0.10 (drop); new_b, new, 3 failures: 0.10 + 0.45 + 0.05
    assert sorted(row.score for row in current.values()) == [pytest.approx(0.45), pytest.approx(0.60)]
    assert len(history) == 2


async def test_an_event_posted_to_the_api_rescores_its_customer_through_the_workers(
    settings, db: Database, client, tenant: TenantWithKey
):
    await seed_two_customers(db, tenant.id)
    async with running_jobs(settings, db, consume=True):
        # An hour apart, both in the past: a failure dated later than now lands on a day that
        # scoring has not reached yet (after 23:00 UTC, tomorrow) and is not counted.
        batch = payment_failures("healthy", utcnow() - timedelta(hours=2), 2)
        response = await client.post("/v1/events", json={"batch": batch}, headers=tenant.headers)
        assert response.status_code == 200, response.text

        async def rescored() -> bool:
            current, _, _ = await stored(db, tenant.id)
            return len(current) == 1

        await eventually(rescored, timeout=60)
    current, history, events = await stored(db, tenant.id)
    [score] = current.values()
    assert len(history) == 1
    assert (score.tier, score.model_version) == ("high", "rules")  # 0.10 + 2 failures
    assert score.reasons[0]["feature"] == "payment_failures_30d"
    assert [event.payload["to"] for event in events] == ["high"]


async def test_the_nightly_job_enqueues_a_tenant_scoring_that_scores_everyone(
    settings, db: Database, tenant: TenantWithKey
):
    ids = await seed_two_customers(db, tenant.id)
    with job_runtime(settings, db):
        await get_job("risk.score_all_tenants").function()
        [job] = await outbox_jobs(db, tenant, SCORE_TENANT)
        await get_job(SCORE_TENANT).function(**job.kwargs)
        await get_job(SCORE_TENANT).function(**job.kwargs)

    current, history, events = await stored(db, tenant.id)
    assert set(current) == set(ids.values())
    assert (len(history), [event.subject_id for event in events]) == (2, [ids["risky"]])


@pytest.fixture(autouse=True)
async def _no_outbox_left(db: Database):
    """These tests read the outbox: start each with the rows of earlier tests gone."""
    async with db.system_unit_of_work() as session:
        await session.execute(delete(OutboxJob))
    yield
