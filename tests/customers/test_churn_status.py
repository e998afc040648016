"""A customer's churn status: churned (with the ending event's time) once its subscriptions have
all ended, active again when one runs again; labelled imports set the same."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.ingest.imports import CustomerColumns, import_customers
from tests.customers.test_apply import canonical
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.risk_activity import apply_items, subscribed, track
from tests.risk.events import apply, billing

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CANCELED = T0 + timedelta(days=40, hours=3)


async def customer(db: Database, tenant_id: uuid.UUID, external_id: str) -> Customer:
    async with db.tenant_session(tenant_id) as session:
        found = await CustomerRepository(session, tenant_id).get_by_external_id(external_id)
    assert found is not None
    return found


async def test_a_canceled_subscription_makes_its_customer_churned_as_of_the_ending_event(db, tenant) -> None:
    await apply_items(db, tenant.id, [subscribed("leaves", T0), track("leaves", "subscription.canceled", CANCELED)])
    # Later events about the ended subscription (a refund) and usage do not move the churn time.
    refund = billing("leaves", EventType.refund, CANCELED + timedelta(days=2), "refund", {"external_id": "leaves"})
    await apply(db, tenant.id, [refund])
    await apply_items(db, tenant.id, [track("leaves", "login", CANCELED + timedelta(days=3))])

    churned = await customer(db, tenant.id, "leaves")
    assert (churned.status, churned.churned_at) == ("churned", CANCELED)


async def test_a_resumed_subscription_reinstates_the_customer(db, tenant) -> None:
    await apply_items(db, tenant.id, [subscribed("back", T0), track("back", "subscription.canceled", CANCELED)])
    await apply_items(db, tenant.id, [track("back", "subscription.resumed", CANCELED + timedelta(days=5))])

    back = await customer(db, tenant.id, "back")
    assert (back.status, back.churned_at) == ("active", None)


async def test_a_late_cancellation_older_than_a_resume_leaves_the_customer_active(db, tenant) -> None:
    await apply_items(db, tenant.id, [subscribed("late", T0), track("late", "subscription.resumed", CANCELED)])
    await apply_items(db, tenant.id, [track("late", "subscription.canceled", CANCELED - timedelta(days=1))])

    late = await customer(db, tenant.id, "late")
    assert (late.status, late.churned_at) == ("active", None)


async def test_a_customer_is_churned_only_once_every_subscription_has_ended(db, tenant) -> None:
    active = {"status": "active", "plan": "pro", "mrr": 2000}
    ended = {"status": "canceled"}
    second_end = CANCELED + timedelta(days=10)
    await apply(
        db,
        tenant.id,
        [
            billing("two", EventType.subscription_started, T0, "a-start", {**active, "external_id": "sub_a"}),
            billing("two", EventType.subscription_started, T0, "b-start", {**active, "external_id": "sub_b"}),
            billing("two", EventType.subscription_canceled, CANCELED, "a-end", {**ended, "external_id": "sub_a"}),
        ],
    )
    assert (await customer(db, tenant.id, "two")).status == "active"

    await apply(
        db,
        tenant.id,
        [billing("two", EventType.subscription_canceled, second_end, "b-end", {**ended, "external_id": "sub_b"})],
    )
    two = await customer(db, tenant.id, "two")
    assert (two.status, two.churned_at) == ("churned", second_end)

    restart = {**active, "external_id": "sub_c"}
    await apply(db, tenant.id, [billing("two", EventType.subscription_started, second_end, "c-start", restart)])
    again = await customer(db, tenant.id, "two")
    assert (again.status, again.churned_at) == ("active", None)


async def test_whop_deactivation_churns_and_reactivation_reinstates(db, tenant) -> None:
    member = {"user_id": "user_Wh0p", "membership_id": "mem_Wh0p"}
    async with db.tenant_unit_of_work(tenant.id) as session:
        events = canonical(
            payloads.whop_membership_activated(**member, at=T0),
            payloads.whop_membership_deactivated(**member, at=CANCELED),
        )
        await apply_events(session, tenant.id, events)
    churned = await customer(db, tenant.id, "user_Wh0p")
    assert (churned.status, churned.churned_at) == ("churned", CANCELED)

    async with db.tenant_unit_of_work(tenant.id) as session:
        again = canonical(payloads.whop_membership_activated(**member, at=CANCELED + timedelta(days=7)))
        await apply_events(session, tenant.id, again)
    back = await customer(db, tenant.id, "user_Wh0p")
    assert (back.status, back.churned_at) == ("active", None)


async def test_a_labelled_import_sets_the_status_and_the_churn_date(db, tenant, tmp_path: Path) -> None:
    path = tmp_path / "labelled.csv"
    path.write_text("id,churned,churned_on\nleft,yes,2026-04-02\nstays,no,\nunlabelled,,\n")
    columns = CustomerColumns(id="id", label="churned", churn_date="churned_on")
    await import_customers(db, tenant.id, path, columns, on_progress=lambda _: None)

    left = await customer(db, tenant.id, "left")
    assert (left.status, left.churned_at) == ("churned", datetime(2026, 4, 2, tzinfo=UTC))
    assert (await customer(db, tenant.id, "stays")).status == "active"
    assert (await customer(db, tenant.id, "unlabelled")).status == "active"

    # Re-imported without a label, the known status stays; labelled not churned, it is active again.
    path.write_text("id,churned,churned_on\nleft,,\n")
    await import_customers(db, tenant.id, path, columns, on_progress=lambda _: None)
    assert (await customer(db, tenant.id, "left")).status == "churned"
    path.write_text("id,churned,churned_on\nleft,no,\n")
    await import_customers(db, tenant.id, path, columns, on_progress=lambda _: None)
    assert (await customer(db, tenant.id, "left")).status == "active"
