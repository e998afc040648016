"""Risk is for customers who can still churn: a churned customer is in no tier, no riskiest-first
order, no distribution count and no tier event; exports show it with its status; scoring as of a
past time scores a customer who churned later."""

import csv
from datetime import timedelta
from pathlib import Path

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.scoring import score_tenant
from tests.cli.test_cli import run_cli
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.graphql import graphql
from tests.fixtures.risk_activity import (
    apply_items,
    customer_ids,
    logins,
    payment_failures,
    seed_two_customers,
    stored,
    subscribed,
    track,
)

RISKIEST = """
query($tier: RiskTier) {
  customers(first: 100, orderBy: RISK_DESC, filter: {tier: $tier}) {
    totalCount
    edges { node { externalId status } }
  }
}"""
GONE = """{ customer(externalId: "gone") { status churnedAt risk { tier } riskHistory { totalCount } } }"""
TIERS = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


async def seed_with_a_leaver(db: Database, tenant: TenantWithKey, *, scored_before: bool = True):
    """ "risky" (critical), "healthy" (low), and "gone": as risky as "risky" until it canceled
    two days ago (and, `scored_before`, scored before it did). Returns the cancellation time."""
    await seed_two_customers(db, tenant.id)
    now = utcnow()
    canceled = (now - timedelta(days=2)).replace(microsecond=0)
    await apply_items(
        db,
        tenant.id,
        [
            subscribed("gone", now - timedelta(days=200)),
            *logins("gone", now - timedelta(days=200), 160),
            *payment_failures("gone", now - timedelta(days=4), 2),
        ],
    )
    if scored_before:  # while it could still churn: its (critical) score is current when it leaves
        await score_tenant(db, tenant.id, now - timedelta(days=3))
    await apply_items(db, tenant.id, [track("gone", "subscription.canceled", canceled)])
    return canceled


async def test_a_churned_customer_is_in_no_tier_no_riskiest_first_order_and_no_distribution_count(
    db: Database, client, tenant: TenantWithKey
):
    canceled = await seed_with_a_leaver(db, tenant)
    await score_tenant(db, tenant.id, utcnow())

    riskiest = await graphql(client, RISKIEST, headers=tenant.headers)
    assert "errors" not in riskiest, riskiest
    listed = riskiest["data"]["customers"]
    assert [edge["node"]["externalId"] for edge in listed["edges"]] == ["risky", "healthy"]
    assert listed["totalCount"] == 2
    for tier in TIERS:
        in_tier = await graphql(client, RISKIEST, {"tier": tier}, headers=tenant.headers)
        assert "gone" not in [edge["node"]["externalId"] for edge in in_tier["data"]["customers"]["edges"]]

    distribution = await graphql(
        client, "{ riskDistribution { critical high medium low unscored churned } }", headers=tenant.headers
    )
    assert distribution["data"]["riskDistribution"] == {
        "critical": 1,
        "high": 0,
        "medium": 0,
        "low": 1,
        "unscored": 0,
        "churned": 1,
    }

    gone = (await graphql(client, GONE, headers=tenant.headers))["data"]["customer"]
    assert gone["status"] == "CHURNED"
    assert gone["churnedAt"] == canceled.isoformat()
    assert gone["risk"] is None
    assert gone["riskHistory"]["totalCount"] == 1  # its score from before it left

    everyone = await graphql(
        client, "{ customers(first: 100) { edges { node { externalId status } } } }", headers=tenant.headers
    )
    statuses = {edge["node"]["externalId"]: edge["node"]["status"] for edge in everyone["data"]["customers"]["edges"]}
    assert statuses == {"risky": "ACTIVE", "healthy": "ACTIVE", "gone": "CHURNED"}


async def test_scoring_leaves_churned_customers_out_and_moves_no_tier_event_for_them(
    db: Database, tenant: TenantWithKey
):
    canceled = await seed_with_a_leaver(db, tenant, scored_before=False)
    ids = await customer_ids(db, tenant.id, "gone")

    now = await score_tenant(db, tenant.id, utcnow())
    # As of a time before it left, "gone" is scored as it was then, but moves no tier event.
    back_then = await score_tenant(db, tenant.id, canceled - timedelta(hours=1))

    assert now.churned == 1 and now.scored == 2
    assert back_then.churned == 0 and back_then.scored == 3
    _, history, events = await stored(db, tenant.id)
    scored_as_of = [row.as_of for row in history if row.customer_id == ids["gone"]]
    assert canceled - timedelta(hours=1) in scored_as_of
    assert all(as_of < canceled for as_of in scored_as_of)
    assert ids["gone"] not in {event.subject_id for event in events}


async def test_the_export_shows_churned_customers_with_their_status_and_no_score(
    db: Database, settings, tenant: TenantWithKey, tmp_path: Path
):
    canceled = await seed_with_a_leaver(db, tenant)
    await score_tenant(db, tenant.id, utcnow())
    output = tmp_path / "scores.csv"

    result = run_cli(settings, "scores", "export", "--tenant", tenant.tenant.slug, "--output", str(output))

    assert result.returncode == 0, result.stderr
    with output.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(row["customer_id"], row["status"]) for row in rows] == [
        ("risky", "active"),
        ("healthy", "active"),
        ("gone", "churned"),
    ]
    gone = rows[-1]
    assert (gone["score"], gone["tier"], gone["model_version"], gone["reasons"]) == ("", "", "", "")
    assert gone["churned_at"] == canceled.isoformat()
