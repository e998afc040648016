"""Scoring stores the current score, appends history, records tier changes, and does it once."""

from datetime import timedelta

import pytest

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk import scoring
from churnsaver.backend.risk.scoring import score_customers, score_tenant
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.risk_activity import (
    apply_items,
    customer_ids,
    logins,
    payment_failures,
    seed_two_customers,
    stored,
    subscribed,
)


async def test_scores_are_stored_with_reasons_history_and_a_tier_event_for_the_customer_at_risk(
    db: Database, tenant: TenantWithKey
):
    ids = await seed_two_customers(db, tenant.id)
    as_of = utcnow()
    async with db.tenant_unit_of_work(tenant.id) as session:
        report = await score_customers(session, tenant.id, as_of)

    current, history, events = await stored(db, tenant.id)
    assert (report.scored, report.model_version) == (2, "rules")
    risky, healthy = current[ids["risky"]], current[ids["healthy"]]
    assert (risky.score, risky.tier, risky.model_version, risky.as_of) == (
        pytest.approx(0.75),
        "critical",
        "rules",
        as_of,
    )
    assert [reason["feature"] for reason in risky.reasons] == [
        "payment_failures_30d",
        "days_since_last_activity",
        "active_days_30d",
    ]
    assert risky.reasons[0]["label"] == "2 payment failures in 30 days"
    assert (healthy.score, healthy.tier, healthy.reasons) == (pytest.approx(0.10), "low", [])
    assert sorted((row.customer_id, row.tier) for row in history) == sorted(
        [(ids["risky"], "critical"), (ids["healthy"], "low")]
    )
    # A first score in the lowest tier is no change a consumer acts on: no event for the healthy one.
    assert {event.subject_id: (event.payload["from"], event.payload["to"]) for event in events} == {
        ids["risky"]: (None, "critical"),
    }
    assert events[0].payload["model_version"] == "rules"


async def test_scoring_again_as_of_the_same_time_changes_nothing(db: Database, tenant: TenantWithKey):
    await seed_two_customers(db, tenant.id)
    as_of = utcnow()
    for _ in range(2):
        async with db.tenant_unit_of_work(tenant.id) as session:
            report = await score_customers(session, tenant.id, as_of)
    again = await score_tenant(db, tenant.id, as_of)

    current, history, events = await stored(db, tenant.id)
    assert (report.scored, report.unchanged, again.scored, again.unchanged) == (0, 2, 0, 2)
    assert (len(current), len(history), len(events)) == (2, 2, 1)


async def test_a_later_score_in_another_tier_is_a_tier_change_and_history_grows(db: Database, tenant: TenantWithKey):
    ids = await seed_two_customers(db, tenant.id)
    first = utcnow()
    await score_tenant(db, tenant.id, first)
    await apply_items(db, tenant.id, payment_failures("healthy", utcnow() - timedelta(hours=5), 2))
    later = utcnow()
    async with db.tenant_unit_of_work(tenant.id) as session:
        report = await score_customers(session, tenant.id, later, [ids["healthy"]])

    current, history, events = await stored(db, tenant.id)
    assert (report.scored, report.tier_changes) == (1, 1)
    assert (current[ids["healthy"]].tier, current[ids["healthy"]].as_of) == ("high", later)
    assert current[ids["risky"]].as_of == first
    assert [row.tier for row in history if row.customer_id == ids["healthy"]] == ["low", "high"]
    change = events[-1]
    assert (change.subject_id, change.payload["from"], change.payload["to"]) == (ids["healthy"], "low", "high")
    assert change.payload["score"] == pytest.approx(0.40)


async def test_a_back_dated_score_goes_to_the_history_only(db: Database, tenant: TenantWithKey):
    ids = await seed_two_customers(db, tenant.id)
    now = utcnow()
    await score_tenant(db, tenant.id, now)
    for _ in range(2):
        await score_tenant(db, tenant.id, now - timedelta(days=30))

    current, history, events = await stored(db, tenant.id)
    assert {row.as_of for row in current.values()} == {now}
    assert sorted(row.as_of for row in history if row.customer_id == ids["risky"]) == [now - timedelta(days=30), now]
    assert [event.subject_id for event in events] == [ids["risky"]]  # the first score only


async def test_another_tenants_customers_are_never_scored(db: Database, tenant: TenantWithKey, other_tenant):
    ids = await seed_two_customers(db, tenant.id)
    async with db.tenant_unit_of_work(other_tenant.id) as session:
        report = await score_customers(session, other_tenant.id, utcnow(), list(ids.values()))

    assert report.scored == 0
    assert await stored(db, tenant.id) == ({}, [], [])
    assert await stored(db, other_tenant.id) == ({}, [], [])


async def test_a_tenant_scored_in_several_chunks_stores_each_once(db: Database, tenant: TenantWithKey, monkeypatch):
    """Chunks are written while the next is scored: every chunk still lands, once."""
    ids = await seed_two_customers(db, tenant.id)
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 1)
    as_of = utcnow()
    first = await score_tenant(db, tenant.id, as_of)
    again = await score_tenant(db, tenant.id, as_of)

    current, history, events = await stored(db, tenant.id)
    assert (first.scored, again.scored, again.unchanged) == (2, 0, 2)
    assert {customer_id: row.tier for customer_id, row in current.items()} == {
        ids["risky"]: "critical",
        ids["healthy"]: "low",
    }
    assert sorted((row.customer_id, row.as_of) for row in history) == sorted(
        (customer_id, as_of) for customer_id in ids.values()
    )
    assert [event.subject_id for event in events] == [ids["risky"]]


async def test_slices_of_a_tenant_in_id_order_never_take_in_another_tenants_customers(
    db: Database, tenant: TenantWithKey, other_tenant, monkeypatch
):
    """Whole-tenant scoring reads the tenant slice by slice, each a range of customer ids. Made
    alternately, the other tenant's customers have ids inside those ranges."""
    now, names = utcnow(), [f"c{number}" for number in range(5)]
    for name in names:
        for tenant_id in (tenant.id, other_tenant.id):
            await apply_items(
                db, tenant_id, [subscribed(name, now - timedelta(days=60)), *logins(name, now - timedelta(days=60), 30)]
            )
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 2)
    report = await score_tenant(db, tenant.id, now)

    ours = await customer_ids(db, tenant.id, *names)
    current, history, _ = await stored(db, tenant.id)
    assert report.scored == 5 and set(current) == set(ours.values()) and len(history) == 5
    assert await stored(db, other_tenant.id) == ({}, [], [])
