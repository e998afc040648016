"""Risk through GraphQL: a customer's score and history, tier filter, riskiest first, the
distribution, thresholds (read and set), and no way across tenants."""

from datetime import timedelta

from sqlalchemy import select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.scoring import score_tenant
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.factories import TenantWithKey, create_api_key_for
from tests.fixtures.graphql import graphql
from tests.fixtures.risk_activity import apply_items, payment_failures, seed_two_customers
from tests.fixtures.sql import counting_statements

CUSTOMER_RISK = """
query($externalId: String!, $first: Int) {
  customer(externalId: $externalId) {
    risk { score tier modelVersion scoredAt asOf reasons { feature label direction impact } }
    riskHistory(first: $first) { totalCount edges { node { score tier asOf } } pageInfo { hasNextPage endCursor } }
  }
}"""

RISKIEST = """
query($first: Int, $after: String, $tier: RiskTier) {
  customers(first: $first, after: $after, orderBy: RISK_DESC, filter: {tier: $tier}) {
    totalCount
    edges { cursor node { externalId risk { score tier } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

SET_THRESHOLDS = """
mutation($critical: Float!, $high: Float!, $medium: Float!) {
  setRiskThresholds(input: {critical: $critical, high: $high, medium: $medium}) {
    __typename
    ... on RiskThresholdsUpdated { thresholds { critical high medium isDefault } rescoring }
    ... on UserError { code message }
  }
}"""


async def scored_tenant(db: Database, tenant: TenantWithKey) -> None:
    await seed_two_customers(db, tenant.id)
    await score_tenant(db, tenant.id, utcnow() - timedelta(days=1))
    await apply_items(db, tenant.id, payment_failures("healthy", utcnow() - timedelta(hours=3), 2))
    await score_tenant(db, tenant.id, utcnow())


async def test_a_customer_shows_its_score_with_reasons_and_its_history_newest_first(
    db: Database, client, tenant: TenantWithKey
):
    await scored_tenant(db, tenant)

    body = await graphql(client, CUSTOMER_RISK, {"externalId": "healthy", "first": 1}, headers=tenant.headers)

    assert "errors" not in body, body
    customer = body["data"]["customer"]
    risk = customer["risk"]
    assert (risk["tier"], risk["modelVersion"]) == ("HIGH", "rules")
    assert abs(risk["score"] - 0.40) < 1e-9
    assert risk["reasons"][0] == {
        "feature": "payment_failures_30d",
        "label": "2 payment failures in 30 days",
        "direction": "UP",
        "impact": 0.3,
    }
    history = customer["riskHistory"]
    assert history["totalCount"] == 2
    assert [edge["node"]["tier"] for edge in history["edges"]] == ["HIGH"]
    assert history["pageInfo"]["hasNextPage"] is True


async def test_customers_riskiest_first_page_by_keyset_and_filter_by_tier(db: Database, client, tenant: TenantWithKey):
    await scored_tenant(db, tenant)
    await apply_items(db, tenant.id, payment_failures("unscored", utcnow(), 1))

    first = await graphql(client, RISKIEST, {"first": 2}, headers=tenant.headers)
    after = first["data"]["customers"]["pageInfo"]["endCursor"]
    rest = await graphql(client, RISKIEST, {"first": 2, "after": after}, headers=tenant.headers)
    high = await graphql(client, RISKIEST, {"tier": "HIGH"}, headers=tenant.headers)

    page = first["data"]["customers"]
    assert [edge["node"]["externalId"] for edge in page["edges"]] == ["risky", "healthy"]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (3, True)
    assert [(edge["node"]["externalId"], edge["node"]["risk"]) for edge in rest["data"]["customers"]["edges"]] == [
        ("unscored", None)
    ]
    assert rest["data"]["customers"]["pageInfo"]["hasNextPage"] is False
    assert [edge["node"]["externalId"] for edge in high["data"]["customers"]["edges"]] == ["healthy"]
    bad = await graphql(client, RISKIEST, {"after": "not-a-cursor"}, headers=tenant.headers)
    assert bad["errors"][0]["message"] == "invalid cursor"


async def test_a_riskiest_first_page_with_scores_and_histories_costs_the_same_statements_whatever_its_size(
    app, db: Database, client, tenant: TenantWithKey
):
    await scored_tenant(db, tenant)
    await apply_items(db, tenant.id, payment_failures("unscored", utcnow(), 1))
    query = """
    query($first: Int) {
      customers(first: $first, orderBy: RISK_DESC) {
        totalCount
        edges {
          node {
            externalId
            risk { score reasons { label } }
            riskHistory(first: 2) { totalCount edges { node { tier } } }
          }
        }
      }
    }"""
    await graphql(client, query, {"first": 1}, headers=tenant.headers)  # the key's last use is recorded once
    counts = []
    for size in (1, 3):
        with counting_statements(app.state.db) as statements:
            body = await graphql(client, query, {"first": size}, headers=tenant.headers)
        assert "errors" not in body, body
        assert len(body["data"]["customers"]["edges"]) == size
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_the_distribution_counts_customers_per_tier(db: Database, client, tenant: TenantWithKey):
    await scored_tenant(db, tenant)
    await apply_items(db, tenant.id, payment_failures("unscored", utcnow(), 1))

    body = await graphql(client, "{ riskDistribution { critical high medium low unscored } }", headers=tenant.headers)

    assert body["data"]["riskDistribution"] == {"critical": 1, "high": 1, "medium": 0, "low": 0, "unscored": 1}


async def test_thresholds_are_read_set_validated_and_trigger_a_rescoring(db: Database, client, tenant: TenantWithKey):
    read = "{ riskThresholds { critical high medium isDefault } }"
    before = await graphql(client, read, headers=tenant.headers)
    assert before["data"]["riskThresholds"] == {"critical": 0.5, "high": 0.3, "medium": 0.15, "isDefault": True}

    bad = await graphql(client, SET_THRESHOLDS, {"critical": 0.5, "high": 0.6, "medium": 0.2}, headers=tenant.headers)
    good = await graphql(client, SET_THRESHOLDS, {"critical": 0.9, "high": 0.7, "medium": 0.2}, headers=tenant.headers)
    after = await graphql(client, read, headers=tenant.headers)

    assert bad["data"]["setRiskThresholds"]["__typename"] == "UserError"
    assert bad["data"]["setRiskThresholds"]["code"] == "BAD_USER_INPUT"
    assert "0 < medium < high < critical <= 1" in bad["data"]["setRiskThresholds"]["message"]
    assert good["data"]["setRiskThresholds"]["thresholds"] == {
        "critical": 0.9,
        "high": 0.7,
        "medium": 0.2,
        "isDefault": False,
    }
    assert after["data"]["riskThresholds"]["critical"] == 0.9
    async with db.system_session() as session:
        jobs = (
            await session.execute(
                select(OutboxJob.actor_name).where(
                    OutboxJob.tenant_id == tenant.id, OutboxJob.actor_name == "risk.score_tenant"
                )
            )
        ).all()
    assert len(jobs) == 1


async def test_setting_thresholds_needs_the_write_scope(db: Database, client, tenant: TenantWithKey):
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])

    body = await graphql(
        client,
        SET_THRESHOLDS,
        {"critical": 0.9, "high": 0.7, "medium": 0.2},
        headers={"Authorization": f"Bearer {read_only}"},
    )

    assert body["errors"][0]["message"] == "this requires the 'write' scope"


async def test_no_tenant_sees_another_tenants_scores_tiers_or_thresholds(
    db: Database, client, tenant: TenantWithKey, other_tenant: TenantWithKey
):
    await scored_tenant(db, tenant)
    await graphql(client, SET_THRESHOLDS, {"critical": 0.9, "high": 0.7, "medium": 0.2}, headers=tenant.headers)

    customer = await graphql(client, CUSTOMER_RISK, {"externalId": "risky"}, headers=other_tenant.headers)
    riskiest = await graphql(client, RISKIEST, {"first": 10}, headers=other_tenant.headers)
    distribution = await graphql(client, "{ riskDistribution { high medium unscored } }", headers=other_tenant.headers)
    thresholds = await graphql(client, "{ riskThresholds { critical isDefault } }", headers=other_tenant.headers)

    assert customer["data"]["customer"] is None
    assert riskiest["data"]["customers"] == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    assert distribution["data"]["riskDistribution"] == {"high": 0, "medium": 0, "unscored": 0}
    assert thresholds["data"]["riskThresholds"] == {"critical": 0.5, "isDefault": True}
