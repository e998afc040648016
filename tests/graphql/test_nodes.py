"""node(id): opaque global ids; another tenant's id is exactly as "not found" as a made-up one."""

import base64
import uuid

import pytest

from tests.fixtures.factories import create_customers
from tests.fixtures.graphql import graphql

NODE = "query($id: ID!) { node(id: $id) { id __typename ... on Customer { externalId } ... on Tenant { slug } } }"
FIRST_CUSTOMER = "{ customers(first: 1) { edges { node { id } } } }"


async def first_customer_id(client, tenant) -> str:
    body = await graphql(client, FIRST_CUSTOMER, headers=tenant.headers)
    return body["data"]["customers"]["edges"][0]["node"]["id"]


async def test_node_fetches_a_customer_by_its_global_id(client, db, tenant):
    await create_customers(db, tenant.id, 1, prefix="node")
    customer_id = await first_customer_id(client, tenant)

    body = await graphql(client, NODE, {"id": customer_id}, headers=tenant.headers)

    assert body["data"]["node"] == {"id": customer_id, "__typename": "Customer", "externalId": "node_000000"}


async def test_node_fetches_the_viewers_tenant(client, tenant):
    viewer = await graphql(client, "{ viewer { tenant { id } } }", headers=tenant.headers)
    tenant_id = viewer["data"]["viewer"]["tenant"]["id"]

    body = await graphql(client, NODE, {"id": tenant_id}, headers=tenant.headers)

    assert body["data"]["node"]["slug"] == tenant.tenant.slug


def made_up_id(type_name: str) -> str:
    return base64.b64encode(f"{type_name}:{uuid.uuid4()}".encode()).decode()


async def not_found_message(client, tenant, node_id: str) -> str:
    body = await graphql(client, NODE, {"id": node_id}, headers=tenant.headers)
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    return body["errors"][0]["message"]


async def test_another_tenants_customer_is_not_found_like_a_missing_one(client, db, tenant, other_tenant):
    await create_customers(db, other_tenant.id, 1, prefix="theirs")
    their_customer = await first_customer_id(client, other_tenant)

    crossing = await not_found_message(client, tenant, their_customer)
    missing = await not_found_message(client, tenant, made_up_id("Customer"))

    assert crossing == missing == "node not found"


async def test_another_tenant_is_not_found(client, tenant, other_tenant):
    viewer = await graphql(client, "{ viewer { tenant { id } } }", headers=other_tenant.headers)

    message = await not_found_message(client, tenant, viewer["data"]["viewer"]["tenant"]["id"])

    assert message == "node not found"


# Named ids: a made-up id is random, and pytest-xdist needs every worker to collect the same names.
@pytest.mark.parametrize(
    "node_id",
    ["", "garbage", base64.b64encode(b"Nope:1").decode(), made_up_id("Tenant")],
    ids=["empty", "garbage", "unknown-type", "unknown-tenant"],
)
async def test_malformed_or_unknown_ids_are_not_found(client, tenant, node_id):
    assert await not_found_message(client, tenant, node_id) == "node not found"


async def test_an_id_not_found_nulls_only_its_own_field(client, db, tenant):
    await create_customers(db, tenant.id, 1, prefix="sibling")
    customer_id = await first_customer_id(client, tenant)
    query = """query($found: ID!, $missing: ID!) {
        found: node(id: $found) { id ... on Customer { externalId } }
        missing: node(id: $missing) { id }
        viewer { kind }
    }"""
    variables = {"found": customer_id, "missing": made_up_id("Customer")}

    body = await graphql(client, query, variables, headers=tenant.headers)

    assert body["data"] == {
        "found": {"id": customer_id, "externalId": "sibling_000000"},
        "missing": None,
        "viewer": {"kind": "api_key"},
    }
    assert [(error["path"], error["message"]) for error in body["errors"]] == [(["missing"], "node not found")]
