"""The viewer: an API key sees its own tenant and nothing else."""

from tests.fixtures.graphql import graphql

VIEWER = "{ viewer { tenant { id slug name } kind scopes } }"


async def test_viewer_returns_the_keys_own_tenant(client, tenant, other_tenant):
    body = await graphql(client, VIEWER, headers=tenant.headers)

    assert "errors" not in body
    viewer = body["data"]["viewer"]
    assert viewer["tenant"]["slug"] == tenant.tenant.slug
    assert viewer["tenant"]["name"] == tenant.tenant.name
    assert viewer["kind"] == "api_key"
    assert viewer["scopes"] == ["read", "write"]


async def test_tenant_id_is_opaque(client, tenant):
    body = await graphql(client, VIEWER, headers=tenant.headers)

    assert str(tenant.id) not in body["data"]["viewer"]["tenant"]["id"]
