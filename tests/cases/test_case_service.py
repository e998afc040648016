"""The cases service: scopes checked in the service, tenants kept apart, transitions and their errors."""

import uuid
from datetime import timedelta

import pytest

from churnsaver.backend.cases import service
from churnsaver.backend.cases.service import CaseFilter, CaseOrder
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from churnsaver.tenants.auth import AuthSubject, Scope, SubjectKind
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile, stored_case_events, stored_cases

T0 = utcnow().replace(microsecond=0) - timedelta(days=2)


def read_only(tenant_id: uuid.UUID) -> AuthSubject:
    return AuthSubject(tenant_id, SubjectKind.api_key, uuid.uuid4(), frozenset({Scope.read}))


def writer(tenant_id: uuid.UUID) -> AuthSubject:
    return AuthSubject(tenant_id, SubjectKind.api_key, uuid.uuid4(), frozenset({Scope.read, Scope.write}))


async def open_failure(db, tenant_id: uuid.UUID, customer: str = "cus_A", amount: int = 2900):
    started = payloads.stripe_subscription_event(
        "customer.subscription.created",
        customer_id=customer,
        subscription_id=f"sub_{customer}",
        at=T0 - timedelta(days=40),
    )
    failed = payloads.stripe_invoice_payment_failed(
        customer_id=customer, subscription_id=f"sub_{customer}", at=T0, amount_due=amount
    )
    await apply_and_reconcile(db, tenant_id, started, failed)
    return next(case for case in await stored_cases(db, tenant_id) if case.details.get("amount") == amount)


async def call(db, tenant_id: uuid.UUID, function, *args, **kwargs):
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await function(session, *args, **kwargs)


async def test_a_read_only_key_reads_cases_but_cannot_change_them(db, tenant) -> None:
    case = await open_failure(db, tenant.id)
    subject = read_only(tenant.id)
    assert (await call(db, tenant.id, service.get_case, subject, case.id)).id == case.id
    for change in (
        lambda s: service.dismiss(s, subject, case.id, "spam"),
        lambda s: service.mark_lost(s, subject, case.id),
        lambda s: service.add_note(s, subject, case.id, "hi"),
        lambda s: service.assign(s, subject, case.id, "ana"),
        lambda s: service.update_settings(s, subject, verify_days=7),
    ):
        with pytest.raises(PermissionDenied):
            async with db.tenant_unit_of_work(tenant.id) as session:
                await change(session)
    assert (await stored_cases(db, tenant.id))[0].status == "open"


async def test_another_tenants_case_is_not_found(db, tenant, other_tenant) -> None:
    case = await open_failure(db, tenant.id)
    stranger = writer(other_tenant.id)
    for attempt in (
        lambda s: service.get_case(s, stranger, case.id),
        lambda s: service.case_events(s, stranger, case.id),
        lambda s: service.dismiss(s, stranger, case.id, "mine now"),
        lambda s: service.reopen(s, stranger, case.id),
        lambda s: service.mark_lost(s, stranger, case.id),
        lambda s: service.add_note(s, stranger, case.id, "hello"),
        lambda s: service.assign(s, stranger, case.id, "me"),
    ):
        with pytest.raises(NotFound):
            async with db.tenant_unit_of_work(other_tenant.id) as session:
                await attempt(session)
    page = await call(db, other_tenant.id, service.list_cases, stranger)
    assert page.rows == []
    assert (await stored_cases(db, tenant.id))[0].status == "open"


async def test_dismiss_reopen_and_mark_lost_are_recorded_with_their_actor(db, tenant) -> None:
    case = await open_failure(db, tenant.id)
    subject = writer(tenant.id)
    dismissed = await call(db, tenant.id, service.dismiss, subject, case.id, "  test account  ")
    assert (dismissed.status, dismissed.resolution_reason, dismissed.manual_status) == (
        "dismissed",
        "test account",
        "dismissed",
    )
    with pytest.raises(Conflict, match="only an open case"):
        await call(db, tenant.id, service.dismiss, subject, case.id, "again")
    reopened = await call(db, tenant.id, service.reopen, subject, case.id)
    assert (reopened.status, reopened.resolved_at, reopened.manual_status) == ("open", None, None)
    with pytest.raises(Conflict, match="already open"):
        await call(db, tenant.id, service.reopen, subject, case.id)
    lost = await call(db, tenant.id, service.mark_lost, subject, case.id, None)
    assert (lost.status, lost.resolution_reason) == ("lost", "marked lost")
    manual = [e for e in await stored_case_events(db, tenant.id) if e.key.startswith("manual:")]
    assert [(e.data["manual"], e.data["from"], e.data["to"]) for e in manual] == [
        ("dismissed", "open", "dismissed"),
        ("reopened", "dismissed", "open"),
        ("lost", "open", "lost"),
    ]
    assert {e.actor for e in manual} == {subject.log_label}


