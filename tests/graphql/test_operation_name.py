"""A document of several operations runs only the one operationName names; without a name it is a 400."""

import pytest

from tests.fixtures.graphql import graphql

SEVERAL = {
    "named": "query First { viewer { kind } } query Second { viewer { tenant { slug } } }",
    "anonymous": "{ viewer { kind } } { viewer { tenant { slug } } }",
    "mixed": "query First { viewer { kind } } { viewer { tenant { slug } } }",
}


@pytest.mark.parametrize("document", SEVERAL)
async def test_several_operations_without_operation_name_are_refused(client, tenant, document):
    response = await client.post("/graphql", json={"query": SEVERAL[document]}, headers=tenant.headers)

    assert response.status_code == 400
    assert "operationName" in response.text
    assert "api_key" not in response.text


async def test_the_named_operation_of_several_runs(client, tenant):
    response = await client.post(
        "/graphql", json={"query": SEVERAL["named"], "operationName": "Second"}, headers=tenant.headers
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"tenant": {"slug": tenant.tenant.slug}}}}


async def test_a_lone_operation_needs_no_name(client, tenant):
    body = await graphql(client, "query Only { viewer { kind } }", headers=tenant.headers)

    assert body == {"data": {"viewer": {"kind": "api_key"}}}
