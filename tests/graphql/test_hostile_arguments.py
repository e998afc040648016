"""Hostile argument values get a client error, never an internal error (issue 18, finding 3)."""

import base64
import uuid

import pytest

from churnsaver.backend.core.pagination import encode_cursor
from tests.fixtures.factories import create_customer, create_customers
from tests.fixtures.graphql import graphql

CUSTOMERS_AFTER = "query($after: String) { customers(first: 2, after: $after) { totalCount } }"


def errors_of(body: dict) -> list[tuple[str, str]]:
    return [(error["extensions"]["code"], error["message"]) for error in body.get("errors", [])]


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}"),
        raw_cursor(f"9999-12-31T23:59:59-14:00|{uuid.uuid4()}"),
        raw_cursor(f"2026-01-01T00:00:00\x00|{uuid.uuid4()}"),
        raw_cursor(f"risk|0.5|{uuid.uuid4()}"),
        "é",
    ],
    ids=["year-0-in-utc", "year-10000-in-utc", "nul", "risk-cursor", "non-ascii"],
)
async def test_a_cursor_outside_the_stores_range_is_an_invalid_cursor(client, tenant, cursor):
    body = await graphql(client, CUSTOMERS_AFTER, {"after": cursor}, headers=tenant.headers)

    assert errors_of(body) == [("BAD_USER_INPUT", "invalid cursor")]


async def test_a_timeline_cursor_outside_the_stores_range_is_an_invalid_cursor(client, db, tenant):
    customer = await create_customer(db, tenant.id, "cus_1")
    query = 'query($after: String) { customer(externalId: "cus_1") { events(after: $after) { totalCount } } }'
    cursor = raw_cursor(f"0001-01-01T00:00:00+14:00|{customer.id}")

    body = await graphql(client, query, {"after": cursor}, headers=tenant.headers)

    assert errors_of(body) == [("BAD_USER_INPUT", "invalid cursor")]


async def test_a_cursor_the_api_gave_still_pages(client, db, tenant):
    customers = await create_customers(db, tenant.id, 3)

    after_first = encode_cursor(customers[0].created_at, customers[0].id)

    body = await graphql(client, CUSTOMERS_AFTER, {"after": after_first}, headers=tenant.headers)

    assert body == {"data": {"customers": {"totalCount": 3}}}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ customers(first: 2147483648) { totalCount } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ customers(first: -1) { totalCount } }", "BAD_USER_INPUT"),
        ('{ node(id: "!!!") { id } }', "NOT_FOUND"),
        ('{ node(id: "Q3VzdG9tZXI6eA") { id } }', "NOT_FOUND"),
        ('{ node(id: "VGVuYW50") { id } }', "NOT_FOUND"),
        ('{ node(id: "w6k6w6k=") { id } }', "NOT_FOUND"),
        ('mutation { revokeApiKey(id: "é") { __typename } }', None),
    ],
)
async def test_other_hostile_values_are_client_errors(client, tenant, query, code):
    body = await graphql(client, query, headers=tenant.headers)

    assert [error["extensions"]["code"] for error in body.get("errors", [])] == ([code] if code else [])