async def test_a_manual_decision_survives_the_next_evaluation(db, tenant) -> None:
    case = await open_failure(db, tenant.id)
    await call(db, tenant.id, service.dismiss, writer(tenant.id), case.id, "handled by phone")
    paid = payloads.stripe_invoice_paid(customer_id="cus_A", subscription_id="sub_cus_A", at=utcnow())
    await apply_and_reconcile(db, tenant.id, paid)
    [stored] = await stored_cases(db, tenant.id)
    assert (stored.status, stored.resolution_reason) == ("dismissed", "handled by phone")


async def test_bad_input_is_refused_with_a_reason(db, tenant) -> None:
    case = await open_failure(db, tenant.id)
    subject = writer(tenant.id)
    with pytest.raises(InvalidInput, match="reason is required"):
        await call(db, tenant.id, service.dismiss, subject, case.id, "   ")
    with pytest.raises(InvalidInput, match="at most 10,000"):
        await call(db, tenant.id, service.add_note, subject, case.id, "x" * 10_001)
    with pytest.raises(InvalidInput, match="blank"):
        await call(db, tenant.id, service.assign, subject, case.id, " ")
    with pytest.raises(InvalidInput, match="usage_drop_ratio"):
        await call(db, tenant.id, service.update_settings, subject, usage_drop_ratio=1.5)
    with pytest.raises(InvalidInput, match="not a case kind"):
        await call(db, tenant.id, service.update_settings, subject, window_days={"nope": 3})
    with pytest.raises(InvalidInput, match="low tier"):
        await call(db, tenant.id, service.update_settings, subject, case_tiers=["low", "high"])


async def test_notes_and_assignment_go_on_the_timeline(db, tenant) -> None:
    case = await open_failure(db, tenant.id)
    subject = writer(tenant.id)
    await call(db, tenant.id, service.add_note, subject, case.id, "left a voicemail")
    assigned = await call(db, tenant.id, service.assign, subject, case.id, "ana@merchant.test")
    assert assigned.assignee == "ana@merchant.test"
    page = await call(db, tenant.id, service.case_events, subject, case.id)
    assert [e.type for e in page.rows] == ["opened", "note", "assigned"]
    assert page.rows[1].data == {"text": "left a voicemail"}
    found = await call(db, tenant.id, service.list_cases, subject, filter=CaseFilter(assignee="ana@merchant.test"))
    assert [c.id for c in found.rows] == [case.id]


async def test_lists_sort_by_priority_or_opening_and_filter(db, tenant) -> None:
    small = await open_failure(db, tenant.id, "cus_S", 1000)
    large = await open_failure(db, tenant.id, "cus_L", 9000)
    subject = read_only(tenant.id)
    by_priority = await call(db, tenant.id, service.list_cases, subject, first=1)
    assert [c.id for c in by_priority.rows] == [large.id] and by_priority.has_next_page
    rest = await call(db, tenant.id, service.list_cases, subject, first=1, after=by_priority.cursors[-1])
    assert [c.id for c in rest.rows] == [small.id]
    newest = await call(db, tenant.id, service.list_cases, subject, order=CaseOrder.OPENED_AT_DESC)
    assert {c.id for c in newest.rows} == {small.id, large.id}
    # Opened two days ago with a one-hour SLA and never touched: overdue.
    overdue = await call(db, tenant.id, service.list_cases, subject, filter=CaseFilter(overdue=True))
    assert len(overdue.rows) == 2 and all(service.is_overdue(c) for c in overdue.rows)
    await call(db, tenant.id, service.touch, tenant.id, small.id, utcnow(), "campaign:test")
    overdue = await call(db, tenant.id, service.list_cases, subject, filter=CaseFilter(overdue=True))
    assert [c.id for c in overdue.rows] == [large.id]
    none = await call(db, tenant.id, service.list_cases, subject, filter=CaseFilter(kind=["usage_drop"]))
    assert none.rows == []
    with pytest.raises(InvalidInput, match="cursor"):
        await call(db, tenant.id, service.list_cases, subject, after="bogus")


async def test_settings_change_only_what_is_given(db, tenant) -> None:
    subject = writer(tenant.id)
    settings = await call(
        db, tenant.id, service.update_settings, subject, window_days={"payment_failed": 10}, verify_days=7
    )
    assert (settings.window_days["payment_failed"], settings.window_days["canceled"], settings.verify_days) == (
        10,
        30,
        7,
    )
    again = await call(db, tenant.id, service.get_settings, read_only(tenant.id))
    assert again == settings
    assert again.sla_minutes["payment_failed"] == 60 and again.case_tiers == ("critical", "high")
