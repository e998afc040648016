"""POST /graphql with a JSON body that is not an object is the client's mistake: a 400 with a
reason, never a 500 (issue 18, finding 3)."""

import pytest


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("null", "must be a JSON object"),
        ('"a string"', "must be a JSON object"),
        ("123", "must be a JSON object"),
        ("true", "must be a JSON object"),
        ("[]", "Batching is not enabled"),
    ],
)
async def test_a_json_body_that_is_not_an_object_is_refused_with_a_reason(client, tenant, body, reason):
    response = await client.post(
        "/graphql", content=body, headers=tenant.headers | {"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert reason in response.text
    follow_up = await client.post("/graphql", json={"query": "{ viewer { kind } }"}, headers=tenant.headers)
    assert follow_up.json() == {"data": {"viewer": {"kind": "api_key"}}}
