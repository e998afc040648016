"""customers(first, after): keyset pages, total count, clamping, and a constant number of queries."""

import pytest

from tests.fixtures.factories import create_customers
from tests.fixtures.graphql import graphql
from tests.fixtures.sql import counting_statements

CUSTOMERS = """
query($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    edges { cursor node { id externalId email traits } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_pages_walk_every_customer_once_in_order(client, db, tenant):
    await create_customers(db, tenant.id, 25)
    seen, after = [], None

    while True:
        body = await graphql(client, CUSTOMERS, {"first": 10, "after": after}, headers=tenant.headers)
        page = body["data"]["customers"]
        assert page["totalCount"] == 25
        seen += [edge["node"]["externalId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == [f"cus_{n:06d}" for n in range(25)]


async def test_a_page_past_the_end_is_empty_but_keeps_the_total(client, db, tenant):
    await create_customers(db, tenant.id, 3)
    first = await graphql(client, CUSTOMERS, {"first": 3}, headers=tenant.headers)

    after = first["data"]["customers"]["pageInfo"]["endCursor"]
    body = await graphql(client, CUSTOMERS, {"first": 3, "after": after}, headers=tenant.headers)

    assert body["data"]["customers"]["edges"] == []
    assert body["data"]["customers"]["totalCount"] == 3
    assert body["data"]["customers"]["pageInfo"]["hasNextPage"] is False


async def test_first_is_clamped_to_100(client, db, tenant):
    await create_customers(db, tenant.id, 120)

    body = await graphql(client, CUSTOMERS, {"first": 1000}, headers=tenant.headers)

    assert len(body["data"]["customers"]["edges"]) == 100
    assert body["data"]["customers"]["pageInfo"]["hasNextPage"] is True


async def test_negative_first_is_a_clear_error(client, tenant):
    body = await graphql(client, CUSTOMERS, {"first": -1}, headers=tenant.headers)

    assert body["errors"][0]["message"] == "`first` must not be negative"


async def test_a_garbage_cursor_is_a_clear_error(client, tenant):
    body = await graphql(client, CUSTOMERS, {"first": 5, "after": "%%%not-a-cursor"}, headers=tenant.headers)

    assert body["errors"][0]["message"] == "invalid cursor"


async def test_a_tenant_never_sees_another_tenants_customers(client, db, tenant, other_tenant):
    await create_customers(db, tenant.id, 4, prefix="mine")
    await create_customers(db, other_tenant.id, 6, prefix="theirs")

    body = await graphql(client, CUSTOMERS, {"first": 100}, headers=tenant.headers)

    ids = [edge["node"]["externalId"] for edge in body["data"]["customers"]["edges"]]
    assert body["data"]["customers"]["totalCount"] == 4
    assert all(external_id.startswith("mine") for external_id in ids)


@pytest.mark.parametrize("page_size", [1, 10, 100])
async def test_statements_per_request_do_not_grow_with_page_size(client, app, db, tenant, page_size):
    await create_customers(db, tenant.id, 150)
    await graphql(client, CUSTOMERS, {"first": 1}, headers=tenant.headers)  # records the key's first use

    with counting_statements(app.state.db) as statements:
        body = await graphql(client, CUSTOMERS, {"first": page_size}, headers=tenant.headers)

    assert len(body["data"]["customers"]["edges"]) == page_size
    # authenticate the key, set the tenant (PostgreSQL only), the page with its total count
    assert len(statements) <= 3, statements


async def test_the_total_is_counted_only_when_asked_for(client, app, db, tenant):
    await create_customers(db, tenant.id, 5)
    query = "{ customers(first: 2) { edges { node { externalId } } } }"

    with counting_statements(app.state.db) as statements:
        body = await graphql(client, query, headers=tenant.headers)

    assert len(body["data"]["customers"]["edges"]) == 2
    assert not any("count(" in statement.lower() for statement in statements)


async def test_total_count_inside_a_fragment_is_counted(client, db, tenant):
    await create_customers(db, tenant.id, 5)
    query = "{ customers(first: 2) { ...Totals } } fragment Totals on CustomerConnection { totalCount }"

    body = await graphql(client, query, headers=tenant.headers)

    assert body["data"]["customers"]["totalCount"] == 5
