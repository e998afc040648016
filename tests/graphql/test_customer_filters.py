"""customers(filter: {status, plan, search}): status and plan match the current subscription, search
is a literal, case-insensitive substring; totals and keyset pages follow the filter."""

from datetime import UTC, datetime, timedelta

from tests.fixtures.factories import create_customer, create_customers, create_subscription
from tests.fixtures.graphql import graphql

START = datetime(2025, 3, 1, tzinfo=UTC)

FILTERED = """
query($filter: CustomerFilter, $first: Int, $after: String) {
  customers(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { node { externalId } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def matching(client, tenant, **filter: str) -> list[str]:
    body = await graphql(client, FILTERED, {"filter": filter, "first": 100}, headers=tenant.headers)
    assert "errors" not in body, body["errors"]
    connection = body["data"]["customers"]
    ids = [edge["node"]["externalId"] for edge in connection["edges"]]
    assert connection["totalCount"] == len(ids)
    return ids


async def subscribed(db, tenant, external_id: str, *subscriptions: tuple[str, str, int]) -> None:
    """A customer with subscriptions given as (status, plan, day of the newest event)."""
    customer = await create_customer(db, tenant.id, external_id)
    for status, plan, day in subscriptions:
        await create_subscription(db, customer, status=status, plan=plan, state_at=START + timedelta(days=day))


async def billing_customers(db, tenant) -> None:
    await subscribed(db, tenant, "active_pro", ("active", "pro", 1))
    await subscribed(db, tenant, "past_due_basic", ("past_due", "basic", 1))
    await subscribed(db, tenant, "canceled_pro", ("canceled", "pro", 1))
    # Moved from pro to basic: the newer pro subscription ended, the older basic one still runs.
    await subscribed(db, tenant, "moved_to_basic", ("active", "basic", 1), ("canceled", "pro", 5))
    # Came back: a canceled basic, then a new active pro.
    await subscribed(db, tenant, "came_back_pro", ("canceled", "basic", 1), ("active", "pro", 3))
    await create_customer(db, tenant.id, "never_subscribed")


async def test_status_matches_the_current_subscription(client, db, tenant):
    await billing_customers(db, tenant)

    assert await matching(client, tenant, status="active") == ["active_pro", "moved_to_basic", "came_back_pro"]
    assert await matching(client, tenant, status="canceled") == ["canceled_pro"]
    assert await matching(client, tenant, status="past_due") == ["past_due_basic"]


async def test_plan_matches_the_current_subscription(client, db, tenant):
    await billing_customers(db, tenant)

    assert await matching(client, tenant, plan="pro") == ["active_pro", "canceled_pro", "came_back_pro"]
    assert await matching(client, tenant, plan="basic") == ["past_due_basic", "moved_to_basic"]


async def test_status_and_plan_must_hold_for_the_same_subscription(client, db, tenant):
    await billing_customers(db, tenant)

    assert await matching(client, tenant, status="active", plan="basic") == ["moved_to_basic"]
    assert await matching(client, tenant, status="canceled", plan="basic") == []


async def test_search_matches_email_name_or_external_id_ignoring_case(client, db, tenant):
    await create_customer(db, tenant.id, "user_1", email="GRACE@navy.example", name="Admiral")
    await create_customer(db, tenant.id, "user_2", email="ada@example.com", name="Grace Hopper")
    await create_customer(db, tenant.id, "user_GRACEFUL", email=None, name=None)
    await create_customer(db, tenant.id, "user_3", email="alan@example.com", name="Alan Turing")

    assert await matching(client, tenant, search="grace") == ["user_1", "user_2", "user_GRACEFUL"]
    assert await matching(client, tenant, search="  TURING ") == ["user_3"]


async def test_search_wildcards_are_matched_literally(client, db, tenant):
    await create_customer(db, tenant.id, "cotton_100", name="100% Cotton")
    await create_customer(db, tenant.id, "cotton_1000", name="1000 Cotton")
    await create_customer(db, tenant.id, "a_b", name="Underscore")
    await create_customer(db, tenant.id, "axb", name="Letter")
    await create_customer(db, tenant.id, "slash", name="either/or")

    assert await matching(client, tenant, search="100%") == ["cotton_100"]
    assert await matching(client, tenant, search="%") == ["cotton_100"]
    assert await matching(client, tenant, search="a_b") == ["a_b"]
    assert await matching(client, tenant, search="r/o") == ["slash"]


async def test_a_blank_search_matches_everyone(client, db, tenant):
    await create_customers(db, tenant.id, 3)

    assert len(await matching(client, tenant, search="   ")) == 3


async def test_filtered_pages_walk_every_match_once_and_count_them(client, db, tenant):
    customers = await create_customers(db, tenant.id, 30)
    for number, customer in enumerate(customers):
        await create_subscription(db, customer, status="active" if number % 2 else "canceled", state_at=START)
    seen, after = [], None

    while True:
        variables = {"filter": {"status": "active"}, "first": 4, "after": after}
        page = (await graphql(client, FILTERED, variables, headers=tenant.headers))["data"]["customers"]
        assert page["totalCount"] == 15
        seen += [edge["node"]["externalId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == [f"cus_{n:06d}" for n in range(1, 30, 2)]


async def test_filters_never_match_another_tenants_customers(client, db, tenant, other_tenant):
    await subscribed(db, tenant, "mine", ("active", "pro", 1))
    await subscribed(db, other_tenant, "theirs", ("active", "pro", 1))

    assert await matching(client, tenant, status="active", plan="pro") == ["mine"]
    assert await matching(client, tenant, search="theirs") == []
