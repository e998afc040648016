"""reconcile_customers: stored cases follow the derivation, and a re-run records nothing twice."""

import asyncio
from datetime import UTC, datetime, timedelta

from churnsaver.backend.cases import service
from churnsaver.backend.cases.publishing import case_events_channel
from churnsaver.backend.cases.reconcile import STALE_REASON, reconcile_customers
from churnsaver.backend.core.pubsub import IN_PROCESS
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.ingest.tasks import normalize_delivery
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.billing_stream import billing_stream
from tests.fixtures.cases import apply, apply_and_reconcile, reconcile, stored_case_events, stored_cases
from tests.fixtures.factories import create_tenant_with_key

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def started(at: datetime = T0 - timedelta(days=40)) -> dict:
    return payloads.stripe_subscription_event("customer.subscription.created", at=at, status="active")


async def test_reconciling_again_records_nothing_twice(db) -> None:
    tenant = await create_tenant_with_key(db)
    events = [e for d in billing_stream(1_500, seed=5) for e in normalize_delivery(d.source, d.body)]
    async with db.tenant_unit_of_work(tenant.id) as session:
        result = await apply_events(session, tenant.id, events)
    now = datetime(2025, 10, 1, tzinfo=UTC)
    first = await reconcile(db, tenant.id, result.changed_customers, now)
    cases, case_events = await stored_cases(db, tenant.id), await stored_case_events(db, tenant.id)
    assert first.opened == len(cases) > 20
    assert first.events == len(case_events)
    assert {case.status for case in cases} >= {"recovered", "lost"}
    again = await reconcile(db, tenant.id, result.changed_customers, now)
    assert (again.opened, again.updated, again.removed, again.events) == (0, 0, 0, 0)
    assert len(await stored_case_events(db, tenant.id)) == len(case_events)
    assert [(c.id, c.status, c.resolved_at) for c in await stored_cases(db, tenant.id)] == [
        (c.id, c.status, c.resolved_at) for c in cases
    ]


async def test_a_failure_opens_one_case_whose_transitions_are_case_events(db, tenant) -> None:
    failed = payloads.stripe_invoice_payment_failed(at=T0, decline_code="stolen_card", amount_due=4900)
    await apply_and_reconcile(db, tenant.id, started(), failed, now=T0 + timedelta(minutes=5))
    [case] = await stored_cases(db, tenant.id)
    assert (case.kind, case.status, case.opened_at, case.revenue_at_risk, case.currency) == (
        "payment_failed",
        "open",
        T0,
        4900,
        "USD",
    )
    assert case.details["decline_class"] == "hard"
    assert case.priority == 0.10 * 4900  # unscored: the rules' base rate
    paid = payloads.stripe_invoice_paid(at=T0 + timedelta(days=2))
    await apply_and_reconcile(db, tenant.id, paid, now=T0 + timedelta(days=3))
    [case] = await stored_cases(db, tenant.id)
    assert (case.status, case.resolved_at) == ("recovered", T0 + timedelta(days=2))
    events = await stored_case_events(db, tenant.id)
    assert [(e.type, e.key) for e in events] == [("opened", "opened"), ("status_changed", "status:recovered")]
    assert events[1].actor.startswith("event:stripe:evt_")


async def test_a_case_whose_trigger_turns_out_stale_is_deleted_or_dismissed_if_worked(db) -> None:
    for worked in (False, True):
        tenant = await create_tenant_with_key(db)
        failed = payloads.stripe_invoice_payment_failed(at=T0)
        await apply_and_reconcile(db, tenant.id, started(), failed, now=T0)
        [case] = await stored_cases(db, tenant.id)
        if worked:
            async with db.tenant_unit_of_work(tenant.id) as session:
                await service.add_note(session, AuthSubject.system(tenant.id), case.id, "called them")
        # Late news: the subscription had ended the day before the failure.
        ended = payloads.stripe_subscription_event(
            "customer.subscription.deleted", at=T0 - timedelta(days=1), status="canceled"
        )
        await apply_and_reconcile(db, tenant.id, ended, now=T0 + timedelta(hours=1))
        remaining = {c.kind: c for c in await stored_cases(db, tenant.id)}
        if worked:
            assert (remaining["payment_failed"].status, remaining["payment_failed"].resolution_reason) == (
                "dismissed",
                STALE_REASON,
            )
        else:
            assert "payment_failed" not in remaining
        assert "canceled" in remaining


async def test_case_events_are_published_after_the_commit(db, tenant) -> None:
    async with IN_PROCESS.subscribe(case_events_channel(tenant.id)) as messages:
        result = await apply(db, tenant.id, started(), payloads.stripe_invoice_payment_failed(at=T0))
        async with db.tenant_unit_of_work(tenant.id) as session:
            await reconcile_customers(session, tenant.id, result.changed_customers, T0)
            await asyncio.sleep(0.01)
            assert messages._queue.empty()  # not before the commit
        received = [await asyncio.wait_for(anext(messages), 10)]
        await asyncio.sleep(0.01)
        assert messages._queue.empty()
    assert [(m["type"], m["kind"], m["status"]) for m in received] == [("opened", "payment_failed", "open")]
