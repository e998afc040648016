"""Applying canonical events: customers by provider id, the timeline, and state by event time."""

import asyncio
import itertools
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.apply import ApplyResult, apply_events, check_event
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, SubscriptionState
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.ingest.tasks import normalize_delivery
from churnsaver.backend.integrations.stripe import events as stripe
from churnsaver.backend.integrations.whop import events as whop
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.billing_stream import StreamDelivery, billing_stream, with_duplicates
from tests.fixtures.factories import create_customer, create_tenant_with_key
from tests.fixtures.ingest_state import assert_same_state, ingest_state

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
PLAN_CHANGE = ("from_plan", "to_plan", "mrr_delta", "direction")


def canonical(*deliveries: dict) -> list[CanonicalEvent]:
    events = []
    for delivery in deliveries:
        normalize = stripe.normalize if delivery.get("object") == "event" else whop.normalize
        events += normalize(delivery)
    return events


async def apply(db: Database, tenant_id: uuid.UUID, *deliveries: dict) -> ApplyResult:
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await apply_events(session, tenant_id, canonical(*deliveries))


def identify(customer_id: str, at: datetime, key: str, **traits: object) -> CanonicalEvent:
    return CanonicalEvent(
        type=EventType.identify,
        occurred_at=at,
        source="api",
        dedupe_key=key,
        customer=CustomerRef("api", customer_id),
        traits=traits,
    )


async def test_a_first_event_creates_the_customer_its_identity_subscription_and_timeline(db, tenant) -> None:
    delivery = payloads.whop_payment_succeeded(
        user_id="user_New", membership_id="mem_New", at=T0, total=29.0, email="new@example.com", name="New Member"
    )
    result = await apply(db, tenant.id, delivery)
    changed = result.changed_customers
    assert result == ApplyResult(
        received=1,
        applied=1,
        duplicates=0,
        customers_created=1,
        subscriptions_touched=1,
        changed_customers=changed,
        billing_customers=changed,
    )
    async with db.tenant_session(tenant.id) as session:
        [customer_id] = (await session.execute(select(Customer.id).where(Customer.tenant_id == tenant.id))).scalars()
    # The one customer whose risk must be scored again, and whose cases evaluated again (a payment).
    assert changed == {customer_id}

    state = await ingest_state(db, tenant.id)
    [(external_id, email, name, _phone, traits)] = state.customers
    assert (external_id, email, name, traits) == ("user_New", "new@example.com", "New Member", "{}")
    assert state.identities == [("whop", "user_New", "user_New")]
    subscription = state.subscription("whop", "mem_New")
    assert subscription | {"state_key": None} == {
        "provider": "whop",
        "external_id": "mem_New",
        "customer": "user_New",
        "status": "active",
        "plan": "plan_Pro",
        "mrr": 2900,
        "currency": "USD",
        "current_period_end": None,
        "cancel_at_period_end": False,
        "state_at": T0,
        "state_key": None,
    }
    assert subscription["state_key"] == delivery["id"]
    assert state.timeline_types() == {"payment_succeeded": 1}


async def test_applying_the_same_events_again_changes_nothing(db, tenant) -> None:
    deliveries = [
        payloads.whop_membership_activated(user_id="user_Idem", membership_id="mem_Idem", at=T0),
        payloads.whop_payment_failed(user_id="user_Idem", membership_id="mem_Idem", at=T0 + timedelta(days=30)),
        payloads.whop_membership_cancel_at_period_end_changed(
            user_id="user_Idem", membership_id="mem_Idem", at=T0 + timedelta(days=31)
        ),
    ]
    first = await apply(db, tenant.id, *deliveries)
    before = await ingest_state(db, tenant.id)

    again = await apply(db, tenant.id, *deliveries, *deliveries)
    assert (again.applied, again.duplicates, again.customers_created) == (0, 6, 0)
    assert await ingest_state(db, tenant.id) == before
    assert first.applied == 3
    assert before.timeline_types() == {
        "subscription_started": 1,
        "payment_failed": 1,
        "subscription_updated": 1,
        "cancel_scheduled": 1,
    }


