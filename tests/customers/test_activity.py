"""The daily aggregates kept at ingest: exact counts and state, whatever the order and replays."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers import activity as aggregates
from churnsaver.backend.customers.activity import rebuild_aggregates
from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.models import CustomerDailyActivity, CustomerDailyState
from tests.risk.events import apply, billing, customer_ids, failure, usage

T0 = datetime(2026, 1, 5, tzinfo=UTC)


async def tables(db: Database, tenant_id: uuid.UUID) -> tuple[list[tuple], list[tuple]]:
    """Both daily tables of the tenant, by external id, sorted."""
    names = {value: key for key, value in (await customer_ids(db, tenant_id)).items()}
    async with db.tenant_unit_of_work(tenant_id) as session:
        activity = await session.execute(
            select(CustomerDailyActivity.customer_id, CustomerDailyActivity.name, CustomerDailyActivity.day)
            .add_columns(CustomerDailyActivity.count)
            .where(CustomerDailyActivity.tenant_id == tenant_id)
        )
        state = await session.execute(
            select(
                CustomerDailyState.customer_id,
                CustomerDailyState.day,
                CustomerDailyState.status,
                CustomerDailyState.plan,
                CustomerDailyState.mrr,
                CustomerDailyState.currency,
                CustomerDailyState.cancel_at_period_end,
                CustomerDailyState.state_at,
            ).where(CustomerDailyState.tenant_id == tenant_id)
        )
        return (
            sorted((names[row[0]], *row[1:]) for row in activity),
            sorted((names[row[0]], *row[1:]) for row in state),
        )


def random_history(seed: int) -> list:
    """Usage, failures and subscription events for a few customers, several a day saying
    different fields, so the newest-per-field rule and late refolds are exercised."""
    rng = random.Random(seed)
    events = []
    for number in range(4):
        customer = f"c{number}"
        for index in range(40):
            moment = T0 + timedelta(days=rng.randrange(6), minutes=rng.randrange(24 * 60))
            kind = rng.choice(["login", "export", "failure", "state", "state", "cancel"])
            key = f"{customer}-{index}"
            if kind in ("login", "export"):
                events.append(usage(customer, kind, moment, key))
            elif kind == "failure":
                events.append(failure(customer, moment, key, rng.choice(["hard", "soft"])))
            else:
                said = {
                    "status": rng.choice([None, "active", "past_due", "canceled"]),
                    "plan": rng.choice([None, "basic", "pro"]),
                    "mrr": rng.choice([None, 1000, 2000]),
                    "cancel_at_period_end": rng.choice([None, True, False]),
                }
                event_type = EventType.subscription_canceled if kind == "cancel" else EventType.subscription_updated
                events.append(billing(customer, event_type, moment, key, said))
    return events


def shuffled_batches(events: list, seed: int) -> list[list]:
    """The events in a random order, in random batches, a third of them delivered twice."""
    rng = random.Random(seed)
    deliveries = events + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    batches, start = [], 0
    while start < len(deliveries):
        size = rng.randint(1, 25)
        batches.append(deliveries[start : start + size])
        start += size
    return batches


async def test_counts_per_day_name_and_decline_class(db, tenant) -> None:
    day = datetime(2026, 1, 5, 8, tzinfo=UTC)
    events = [usage("c1", "login", day, "l1"), usage("c1", "login", day.replace(hour=23), "l2")]
    events += [usage("c1", "login", day + timedelta(days=1), "l3"), failure("c1", day, "f1", "hard")]
    events += [billing("c1", EventType.payment_failed, day, "f2", decline_code="insufficient_funds")]
    await apply(db, tenant.id, events)
    await apply(db, tenant.id, events[:3])  # replayed: counts nothing
    activity, _ = await tables(db, tenant.id)
    assert activity == [
        ("c1", "login", date(2026, 1, 5), 2),
        ("c1", "login", date(2026, 1, 6), 1),
        ("c1", "payment_failed", date(2026, 1, 5), 2),
        ("c1", "payment_failed:hard", date(2026, 1, 5), 1),
        ("c1", "payment_failed:soft", date(2026, 1, 5), 1),  # classified from its code
    ]


async def test_the_newest_event_of_a_day_wins_each_field_and_older_ones_fill_blanks(db, tenant) -> None:
    noon = datetime(2026, 1, 5, 12, tzinfo=UTC)
    newer = billing("c1", EventType.subscription_updated, noon, "newer", {"plan": "pro", "status": "active"})
    await apply(db, tenant.id, [newer])
    older = {"plan": "basic", "mrr": 900, "status": "trialing"}
    await apply(
        db, tenant.id, [billing("c1", EventType.subscription_updated, noon - timedelta(hours=3), "older", older)]
    )
    _, state = await tables(db, tenant.id)
    assert state == [("c1", date(2026, 1, 5), "active", "pro", 900, None, None, noon)]


async def test_incremental_aggregates_equal_a_rebuild_under_shuffles_and_replays(db, tenant, other_tenant) -> None:
    events = random_history(seed=7)
    for batch in shuffled_batches(events, seed=1):
        await apply(db, tenant.id, batch)
    await apply(db, other_tenant.id, events)  # the same events in one batch, in order
    incremental = await tables(db, tenant.id)
    assert incremental == await tables(db, other_tenant.id)
    assert len(incremental[0]) > 20 and len(incremental[1]) > 10

    async with db.tenant_unit_of_work(tenant.id) as session:
        await rebuild_aggregates(session, tenant.id)
    assert await tables(db, tenant.id) == incremental


async def test_a_rebuild_recovers_lost_aggregates_of_this_tenant_only(db, tenant, other_tenant, monkeypatch) -> None:
    monkeypatch.setattr(aggregates, "REBUILD_CUSTOMERS", 3)  # 4 customers: two groups
    events = random_history(seed=3)
    await apply(db, tenant.id, events)
    await apply(db, other_tenant.id, events[:20])
    expected = await tables(db, tenant.id)
    others = await tables(db, other_tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        for model in (CustomerDailyActivity, CustomerDailyState):
            await session.execute(model.__table__.delete().where(model.tenant_id == tenant.id))
    assert await tables(db, tenant.id) == ([], [])

    async with db.tenant_unit_of_work(tenant.id) as session:
        counts = await rebuild_aggregates(session, tenant.id)
    assert await tables(db, tenant.id) == expected
    assert counts == (len(expected[0]), len(expected[1]))
    assert await tables(db, other_tenant.id) == others
