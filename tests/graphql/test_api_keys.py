"""createApiKey and revokeApiKey: shown once, stored as a digest, scoped, revocable, tenant-bound."""

import hashlib

from sqlalchemy import select

from churnsaver.tenants.models import ApiKey
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql

CREATE = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on ApiKeyCreated { secret apiKey { id name prefix scopes lastUsedAt revokedAt } }
    ... on UserError { code message }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on ApiKeyRevoked { apiKey { id revokedAt } }
    ... on UserError { code message }
  }
}
"""
LIST = "{ apiKeys { id name prefix lastUsedAt revokedAt } }"


async def create(client, tenant, **input_fields) -> dict:
    body = await graphql(client, CREATE, {"input": {"name": "ci", **input_fields}}, headers=tenant.headers)
    return body["data"]["createApiKey"]


async def test_a_created_key_works_and_only_its_digest_is_stored(client, db, tenant):
    created = await create(client, tenant, scopes=["read"])

    assert created["__typename"] == "ApiKeyCreated"
    secret = created["secret"]
    assert secret.startswith(f"cs_{created['apiKey']['prefix']}_")
    body = await graphql(client, "{ viewer { scopes } }", headers={"Authorization": f"Bearer {secret}"})
    assert body["data"]["viewer"]["scopes"] == ["read"]
    async with db.tenant_session(tenant.id) as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.prefix == created["apiKey"]["prefix"]))).scalar_one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row.__dict__)


async def test_key_secrets_have_at_least_128_random_bits(client, tenant):
    first = (await create(client, tenant))["secret"]
    second = (await create(client, tenant))["secret"]

    secret_part = first.split("_", 2)[2]
    assert len(secret_part) * 6 >= 128
    assert first != second


async def test_the_secret_is_not_readable_afterwards(client, tenant):
    await create(client, tenant)

    body = await graphql(client, '{ __type(name: "ApiKey") { fields { name } } }', headers=tenant.headers)

    assert "secret" not in {field["name"] for field in body["data"]["__type"]["fields"]}


async def test_unknown_scope_is_a_typed_error(client, tenant):
    created = await create(client, tenant, scopes=["admin"])

    assert created == {"__typename": "UserError", "code": "BAD_USER_INPUT", "message": created["message"]}
    assert "unknown scope" in created["message"]


async def test_an_empty_scope_list_is_refused_not_read_as_every_scope(client, tenant):
    before = await graphql(client, LIST, headers=tenant.headers)
    created = await create(client, tenant, scopes=[])
    after = await graphql(client, LIST, headers=tenant.headers)

    assert created == {"__typename": "UserError", "code": "BAD_USER_INPUT", "message": created["message"]}
    assert "at least one scope" in created["message"]
    assert after == before


async def test_a_read_only_key_cannot_create_keys(client, db, tenant):
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])

    body = await graphql(client, CREATE, {"input": {"name": "x"}}, headers={"Authorization": f"Bearer {read_only}"})

    assert body["data"] is None
    assert body["errors"][0]["message"] == "this requires the 'write' scope"


async def test_a_revoked_key_is_refused_with_401(client, tenant):
    created = await create(client, tenant)

    body = await graphql(client, REVOKE, {"id": created["apiKey"]["id"]}, headers=tenant.headers)
    response = await client.post(
        "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": f"Bearer {created['secret']}"}
    )

    assert body["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "revoked API key"


async def test_revoking_twice_keeps_the_first_revocation_time(client, tenant):
    created = await create(client, tenant)
    first = await graphql(client, REVOKE, {"id": created["apiKey"]["id"]}, headers=tenant.headers)

    second = await graphql(client, REVOKE, {"id": created["apiKey"]["id"]}, headers=tenant.headers)

    assert first["data"]["revokeApiKey"]["apiKey"]["revokedAt"] == second["data"]["revokeApiKey"]["apiKey"]["revokedAt"]


async def test_another_tenants_key_cannot_be_revoked(client, tenant, other_tenant):
    theirs = await create(client, other_tenant)

    body = await graphql(client, REVOKE, {"id": theirs["apiKey"]["id"]}, headers=tenant.headers)
    still_works = await client.post(
        "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": f"Bearer {theirs['secret']}"}
    )

    assert body["data"]["revokeApiKey"] == {
        "__typename": "UserError",
        "code": "NOT_FOUND",
        "message": "API key not found",
    }
    assert still_works.status_code == 200


async def test_keys_list_shows_only_the_tenants_keys_with_last_use(client, tenant, other_tenant):
    await create(client, other_tenant)
    await graphql(client, "{ viewer { kind } }", headers=tenant.headers)

    body = await graphql(client, LIST, headers=tenant.headers)

    keys = body["data"]["apiKeys"]
    assert [key["name"] for key in keys] == ["test"]
    assert keys[0]["lastUsedAt"] is not None