async def test_a_duplicate_within_a_batch_counts_once(db, tenant) -> None:
    delivery = payloads.stripe_invoice_paid(customer_id="cus_Twice", subscription_id="sub_Twice", at=T0)
    result = await apply(db, tenant.id, delivery, delivery)
    assert (result.applied, result.duplicates) == (1, 1)
    assert (await ingest_state(db, tenant.id)).timeline_types() == {"payment_succeeded": 1}


async def test_an_older_event_never_overwrites_newer_state(db, tenant) -> None:
    canceled = payloads.whop_membership_deactivated(user_id="user_Late", membership_id="mem_Late", at=T0 + timedelta(1))
    activated = payloads.whop_membership_activated(user_id="user_Late", membership_id="mem_Late", at=T0)
    await apply(db, tenant.id, canceled)
    await apply(db, tenant.id, activated)

    state = await ingest_state(db, tenant.id)
    subscription = state.subscription("whop", "mem_Late")
    assert subscription["status"] == "canceled"
    assert (subscription["state_at"], subscription["state_key"]) == (T0 + timedelta(1), canceled["id"])
    assert state.timeline_types() == {"subscription_started": 1, "subscription_canceled": 1}


async def test_a_late_event_still_gives_the_fields_no_newer_event_says(db, tenant) -> None:
    # The newer event says only the status; the older one is the only one to name plan and price.
    started = payloads.stripe_subscription_event(
        "customer.subscription.created", customer_id="cus_Fill", subscription_id="sub_Fill", at=T0
    )
    failed = payloads.stripe_invoice_payment_failed(
        customer_id="cus_Fill", subscription_id="sub_Fill", at=T0 + timedelta(days=30)
    )
    await apply(db, tenant.id, failed)
    assert (await ingest_state(db, tenant.id)).subscription("stripe", "sub_Fill")["plan"] is None
    await apply(db, tenant.id, started)

    subscription = (await ingest_state(db, tenant.id)).subscription("stripe", "sub_Fill")
    assert (subscription["status"], subscription["plan"], subscription["mrr"]) == ("past_due", "price_Pro", 2900)
    assert subscription["state_key"] == failed["id"]


async def test_a_subscription_first_named_without_a_status_is_unknown_until_one_is_said(db, tenant) -> None:
    zero_invoice = payloads.stripe_invoice_paid(
        customer_id="cus_Unk", subscription_id="sub_Unk", amount_paid=0, at=T0 + timedelta(hours=1)
    )
    await apply(db, tenant.id, zero_invoice)
    assert (await ingest_state(db, tenant.id)).subscription("stripe", "sub_Unk")["status"] == "unknown"
    trial = payloads.stripe_subscription_event(
        "customer.subscription.created", customer_id="cus_Unk", subscription_id="sub_Unk", status="trialing", at=T0
    )
    await apply(db, tenant.id, trial)
    assert (await ingest_state(db, tenant.id)).subscription("stripe", "sub_Unk")["status"] == "trialing"


async def test_scheduling_and_unscheduling_a_cancellation_are_derived(db, tenant) -> None:
    ids = {"user_id": "user_Sch", "membership_id": "mem_Sch"}
    changes = [
        payloads.whop_membership_activated(**ids, at=T0),
        payloads.whop_membership_cancel_at_period_end_changed(**ids, at=T0 + timedelta(days=3)),
        payloads.whop_membership_cancel_at_period_end_changed(
            **ids, at=T0 + timedelta(days=5), cancel_at_period_end=False
        ),
    ]
    await apply(db, tenant.id, *changes)
    state = await ingest_state(db, tenant.id)
    assert state.timeline_types(derived=True) == {"cancel_scheduled": 1, "cancel_unscheduled": 1}
    assert state.subscription("whop", "mem_Sch")["cancel_at_period_end"] is False


