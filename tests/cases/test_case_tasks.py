"""The cases jobs: an ingested failure becomes a case, a tier change a HIGH_RISK case, and the
sweep closes windows that time alone ends."""

import json
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from churnsaver.backend.cases.tasks import (
    CONSUME_TIER_CHANGES,
    EVALUATE_CUSTOMERS,
    consume_tier_events,
    evaluate_enqueued,
    sweep_tenant_cases,
)
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.domain_events import DomainEvent
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.ingest.events_api import normalize_item
from churnsaver.backend.ingest.inbox import Delivery, store
from churnsaver.backend.ingest.tasks import ProcessResult, process_pending
from churnsaver.backend.risk.models import TIER_CHANGED
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue, notify
from churnsaver.jobs.worker import running_jobs
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile, stored_cases
from tests.fixtures.jobs import eventually

NOW = utcnow().replace(microsecond=0)


async def receive(db: Database, tenant_id: uuid.UUID, *events: dict) -> list[uuid.UUID]:
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await store(session, tenant_id, "stripe", [Delivery(e["id"], e["type"], json.dumps(e)) for e in events])


async def queued(db: Database, tenant_id: uuid.UUID, job_name: str) -> list[dict]:
    async with db.system_session() as session:
        statement = select(OutboxJob.kwargs).where(OutboxJob.actor_name == job_name)
        return [
            kwargs
            for kwargs in (await session.execute(statement)).scalars()
            if kwargs.get("tenant_id") == str(tenant_id)
        ]


async def test_processing_billing_events_queues_their_customers_cases(db, tenant) -> None:
    started = payloads.stripe_subscription_event("customer.subscription.created", at=NOW - timedelta(days=30))
    failed = payloads.stripe_invoice_payment_failed(at=NOW - timedelta(minutes=1), decline_code="stolen_card")
    ids = await receive(db, tenant.id, started, failed)
    await process_pending(db, tenant.id, ids)
    [job] = await queued(db, tenant.id, EVALUATE_CUSTOMERS)
    async with db.tenant_session(tenant.id) as session:
        customer_id = (await session.execute(select(Customer.id).where(Customer.tenant_id == tenant.id))).scalar_one()
    assert job["customer_ids"] == [str(customer_id)]


async def process_hard_decline(db: Database, tenant_id: uuid.UUID) -> ProcessResult:
    """A subscription and its hard-declined payment, stored and processed (not evaluated yet)."""
    started = payloads.stripe_subscription_event("customer.subscription.created", at=NOW - timedelta(days=30))
    failed = payloads.stripe_invoice_payment_failed(at=NOW - timedelta(minutes=1), decline_code="stolen_card")
    return await process_pending(db, tenant_id, await receive(db, tenant_id, started, failed))


async def test_the_processing_job_evaluates_at_once_and_takes_back_the_queued_evaluation(db, tenant) -> None:
    result = await process_hard_decline(db, tenant.id)
    assert result.evaluation is not None
    async with db.system_session() as session:
        fallback = (await session.execute(select(OutboxJob).where(OutboxJob.id == result.evaluation))).scalar_one()
    assert fallback.not_before is not None and fallback.not_before > utcnow()  # waits for the inline run

    await evaluate_enqueued(db, tenant.id, list(result.applied.billing_customers), result.evaluation)
    assert [(c.kind, c.status) for c in await stored_cases(db, tenant.id)] == [("payment_failed", "open")]
    assert await queued(db, tenant.id, EVALUATE_CUSTOMERS) == []


async def test_an_evaluation_already_sent_is_left_to_its_job(db, tenant) -> None:
    result = await process_hard_decline(db, tenant.id)
    assert result.evaluation is not None
    async with db.system_unit_of_work() as session:
        sent = update(OutboxJob).where(OutboxJob.id == result.evaluation).values(dispatched_at=utcnow())
        await session.execute(sent)

    await evaluate_enqueued(db, tenant.id, list(result.applied.billing_customers), result.evaluation)
    assert await stored_cases(db, tenant.id) == []  # the job the relay sent opens it, once
    assert len(await queued(db, tenant.id, EVALUATE_CUSTOMERS)) == 1


async def test_a_hard_decline_webhook_becomes_an_open_case_through_the_jobs(settings, db, tenant) -> None:
    started = payloads.stripe_subscription_event("customer.subscription.created", at=NOW - timedelta(days=30))
    failed = payloads.stripe_invoice_payment_failed(at=NOW - timedelta(minutes=1), decline_code="stolen_card")
    async with running_jobs(settings, db, consume=True):
        ids = await receive(db, tenant.id, started, failed)
        async with db.tenant_unit_of_work(tenant.id) as session:
            enqueue(session, "ingest.process_inbox", tenant_id=tenant.id, inbox_ids=[str(i) for i in ids])

        async def opened() -> bool:
            return [(c.kind, c.status) for c in await stored_cases(db, tenant.id)] == [("payment_failed", "open")]

        await eventually(opened, timeout=30)
    [case] = await stored_cases(db, tenant.id)
    assert case.details["decline_class"] == "hard"


