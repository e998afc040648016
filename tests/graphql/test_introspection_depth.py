"""The depth limit counts introspection fields; the standard introspection query still passes."""

from graphql import get_introspection_query
from tests.fixtures.graphql import graphql


def nested_of_type(levels: int) -> str:
    return '{ __type(name: "Customer") { ' + "ofType { " * levels + "name" + " }" * levels + " } }"


async def test_a_hundred_levels_of_of_type_are_refused(client, tenant):
    body = await graphql(client, nested_of_type(100), headers=tenant.headers)

    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_deep_introspection_inside_fragments_is_counted(client, tenant):
    query = (
        "{ __schema { types { ...Deep } } } fragment Deep on __Type { " + "ofType { " * 30 + "name" + " }" * 30 + " }"
    )

    body = await graphql(client, query, headers=tenant.headers)

    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_the_standard_introspection_query_passes(client, tenant):
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    body = await graphql(client, query, headers=tenant.headers)

    assert "errors" not in body
    assert any(type_["name"] == "Customer" for type_ in body["data"]["__schema"]["types"])