async def test_a_price_change_is_a_plan_change_with_its_mrr_delta(db, tenant) -> None:
    ids = {"customer_id": "cus_Up", "subscription_id": "sub_Up"}
    basic = payloads.stripe_price("price_Basic", unit_amount=900)
    team = payloads.stripe_price("price_Team", unit_amount=1500)
    await apply(
        db,
        tenant.id,
        payloads.stripe_subscription_event("customer.subscription.created", **ids, at=T0, prices=[(basic, 1)]),
        payloads.stripe_subscription_event(**ids, at=T0 + timedelta(days=10), prices=[(team, 3)]),
        payloads.stripe_subscription_event(**ids, at=T0 + timedelta(days=20), prices=[(basic, 2)]),
    )
    state = await ingest_state(db, tenant.id)
    changes = sorted(
        (at, json.loads(properties))
        for (_customer, kind, at, _source, _key, properties) in state.timeline
        if kind == EventType.plan_changed
    )
    assert [{key: change[key] for key in PLAN_CHANGE} for _at, change in changes] == [
        {"from_plan": "price_Basic", "to_plan": "price_Team", "mrr_delta": 3600, "direction": "upgrade"},
        {"from_plan": "price_Team", "to_plan": "price_Basic", "mrr_delta": -2700, "direction": "downgrade"},
    ]
    assert state.subscription("stripe", "sub_Up")["mrr"] == 1800


async def test_derived_events_are_the_same_whatever_order_the_changes_arrive_in(db, tenant, other_tenant) -> None:
    ids = {"customer_id": "cus_Ord", "subscription_id": "sub_Ord"}
    basic = payloads.stripe_price("price_Basic", unit_amount=900)
    pro = payloads.stripe_price("price_Pro", unit_amount=2900)
    events = [
        payloads.stripe_subscription_event("customer.subscription.created", **ids, at=T0, prices=[(basic, 1)]),
        payloads.stripe_subscription_event(**ids, at=T0 + timedelta(days=1), prices=[(pro, 1)]),
        payloads.stripe_subscription_event(
            **ids, at=T0 + timedelta(days=2), prices=[(pro, 1)], cancel_at_period_end=True
        ),
        payloads.stripe_subscription_event(**ids, at=T0 + timedelta(days=3), prices=[(basic, 1)]),
    ]
    for event in events:
        await apply(db, tenant.id, event)
    for event in [events[3], events[0], events[2], events[1]]:
        await apply(db, other_tenant.id, event)

    in_order, shuffled = await ingest_state(db, tenant.id), await ingest_state(db, other_tenant.id)
    assert shuffled == in_order
    assert in_order.timeline_types(derived=True) == {"plan_changed": 2, "cancel_scheduled": 1, "cancel_unscheduled": 1}


async def test_a_new_provider_id_joins_the_customer_with_the_same_email(db, tenant) -> None:
    await apply(db, tenant.id, payloads.whop_payment_succeeded(user_id="user_Same", email="same@example.com", at=T0))
    await apply(
        db,
        tenant.id,
        payloads.stripe_invoice_paid(customer_id="cus_Same", email="Same@Example.com", at=T0 + timedelta(hours=1)),
    )
    state = await ingest_state(db, tenant.id)
    assert [customer[0] for customer in state.customers] == ["user_Same"]
    assert state.identities == [("stripe", "cus_Same", "user_Same"), ("whop", "user_Same", "user_Same")]


async def test_a_new_provider_id_joins_the_customer_imported_under_that_id(db, tenant) -> None:
    await create_customer(db, tenant.id, "user_Imported", traits={"segment": "vip"})
    result = await apply(db, tenant.id, payloads.whop_payment_failed(user_id="user_Imported", at=T0))
    assert result.customers_created == 0
    state = await ingest_state(db, tenant.id)
    assert [customer[0] for customer in state.customers] == ["user_Imported"]
    assert state.identities == [("whop", "user_Imported", "user_Imported")]


