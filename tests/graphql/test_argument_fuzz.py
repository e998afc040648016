"""Generated values for every argument of every query root field, of the connections under a
customer, and of the mutations: never a 5xx, never INTERNAL_SERVER_ERROR, and a refused mutation
stores nothing (issue 18, "Fuzzing in the suite").

Arguments are read from the schema itself, so a new field or argument is fuzzed without a word
here. Values follow each argument's type, with the edge's hostile cases mixed in: strings with
lone surrogates and NULs, integers past 32 and 64 bits, non-finite floats, timestamps outside
years 1 to 9999 in UTC, cursors and global ids holding any of these, and JSON of the wrong type.
"""

import base64
import json
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from churnsaver.backend.core.config import Settings
from churnsaver.backend.ingest.models import WebhookEndpoint
from churnsaver.backend.risk.models import RiskModel, RiskSettings
from churnsaver.graphql.schema import create_schema
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.models import ApiKey
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_composite_type,
)
from tests.fixtures.factories import TenantWithKey, create_customers, create_tenant_with_key

SCHEMA = create_schema(Settings(env="test"))._schema
# Fields with arguments: the others take no value to fuzz.
QUERY_FIELDS = {name: field for name, field in SCHEMA.query_type.fields.items() if field.args}
MUTATION_FIELDS = {name: field for name, field in SCHEMA.mutation_type.fields.items() if field.args}
# The connections under a customer take `first` and `after` too.
CUSTOMER_CONNECTIONS = {name: SCHEMA.get_type("Customer").fields[name] for name in ("events", "riskHistory")}

# Text with every code point, lone surrogates included, and the characters stores choke on.
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
hostile_text = st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff", "x\ud83d", "", " ", "é" * 3, "'; --"])
offsets = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
timestamps = st.one_of(
    st.builds(lambda moment, offset: moment.replace(tzinfo=offset).isoformat(), st.datetimes(), offsets),
    st.datetimes().map(datetime.isoformat),  # naive
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00", "0001-01-01", "2026-02-30T00:00:00Z"]),
    any_text,
)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


cursors = st.one_of(
    st.builds(lambda moment, record: b64(f"{moment}|{record}"), timestamps, st.uuids()),
    st.builds(lambda score, record: b64(f"risk|{score!r}|{record}"), st.floats(), st.uuids()),
    st.builds(lambda score, record: b64(f"risk|{score}|{record}"), any_text, any_text),
    any_text.map(b64),
)
global_ids = st.builds(
    lambda type_name, node_id: base64.b64encode(f"{type_name}:{node_id}".encode("utf-8", "surrogatepass")).decode(),
    st.sampled_from(["Customer", "Tenant", "ApiKey", "WebhookEndpoint", "Nope", ""]),
    st.one_of(st.uuids().map(str), any_text),
)
strings = st.one_of(hostile_text, any_text, hostile_text, cursors, global_ids, timestamps)
integers = st.one_of(
    st.integers(-(2**40), 2**40), st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**30, 10**400])
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=8,
)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "String": strings,
    "ID": st.one_of(global_ids, strings),
    "Int": integers,
    "Float": st.one_of(st.floats(), integers),
    "Boolean": st.booleans(),
    "DateTime": timestamps,
    "Date": st.one_of(st.dates().map(lambda day: day.isoformat()), timestamps),
    "JSON": json_values,
}


