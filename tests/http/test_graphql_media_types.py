"""GraphQL over HTTP: application/graphql-response+json when the client's Accept asks for it, with
400 and no `data` for an operation that never ran; application/json as before otherwise."""

import pytest

GRAPHQL_RESPONSE = "application/graphql-response+json"
NEW_CLIENT = {"Accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"}


async def post(client, tenant, accept: dict[str, str], query: str, variables: dict | None = None):
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={**tenant.headers, **accept}
    )


async def test_a_client_asking_for_graphql_response_json_gets_it(client, tenant):
    response = await post(client, tenant, NEW_CLIENT, "{ viewer { kind } }")

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"viewer": {"kind": "api_key"}}}


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ viewer { kind }", None, "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { nothing } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query ($id: ID!) { node(id: $id) { id } }", {"id": None}, "BAD_USER_INPUT"),
    ],
    ids=["parse", "validation", "variables"],
)
async def test_an_operation_that_never_ran_is_a_400_without_data(client, tenant, query, variables, code):
    response = await post(client, tenant, NEW_CLIENT, query, variables)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code


async def test_an_error_while_running_keeps_200_and_data(client, tenant):
    response = await post(client, tenant, NEW_CLIENT, '{ viewer { kind } node(id: "bm90OmFueXRoaW5n") { id } }')

    assert response.status_code == 200
    body = response.json()
    assert body["data"]["viewer"] == {"kind": "api_key"}
    assert body["errors"]


@pytest.mark.parametrize(
    "accept",
    [{"Accept": "application/json"}, {"Accept": "*/*"}, {"Accept": f"application/json, {GRAPHQL_RESPONSE};q=0.5"}],
    ids=["json", "anything", "json-preferred"],
)
async def test_other_clients_keep_application_json_and_200(client, tenant, accept):
    response = await post(client, tenant, accept, "{ viewer { nothing } }")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] is None