async def test_profiles_and_traits_follow_the_newest_event_whatever_arrives_last(db, tenant) -> None:
    old = payloads.whop_payment_succeeded(user_id="user_Moved", email="old@example.com", name="Old Name", at=T0)
    new = payloads.whop_payment_succeeded(
        user_id="user_Moved", email="new@example.com", name="New Name", at=T0 + timedelta(days=30)
    )
    await apply(db, tenant.id, new)
    await apply(db, tenant.id, old)
    [(_, email, name, _phone, _traits)] = (await ingest_state(db, tenant.id)).customers
    assert (email, name) == ("new@example.com", "New Name")

    async with db.tenant_unit_of_work(tenant.id) as session:
        await apply_events(session, tenant.id, [identify("acct_T", T0 + timedelta(days=2), "m2", plan="team", seats=5)])
        await apply_events(
            session, tenant.id, [identify("acct_T", T0 + timedelta(days=1), "m1", plan="solo", beta=True)]
        )
    traits = {customer[0]: customer[4] for customer in (await ingest_state(db, tenant.id)).customers}
    assert traits["acct_T"] == '{"beta": true, "plan": "team", "seats": 5}'


async def test_traits_no_event_gave_are_kept(db, tenant) -> None:
    await create_customer(db, tenant.id, "acct_Kept", traits={"imported": "yes", "plan": "csv"})
    async with db.tenant_unit_of_work(tenant.id) as session:
        await apply_events(session, tenant.id, [identify("acct_Kept", T0, "k1", plan="api")])
    traits = {customer[0]: customer[4] for customer in (await ingest_state(db, tenant.id)).customers}
    assert traits["acct_Kept"] == '{"imported": "yes", "plan": "api"}'


async def test_the_same_provider_id_in_two_tenants_is_two_customers(db, tenant, other_tenant) -> None:
    delivery = payloads.whop_payment_succeeded(user_id="user_Both", membership_id="mem_Both", at=T0)
    await apply(db, tenant.id, delivery)
    await apply(db, other_tenant.id, delivery)
    for tenant_id in (tenant.id, other_tenant.id):
        state = await ingest_state(db, tenant_id)
        assert [customer[0] for customer in state.customers] == ["user_Both"]
        assert state.timeline_types() == {"payment_succeeded": 1}


@pytest.mark.parametrize(
    "event",
    [
        CanonicalEvent("x" * 101, T0, "api", "k", CustomerRef("api", "c")),
        CanonicalEvent("usage", T0, "api", "k", CustomerRef("api", "c" * 256)),
        CanonicalEvent("usage", T0.replace(tzinfo=None), "api", "k", CustomerRef("api", "c")),
        CanonicalEvent("usage", T0, "api", "k\x00", CustomerRef("api", "c")),
        CanonicalEvent("usage", T0, "api", "k", CustomerRef("api", "c"), SubscriptionState("s", status="s" * 33)),
    ],
)
def test_an_event_that_cannot_be_stored_is_refused_alone(event: CanonicalEvent) -> None:
    with pytest.raises(ValueError):
        check_event(event)


STREAM_EVENTS = 10_000
SUBSCRIPTION_FIELDS = ("status", "plan", "mrr", "currency", "current_period_end", "cancel_at_period_end")


@pytest.fixture(scope="module")
def stream() -> list[StreamDelivery]:
    return billing_stream(STREAM_EVENTS)


def events_of(deliveries: list[StreamDelivery]) -> list[CanonicalEvent]:
    return [event for delivery in deliveries for event in normalize_delivery(delivery.source, delivery.body)]


async def apply_in_batches(db: Database, tenant_id: uuid.UUID, events: list[CanonicalEvent], sizes) -> ApplyResult:
    applied = duplicates = 0
    start = 0
    while start < len(events):
        batch = events[start : start + next(sizes)]
        start += len(batch)
        async with db.tenant_unit_of_work(tenant_id) as session:
            result = await apply_events(session, tenant_id, batch)
        applied, duplicates = applied + result.applied, duplicates + result.duplicates
    return ApplyResult(len(events), applied, duplicates, 0, 0)


def random_sizes(rng: random.Random) -> Iterator[int]:
    while True:
        yield rng.randint(50, 500)