async def test_a_usage_only_batch_queues_no_evaluation(db, tenant) -> None:
    item = {
        "type": "track",
        "event": "report_exported",
        "customerId": "acct_1",
        "messageId": "m1",
        "timestamp": NOW.isoformat(),
    }
    async with db.tenant_unit_of_work(tenant.id) as session:
        result = await apply_events(session, tenant.id, normalize_item(item))
    assert result.changed_customers and not result.billing_customers


async def tier_event(
    db: Database, tenant_id: uuid.UUID, customer_id: uuid.UUID, before: str | None, after: str, at
) -> None:
    """A tier change as scoring records it: the domain event, and its consumers notified."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        payload = {"from": before, "to": after, "score": 0.6, "model_version": "rules", "as_of": at.isoformat()}
        session.add(DomainEvent(tenant_id=tenant_id, type=TIER_CHANGED, subject_id=customer_id, payload=payload))
        notify(session, tenant_id, TIER_CHANGED)
        notify(session, tenant_id, TIER_CHANGED)  # once per transaction, however often told


async def test_a_tier_rising_to_high_opens_a_high_risk_case(db, tenant) -> None:
    started = payloads.stripe_subscription_event("customer.subscription.created", at=NOW - timedelta(days=30))
    result = await apply_and_reconcile(db, tenant.id, started)
    [customer_id] = result.changed_customers
    await tier_event(db, tenant.id, customer_id, "medium", "high", NOW - timedelta(hours=1))
    assert len(await queued(db, tenant.id, CONSUME_TIER_CHANGES)) == 1
    report = await consume_tier_events(db, tenant.id)
    assert report.opened == 1
    [case] = await stored_cases(db, tenant.id)
    assert (case.kind, case.status, case.opened_at, case.revenue_at_risk) == (
        "high_risk",
        "open",
        NOW - timedelta(hours=1),
        2900,
    )
    again = await consume_tier_events(db, tenant.id, NOW + timedelta(minutes=5))
    assert (again.opened, again.events) == (0, 0)
    await tier_event(db, tenant.id, customer_id, "high", "low", NOW)
    await consume_tier_events(db, tenant.id, NOW + timedelta(minutes=10))
    [case] = await stored_cases(db, tenant.id)
    assert (case.status, case.resolution_reason) == ("recovered", "the risk tier fell to low")


async def test_a_settling_tier_event_is_reconciled_once_however_often_it_is_read(db, tenant) -> None:
    started = payloads.stripe_subscription_event("customer.subscription.created", at=NOW - timedelta(days=30))
    [customer_id] = (await apply_and_reconcile(db, tenant.id, started)).changed_customers
    await tier_event(db, tenant.id, customer_id, "medium", "critical", utcnow())  # within the feed's settling minute

    first = await consume_tier_events(db, tenant.id)
    again = await consume_tier_events(db, tenant.id)  # the cursor is still before it

    assert (first.customers, first.opened) == (1, 1)
    assert again.customers == 0
    assert [case.kind for case in await stored_cases(db, tenant.id)] == ["high_risk"]


async def test_the_sweep_closes_windows_and_verifies_recoveries(db, tenant) -> None:
    t0 = NOW - timedelta(days=45)
    started = payloads.stripe_subscription_event("customer.subscription.created", at=t0 - timedelta(days=30))
    failed = payloads.stripe_invoice_payment_failed(at=t0)
    other = payloads.stripe_subscription_event(
        "customer.subscription.created", customer_id="cus_B", subscription_id="sub_B", at=t0 - timedelta(days=30)
    )
    failed_b = payloads.stripe_invoice_payment_failed(customer_id="cus_B", subscription_id="sub_B", at=t0)
    paid_b = payloads.stripe_invoice_paid(customer_id="cus_B", subscription_id="sub_B", at=t0 + timedelta(days=1))
    await apply_and_reconcile(db, tenant.id, started, failed, other, failed_b, paid_b, now=t0 + timedelta(days=2))
    assert sorted(c.status for c in await stored_cases(db, tenant.id)) == ["open", "recovered"]
    report = await sweep_tenant_cases(db, tenant.id, usage=False, now=NOW)
    assert report.customers == 2
    cases = {c.status: c for c in await stored_cases(db, tenant.id)}
    assert cases["lost"].resolved_at == t0 + timedelta(days=30)
    assert cases["recovered"].verified_at == t0 + timedelta(days=15)
    assert (await sweep_tenant_cases(db, tenant.id, usage=False, now=NOW)).customers == 0