@cache
def values_for(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    """Values of the type, now and then null or JSON of any other type."""
    if isinstance(type_, GraphQLNonNull):
        return values_for(type_.of_type)
    if isinstance(type_, GraphQLList):
        typed: st.SearchStrategy[Any] = st.lists(values_for(type_.of_type), max_size=3)
    elif isinstance(type_, GraphQLInputObjectType):
        typed = st.fixed_dictionaries(
            {}, optional={name: values_for(field.type) for name, field in type_.fields.items()}
        )
    elif isinstance(type_, GraphQLEnumType):
        typed = st.one_of(st.sampled_from(list(type_.values)), any_text)
    else:
        assert isinstance(type_, GraphQLScalarType)
        typed = SCALARS[type_.name]
    return st.one_of(typed, typed, typed, st.none(), json_values)


@st.composite
def operations(
    draw: st.DrawFn, name: str, field: GraphQLField, operation_type: str, inside: str = ""
) -> tuple[str, dict[str, Any]]:
    """The field (in the `inside` field, if given) called with variables for its arguments; now
    and then one is left to its default."""
    arguments = [argument for argument in field.args if draw(st.sampled_from([True, True, True, False]))]
    variables = {argument: draw(values_for(field.args[argument].type)) for argument in arguments}
    definitions = ", ".join(f"${argument}: {field.args[argument].type}" for argument in arguments)
    call = f"({', '.join(f'{argument}: ${argument}' for argument in arguments)})" if arguments else ""
    returned = get_named_type(field.type)
    if isinstance(returned, GraphQLObjectType) and "totalCount" in returned.fields:
        selection = "{ totalCount edges { cursor } }"  # a connection: its count and its cursors too
    else:
        selection = "{ __typename }" if is_composite_type(returned) else ""
    selected = f"{name}{call} {selection}"
    if inside:
        selected = f"{inside} {{ {selected} }}"
    head = f"{operation_type}({definitions})" if arguments else operation_type
    return f"{head} {{ {selected} }}", variables


@pytest.fixture(scope="module")
async def fuzz_tenant(db) -> TenantWithKey:
    tenant = await create_tenant_with_key(db)
    await create_customers(db, tenant.id, 3, prefix="fuzz")
    return tenant


async def post(client, tenant: TenantWithKey, document: str, variables: dict[str, Any]):
    # ensure_ascii writes a lone surrogate as its escape; allow_nan lets NaN and Infinity through.
    body = json.dumps({"query": document, "variables": variables}, allow_nan=True)
    return await client.post("/graphql", content=body, headers=tenant.headers | {"content-type": "application/json"})


def assert_a_client_answer(response) -> dict[str, Any] | None:
    """A 2xx or 4xx; a GraphQL answer carries no internal error. None for a refused request."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        return None
    body = response.json()
    codes = [error.get("extensions", {}).get("code") for error in body.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes, body
    return body


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(QUERY_FIELDS))
@given(data=st.data())
async def test_query_root_fields_answer_any_arguments_as_a_client_error(client, fuzz_tenant, name, data):
    document, variables = data.draw(operations(name, QUERY_FIELDS[name], "query"))

    assert_a_client_answer(await post(client, fuzz_tenant, document, variables))


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(CUSTOMER_CONNECTIONS))
@given(data=st.data())
async def test_a_customers_connections_answer_any_page_arguments_as_a_client_error(client, fuzz_tenant, name, data):
    inside = 'customer(externalId: "fuzz_000000")'  # the customer every fuzz tenant has
    document, variables = data.draw(operations(name, CUSTOMER_CONNECTIONS[name], "query", inside))

    assert_a_client_answer(await post(client, fuzz_tenant, document, variables))


async def stored(db, tenant: TenantWithKey) -> tuple[Any, ...]:
    """What the fuzzed mutations could write, for the tenant."""
    async with db.tenant_session(tenant.id) as session:
        # Filtered by tenant here too: SQLite has no row-level security to do it.
        counts = [
            (await session.execute(select(func.count()).where(model.tenant_id == tenant.id))).scalar_one()
            for model in (ApiKey, WebhookEndpoint, RiskModel, OutboxJob)
        ]
        revoked = await session.execute(
            select(func.count()).where(ApiKey.tenant_id == tenant.id, ApiKey.revoked_at.is_not(None))
        )
        thresholds = await session.execute(
            select(RiskSettings.critical_threshold, RiskSettings.high_threshold, RiskSettings.medium_threshold).where(
                RiskSettings.tenant_id == tenant.id
            )
        )
        return (*counts, revoked.scalar_one(), thresholds.all())


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(MUTATION_FIELDS))
@given(data=st.data())
async def test_mutations_refuse_any_arguments_as_a_client_error_and_store_nothing(client, db, fuzz_tenant, name, data):
    document, variables = data.draw(operations(name, MUTATION_FIELDS[name], "mutation"))
    before = await stored(db, fuzz_tenant)

    body = assert_a_client_answer(await post(client, fuzz_tenant, document, variables))

    refused = body is None or bool(body.get("errors")) or (body["data"][name] or {}).get("__typename") == "UserError"
    if refused:
        assert await stored(db, fuzz_tenant) == before


def test_every_argument_type_has_values() -> None:
    """A new scalar needs a strategy here before its arguments can be fuzzed."""
    fields = [*QUERY_FIELDS.values(), *MUTATION_FIELDS.values(), *CUSTOMER_CONNECTIONS.values()]
    for field in fields:
        for argument in field.args.values():
            assert values_for(argument.type) is not None