def newest_said(events: list[CanonicalEvent]) -> tuple[dict, dict]:
    """What the newest event giving each field says: per subscription, and per customer (profile, traits).
    An oracle written apart from the code under test."""
    subscriptions: dict[tuple[str, str], dict] = defaultdict(dict)
    customers: dict[str, dict] = defaultdict(dict)
    for event in sorted(events, key=lambda e: (e.occurred_at, e.dedupe_key)):
        if event.subscription:
            said = {field: getattr(event.subscription, field) for field in SUBSCRIPTION_FIELDS}
            key = (event.customer.provider, event.subscription.external_id)
            subscriptions[key] |= {field: value for field, value in said.items() if value is not None}
        profile = {"email": event.customer.email, "name": event.customer.name, "phone": event.customer.phone}
        customers[event.customer.provider_id] |= {field: value for field, value in profile.items() if value}
        customers[event.customer.provider_id] |= {f"trait:{name}": value for name, value in event.traits.items()}
    return subscriptions, customers


@pytest.mark.slow
async def test_replays_in_any_order_with_duplicates_end_in_the_same_state(db, stream) -> None:
    events = events_of(stream)
    in_order = await create_tenant_with_key(db)
    result = await apply_in_batches(db, in_order.id, events, itertools.repeat(500))
    assert (result.applied, result.duplicates) == (STREAM_EVENTS, 0)
    expected = await ingest_state(db, in_order.id)

    # Nothing lost, nothing counted twice: each event is on the timeline exactly once.
    assert expected.timeline_types(derived=False) == Counter(event.type for event in events)
    assert set(expected.timeline.values()) == {1}
    assert expected.timeline_types(derived=True).keys() == {"plan_changed", "cancel_scheduled", "cancel_unscheduled"}
    # And the state is what the newest event saying each field says.
    subscriptions, customers = newest_said(events)
    assert len(expected.subscriptions) == len(subscriptions) > 300
    for key, said in subscriptions.items():
        # Stored as "unknown" and False while no event has said them.
        said = {"status": "unknown", **said, "cancel_at_period_end": bool(said.get("cancel_at_period_end"))}
        stored = expected.subscription(*key)
        assert {field: stored[field] for field in said} == said, key
    for external_id, email, name, phone, traits in expected.customers:
        said = customers[external_id]
        profile = {"email": email, "name": name, "phone": phone} | {
            f"trait:{k}": v for k, v in json.loads(traits).items()
        }
        assert {field: profile[field] for field in said} == said, external_id

    for seed in (1, 2, 3):
        rng = random.Random(seed)
        replay = with_duplicates(stream, 0.10, rng)
        rng.shuffle(replay)
        tenant = await create_tenant_with_key(db)
        result = await apply_in_batches(db, tenant.id, events_of(replay), random_sizes(rng))
        assert (result.applied, result.duplicates) == (STREAM_EVENTS, STREAM_EVENTS // 10)
        assert_same_state(await ingest_state(db, tenant.id), expected)


@pytest.mark.slow
async def test_concurrent_batches_end_in_the_same_state_as_one_at_a_time(db) -> None:
    deliveries = billing_stream(2_000, seed=3)
    in_order = await create_tenant_with_key(db)
    await apply_in_batches(db, in_order.id, events_of(deliveries), itertools.repeat(500))
    rng = random.Random(5)
    replay = with_duplicates(deliveries, 0.2, rng)
    rng.shuffle(replay)
    events = events_of(replay)
    pending = [events[start : start + 37] for start in range(0, len(events), 37)]
    tenant = await create_tenant_with_key(db)

    async def worker() -> None:
        while pending:
            batch = pending.pop()
            # As a job would be retried: a deadlock PostgreSQL broke, or SQLite's writer lock timing out.
            for attempt in itertools.count():
                try:
                    async with db.tenant_unit_of_work(tenant.id) as session:
                        await apply_events(session, tenant.id, batch)
                    break
                except DBAPIError:
                    assert attempt < 5

    await asyncio.gather(*(worker() for _ in range(6)))
    assert_same_state(await ingest_state(db, tenant.id), await ingest_state(db, in_order.id))
