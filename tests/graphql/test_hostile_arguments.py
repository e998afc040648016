"""Hostile argument values get a client error (BAD_USER_INPUT) naming the argument, never an
internal error, and a refused mutation stores nothing (issue 18, finding 3).

Strings are held to the edge's definition (backend/core/accepted_json.py) wherever they appear:
here as GraphQL literals (`"a\\u0000b"`); as JSON variables they are refused with the request
body (tests/http/test_graphql_bodies.py)."""

import base64
import uuid

import pytest
from sqlalchemy import func, select

from churnsaver.backend.core.pagination import encode_cursor
from churnsaver.backend.risk.models import RiskModel
from churnsaver.tenants.models import ApiKey
from tests.fixtures.factories import create_customer, create_customers
from tests.fixtures.graphql import graphql

CUSTOMERS_AFTER = "query($after: String) { customers(first: 2, after: $after) { totalCount } }"
TRAIN = "mutation($input: TrainRiskModelInput) { trainRiskModel(input: $input) { __typename } }"


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
    ("query", "path"),
    [
        ('{ customers(filter: { search: "a\\u0000b" }) { totalCount } }', "customers.filter.search"),
        ('{ customers(filter: { status: "\\u0000" }) { totalCount } }', "customers.filter.status"),
        ('{ customers(filter: { plan: "pro\\u0000" }) { totalCount } }', "customers.filter.plan"),
        ('{ customers(after: "\\u0000") { totalCount } }', "customers.after"),
        ('{ customer(externalId: "a\\u0000") { id } }', "customer.externalId"),
        ('{ customer(id: "\\u0000") { id } }', "customer.id"),
        ('{ node(id: "\\u0000") { id } }', "node.id"),
        ('query($s: String = "\\u0000") { customer(externalId: $s) { id } }', "$s"),
        ('{ viewer { kind } other: customer(externalId: "x\\u0000") { id } }', "customer.externalId"),
    ],
)
async def test_a_nul_in_any_string_literal_is_refused_naming_the_argument(client, tenant, query, path):
    body = await graphql(client, query, headers=tenant.headers)

    assert errors_of(body) == [("BAD_USER_INPUT", f"{path}: NUL characters (\\u0000) are not accepted")]
    assert "data" not in body or body["data"] is None


@pytest.mark.parametrize(
    "query",
    [
        '{ customers(filter: { search: "\\ud800" }) { totalCount } }',
        '{ customer(externalId: "\\udfff") { id } }',
    ],
)
async def test_a_lone_surrogate_literal_is_a_syntax_error(client, tenant, query):
    body = await graphql(client, query, headers=tenant.headers)

    [(code, message)] = errors_of(body)
    assert code == "GRAPHQL_PARSE_FAILED"
    assert "Invalid Unicode escape sequence" in message


async def count_keys(db, tenant) -> int:
    async with db.tenant_session(tenant.id) as session:
        return (await session.execute(select(func.count()).where(ApiKey.tenant_id == tenant.id))).scalar_one()


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        ('mutation { createApiKey(input: { name: "a\\u0000b" }) { __typename } }', "createApiKey.input.name"),
        (
            'mutation { createApiKey(input: { name: "ok", scopes: ["read", "wri\\u0000te"] }) { __typename } }',
            "createApiKey.input.scopes[1]",
        ),
    ],
)
async def test_an_api_key_named_with_a_nul_is_refused_and_not_stored(client, db, tenant, mutation, path):
    before = await count_keys(db, tenant)

    body = await graphql(client, mutation, headers=tenant.headers)

    assert errors_of(body) == [("BAD_USER_INPUT", f"{path}: NUL characters (\\u0000) are not accepted")]
    assert await count_keys(db, tenant) == before


async def count_models(db, tenant) -> int:
    async with db.tenant_session(tenant.id) as session:
        return (await session.execute(select(func.count()).where(RiskModel.tenant_id == tenant.id))).scalar_one()


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [
        ("0001-01-01T00:00:00+14:00", "falls outside years 1 to 9999 in UTC"),
        ("9999-12-31T23:59:59-01:00", "falls outside years 1 to 9999 in UTC"),
        ("2026-01-01T00:00:00", "needs a timezone"),
        ("garbage", "is not ISO 8601"),
    ],
)
async def test_a_datetime_outside_years_1_to_9999_in_utc_is_bad_input_and_queues_nothing(
    client, db, tenant, as_of, reason
):
    as_variable = await graphql(client, TRAIN, {"input": {"asOf": as_of}}, headers=tenant.headers)
    as_literal = await graphql(
        client, f'mutation {{ trainRiskModel(input: {{ asOf: "{as_of}" }}) {{ __typename }} }}', headers=tenant.headers
    )

    [(code, message)] = errors_of(as_variable)
    assert code == "BAD_USER_INPUT"
    assert "$input" in message and "asOf" in message and reason in message
    # graphql-core words a literal's refusal: the value and where it sits in the document.
    [error] = as_literal["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert as_of in error["message"] and reason in error["message"]
    assert error["locations"] == [{"line": 1, "column": 42}]
    assert await count_models(db, tenant) == 0


async def test_a_datetime_with_an_offset_reaches_the_service_in_utc(client, tenant):
    body = await graphql(client, TRAIN, {"input": {"asOf": "2999-01-01T01:00:00+01:00"}}, headers=tenant.headers)

    # Accepted by the scalar: refused by the risk service itself, as a typed result.
    assert body == {"data": {"trainRiskModel": {"__typename": "UserError"}}}


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
