"""customer(id | externalId): the profile, provider ids, current subscription and timeline; another
tenant's customers are null like missing ones; relations cost the same statements at any page size."""

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, SubscriptionState
from tests.fixtures.factories import (
    add_identities,
    create_api_key_for,
    create_customer,
    create_customers,
    create_events,
    create_subscription,
)
from tests.fixtures.graphql import graphql
from tests.fixtures.sql import counting_statements

START = datetime(2025, 3, 1, tzinfo=UTC)

PROFILE = """
query($id: ID, $externalId: String) {
  customer(id: $id, externalId: $externalId) {
    id externalId email name phone traits churnLabel churnedAt
    identities { provider providerId }
    subscription { status plan mrr currency currentPeriodEnd cancelAtPeriodEnd }
  }
}
"""

TIMELINE = """
query($externalId: String, $first: Int, $after: String) {
  customer(externalId: $externalId) {
    events(first: $first, after: $after) {
      totalCount
      edges { cursor node { type occurredAt source properties } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def profile(client, tenant, **variables) -> dict | None:
    body = await graphql(client, PROFILE, variables, headers=tenant.headers)
    assert "errors" not in body, body["errors"]
    return body["data"]["customer"]


async def timeline_types(client, tenant, external_id: str) -> list[str]:
    body = await graphql(client, TIMELINE, {"externalId": external_id, "first": 100}, headers=tenant.headers)
    return [edge["node"]["type"] for edge in body["data"]["customer"]["events"]["edges"]]


async def test_a_customer_by_external_id_has_its_whole_profile(client, db, tenant):
    customer = await create_customer(
        db,
        tenant.id,
        "user_ada",
        email="ada@example.com",
        name="Ada Lovelace",
        phone="+447700900123",
        traits={"country": "GB", "seats": 3},
        churn_label=True,
        churned_at=START,
    )
    await add_identities(db, customer, ("whop", "user_ada"), ("stripe", "cus_ada"))
    await create_subscription(
        db,
        customer,
        status="active",
        state_at=START,
        plan="pro",
        mrr=4900,
        currency="USD",
        current_period_end=START + timedelta(days=30),
        cancel_at_period_end=True,
    )

    found = await profile(client, tenant, externalId="user_ada")

    assert found.pop("id")
    assert found == {
        "externalId": "user_ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "phone": "+447700900123",
        "traits": {"country": "GB", "seats": 3},
        "churnLabel": True,
        "churnedAt": "2025-03-01T00:00:00+00:00",
        "identities": [{"provider": "stripe", "providerId": "cus_ada"}, {"provider": "whop", "providerId": "user_ada"}],
        "subscription": {
            "status": "active",
            "plan": "pro",
            "mrr": 4900,
            "currency": "USD",
            "currentPeriodEnd": "2025-03-31T00:00:00+00:00",
            "cancelAtPeriodEnd": True,
        },
    }


async def test_a_customer_by_id_is_the_same_customer(client, db, tenant):
    await create_customer(db, tenant.id, "user_by_id", email="by-id@example.com")
    by_external_id = await profile(client, tenant, externalId="user_by_id")

    by_id = await profile(client, tenant, id=by_external_id["id"])

    assert by_id == by_external_id


async def test_any_provider_id_finds_the_customer(client, db, tenant):
    customer = await create_customer(db, tenant.id, "user_whop_first")
    await add_identities(db, customer, ("whop", "user_whop_first"), ("stripe", "cus_later"))

    found = await profile(client, tenant, externalId="cus_later")

    assert found["externalId"] == "user_whop_first"


async def test_a_customer_without_relations_has_empty_ones(client, db, tenant):
    await create_customer(db, tenant.id, "user_bare")

    found = await profile(client, tenant, externalId="user_bare")

    assert (found["identities"], found["subscription"], found["phone"], found["churnLabel"]) == ([], None, None, None)


async def test_the_current_subscription_is_the_newest_active_one(client, db, tenant):
    customer = await create_customer(db, tenant.id, "user_many_subs")
    await create_subscription(db, customer, status="active", state_at=START, plan="old_active")
    await create_subscription(db, customer, status="trialing", state_at=START + timedelta(days=2), plan="newest_active")
    await create_subscription(db, customer, status="canceled", state_at=START + timedelta(days=5), plan="newer_ended")

    found = await profile(client, tenant, externalId="user_many_subs")

    assert found["subscription"]["plan"] == "newest_active"


async def test_without_an_active_subscription_the_current_one_is_the_newest(client, db, tenant):
    customer = await create_customer(db, tenant.id, "user_all_ended")
    await create_subscription(db, customer, status="canceled", state_at=START + timedelta(days=5), plan="newest")
    await create_subscription(db, customer, status="expired", state_at=START, plan="oldest")

    found = await profile(client, tenant, externalId="user_all_ended")

    assert found["subscription"] == {
        "status": "canceled",
        "plan": "newest",
        "mrr": None,
        "currency": None,
        "currentPeriodEnd": None,
        "cancelAtPeriodEnd": False,
    }


async def test_the_timeline_pages_newest_first_with_cursors(client, db, tenant):
    customer = await create_customer(db, tenant.id, "user_timeline")
    await create_events(db, customer, 25, start=START)
    seen, after = [], None

    while True:
        variables = {"externalId": "user_timeline", "first": 10, "after": after}
        body = await graphql(client, TIMELINE, variables, headers=tenant.headers)
        events = body["data"]["customer"]["events"]
        assert events["totalCount"] == 25
        assert events["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert events["pageInfo"]["endCursor"] == events["edges"][-1]["cursor"]
        seen += [edge["node"] for edge in events["edges"]]
        if not events["pageInfo"]["hasNextPage"]:
            break
        after = events["pageInfo"]["endCursor"]

    assert [event["type"] for event in seen] == [f"event_{n}" for n in reversed(range(25))]
    assert seen[0] == {
        "type": "event_24",
        "occurredAt": "2025-03-02T00:00:00+00:00",
        "source": "api",
        "properties": {"number": 24},
    }


async def test_events_at_the_same_moment_are_each_listed_once(client, db, tenant):
    customer = await create_customer(db, tenant.id, "user_same_moment")
    for number in range(5):
        await create_events(db, customer, 1, start=START, source=f"src{number}")
    seen, after, more = [], None, True

    while more:
        variables = {"externalId": "user_same_moment", "first": 2, "after": after}
        events = (await graphql(client, TIMELINE, variables, headers=tenant.headers))["data"]["customer"]["events"]
        seen += [edge["node"]["source"] for edge in events["edges"]]
        after, more = events["pageInfo"]["endCursor"], events["pageInfo"]["hasNextPage"]

    assert sorted(seen) == [f"src{number}" for number in range(5)]


NAIVE_TIME_CURSOR = base64.urlsafe_b64encode(f"2025-03-01T00:00:00|{uuid.uuid4()}".encode()).decode()


@pytest.mark.parametrize("cursor", ["%%%not-a-cursor", NAIVE_TIME_CURSOR], ids=["not-base64", "time-without-zone"])
async def test_a_bad_timeline_cursor_is_a_clear_error(client, db, tenant, cursor):
    await create_customer(db, tenant.id, "user_bad_cursor")

    variables = {"externalId": "user_bad_cursor", "first": 5, "after": cursor}
    body = await graphql(client, TIMELINE, variables, headers=tenant.headers)

    assert body["errors"][0]["message"] == "invalid cursor"


async def test_the_timeline_total_is_counted_only_when_asked_for(client, app, db, tenant):
    customer = await create_customer(db, tenant.id, "user_uncounted")
    await create_events(db, customer, 3, start=START)
    query = '{ customer(externalId: "user_uncounted") { events(first: 2) { edges { node { type } } } } }'

    with counting_statements(app.state.db) as statements:
        body = await graphql(client, query, headers=tenant.headers)

    assert [edge["node"]["type"] for edge in body["data"]["customer"]["events"]["edges"]] == ["event_2", "event_1"]
    assert not any("count(" in statement.lower() for statement in statements)


async def test_a_timeline_holds_only_its_own_customers_events(client, db, tenant):
    mine = await create_customer(db, tenant.id, "user_mine")
    neighbour = await create_customer(db, tenant.id, "user_neighbour")
    await create_events(db, mine, 2, start=START)
    await create_events(db, neighbour, 3, start=START, source="whop")

    body = await graphql(client, TIMELINE, {"externalId": "user_mine", "first": 100}, headers=tenant.headers)

    sources = {edge["node"]["source"] for edge in body["data"]["customer"]["events"]["edges"]}
    assert (body["data"]["customer"]["events"]["totalCount"], sources) == (2, {"api"})


async def test_exactly_one_of_id_and_external_id_is_required(client, tenant):
    neither = await graphql(client, PROFILE, {}, headers=tenant.headers)
    both = await graphql(client, PROFILE, {"id": "x", "externalId": "y"}, headers=tenant.headers)

    for body in (neither, both):
        assert body["data"]["customer"] is None
        assert body["errors"][0]["message"] == "pass exactly one of `id` and `externalId`"


async def test_reading_a_customer_needs_the_read_scope(client, db, tenant):
    write_only = await create_api_key_for(db, tenant.id, scopes=["write"])

    body = await graphql(client, PROFILE, {"externalId": "any"}, headers={"Authorization": f"Bearer {write_only}"})

    assert body["errors"][0]["message"] == "this requires the 'read' scope"


def made_up_id(type_name: str) -> str:
    return base64.b64encode(f"{type_name}:{uuid.uuid4()}".encode()).decode()


async def test_missing_and_malformed_customers_are_null(client, tenant):
    for variables in (
        {"externalId": "nobody"},
        {"id": made_up_id("Customer")},
        {"id": made_up_id("Tenant")},
        {"id": "garbage"},
    ):
        assert await profile(client, tenant, **variables) is None, variables


async def test_another_tenants_customer_is_null_like_a_missing_one(client, db, tenant, other_tenant):
    theirs = await create_customer(db, other_tenant.id, "user_theirs")
    await add_identities(db, theirs, ("stripe", "cus_theirs"))
    their_id = (await profile(client, other_tenant, externalId="user_theirs"))["id"]

    for variables in ({"id": their_id}, {"externalId": "user_theirs"}, {"externalId": "cus_theirs"}):
        assert await profile(client, tenant, **variables) is None, variables


async def test_another_tenants_events_never_reach_a_timeline(client, db, tenant, other_tenant):
    # The same external id in both tenants: each sees only its own customer and events.
    mine = await create_customer(db, tenant.id, "user_shared")
    theirs = await create_customer(db, other_tenant.id, "user_shared")
    await create_events(db, mine, 2, start=START, source="api")
    await create_events(db, theirs, 4, start=START, source="whop")
    await create_subscription(db, theirs, status="active", state_at=START)

    found = await profile(client, tenant, externalId="user_shared")
    body = await graphql(client, TIMELINE, {"externalId": "user_shared", "first": 100}, headers=tenant.headers)

    events = body["data"]["customer"]["events"]
    assert found["subscription"] is None
    assert events["totalCount"] == 2
    assert {edge["node"]["source"] for edge in events["edges"]} == {"api"}


RELATIONS = """
query($first: Int) {
  customers(first: $first) {
    edges { node {
      subscription { status }
      identities { providerId }
      events(first: 2) { totalCount edges { node { type } } }
    } }
  }
}
"""


async def test_relations_cost_the_same_statements_at_any_page_size(client, app, db, tenant):
    customers = await create_customers(db, tenant.id, 100)
    for customer in customers:
        await add_identities(db, customer, ("api", customer.external_id))
        await create_subscription(db, customer, status="active", state_at=START)
        await create_events(db, customer, 3, start=START)
    await graphql(client, RELATIONS, {"first": 1}, headers=tenant.headers)  # records the key's first use
    counts = {}

    for page_size in (1, 10, 100):
        with counting_statements(app.state.db) as statements:
            body = await graphql(client, RELATIONS, {"first": page_size}, headers=tenant.headers)
        nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
        assert len(nodes) == page_size
        assert all(node["subscription"] and node["identities"] and node["events"]["totalCount"] == 3 for node in nodes)
        counts[page_size] = len(statements)

    # authenticate, the page, one batch per relation (each also sets the tenant on PostgreSQL)
    assert counts[1] == counts[10] == counts[100] <= 9, counts


async def test_the_timeline_hides_ingestions_own_bookkeeping(client, db, tenant):
    event = CanonicalEvent(
        type=EventType.subscription_started,
        occurred_at=START,
        source="api",
        dedupe_key="msg-1",
        customer=CustomerRef(provider="api", provider_id="cus-bookkeeping"),
        subscription=SubscriptionState(external_id="sub-1", status="active", plan="pro", mrr=4900, currency="USD"),
        properties={"plan": "pro"},
    )
    async with db.tenant_unit_of_work(tenant.id) as session:
        await apply_events(session, tenant.id, [event])

    query = '{ customer(externalId: "cus-bookkeeping") { events(first: 5) { edges { node { type properties } } } } }'
    body = await graphql(client, query, headers=tenant.headers)

    [edge] = body["data"]["customer"]["events"]["edges"]
    assert edge["node"] == {"type": "subscription_started", "properties": {"plan": "pro"}}
