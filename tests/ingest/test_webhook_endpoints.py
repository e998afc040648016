"""Webhook endpoints through GraphQL: create, list, rotate, delete; secrets shown once, stored
encrypted; another tenant's endpoints are "not found"."""

import base64
import re
import uuid
from datetime import timedelta

from sqlalchemy import select

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.ingest.models import WebhookEndpoint
from churnsaver.backend.ingest.webhook_secrets import secret_box
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql

CREATE = """
mutation Create($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpointCreated { endpoint { id url source createdAt } signingSecret }
    ... on UserError { code message }
  }
}
"""
LIST = "{ webhookEndpoints { id url source previousSecretExpiresAt } }"
ROTATE = """
mutation Rotate($id: ID!, $secret: String) {
  rotateWebhookSecret(id: $id, signingSecret: $secret) {
    __typename
    ... on WebhookSecretRotated { endpoint { id previousSecretExpiresAt } signingSecret }
    ... on UserError { code message }
  }
}
"""
DELETE = """
mutation Delete($id: ID!) {
  deleteWebhookEndpoint(id: $id) {
    __typename
    ... on WebhookEndpointDeleted { deletedId }
    ... on UserError { code message }
  }
}
"""
NODE = "query Node($id: ID!) { node(id: $id) { __typename id ... on WebhookEndpoint { source } } }"
URL_PATTERN = re.compile(r"^http://testserver/webhooks/(whop|stripe)/([0-9a-f-]{36})$")


async def create(client, tenant, source="WHOP", secret=None) -> dict:
    variables = {"input": {"source": source, "signingSecret": secret}}
    result = (await graphql(client, CREATE, variables, headers=tenant.headers))["data"]["createWebhookEndpoint"]
    assert result["__typename"] == "WebhookEndpointCreated", result
    return result


async def test_creating_without_a_secret_generates_a_whsec_secret_and_returns_it_once(client, tenant):
    created = await create(client, tenant)

    secret = created["signingSecret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    listed = (await graphql(client, LIST, headers=tenant.headers))["data"]["webhookEndpoints"]
    assert "signingSecret" not in listed[0] and secret not in str(listed)


async def test_the_url_is_absolute_and_names_the_source_and_the_endpoint(client, db, tenant):
    created = await create(client, tenant, source="STRIPE")

    endpoint = created["endpoint"]
    match = URL_PATTERN.match(endpoint["url"])
    assert match, endpoint["url"]
    assert match[1] == "stripe" and endpoint["source"] == "STRIPE"
    async with db.tenant_session(tenant.id) as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(match[2]))
    assert row is not None and row.tenant_id == tenant.id


async def test_a_provider_issued_secret_is_kept_as_given(client, tenant):
    created = await create(client, tenant, source="STRIPE", secret="  whsec_stripeIssuedSecret0123456789\n")

    assert created["signingSecret"] == "whsec_stripeIssuedSecret0123456789"


async def test_unusable_secrets_are_user_errors(client, tenant):
    for source, secret in [("WHOP", "short"), ("WHOP", "has a space in it ok"), ("WHOP", "whsec_not*base64*at*all")]:
        variables = {"input": {"source": source, "signingSecret": secret}}
        result = (await graphql(client, CREATE, variables, headers=tenant.headers))["data"]["createWebhookEndpoint"]

        assert result == {"__typename": "UserError", "code": "BAD_USER_INPUT", "message": result["message"]}


async def test_secrets_are_stored_only_encrypted_and_bound_to_their_endpoint(client, db, settings, tenant):
    secret = "ws_plainWhopSecretThatMustNotLeak"
    created = await create(client, tenant, secret=secret)
    endpoint_id = uuid.UUID(URL_PATTERN.match(created["endpoint"]["url"])[2])

    async with db.system_session() as session:
        table = WebhookEndpoint.__table__
        row = (await session.execute(select(table).where(table.c.id == endpoint_id))).one()
    stored = b"".join(value if isinstance(value, bytes) else str(value).encode() for value in row)
    assert secret.encode() not in stored
    assert base64.b64encode(secret.encode()) not in stored
    ciphertext = row._mapping["secret_ciphertext"]
    box = secret_box(settings.resolved_secret_key)
    assert box.decrypt(ciphertext, bound_to=str(endpoint_id)) == secret


async def test_endpoints_are_listed_oldest_first_and_node_finds_them(client, tenant):
    first = await create(client, tenant, source="WHOP")
    second = await create(client, tenant, source="STRIPE")

    listed = (await graphql(client, LIST, headers=tenant.headers))["data"]["webhookEndpoints"]
    assert [e["id"] for e in listed] == [first["endpoint"]["id"], second["endpoint"]["id"]]
    node = await graphql(client, NODE, {"id": second["endpoint"]["id"]}, headers=tenant.headers)
    assert node["data"]["node"] == {"__typename": "WebhookEndpoint", "id": second["endpoint"]["id"], "source": "STRIPE"}


async def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_24_hours(client, db, settings, tenant):
    created = await create(client, tenant)
    endpoint_id = created["endpoint"]["id"]

    rotated = (await graphql(client, ROTATE, {"id": endpoint_id}, headers=tenant.headers))["data"]
    result = rotated["rotateWebhookSecret"]
    assert result["__typename"] == "WebhookSecretRotated"
    assert result["signingSecret"].startswith("whsec_") and result["signingSecret"] != created["signingSecret"]
    async with db.tenant_session(tenant.id) as session:
        row = (
            await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.id))
        ).scalar_one()
    box = secret_box(settings.resolved_secret_key)
    assert box.decrypt(row.previous_secret_ciphertext, bound_to=str(row.id)) == created["signingSecret"]
    assert box.decrypt(row.secret_ciphertext, bound_to=str(row.id)) == result["signingSecret"]
    remaining = row.previous_secret_expires_at - utcnow()
    assert timedelta(hours=23, minutes=59) < remaining <= timedelta(hours=24)


async def test_rotation_can_take_the_providers_new_secret(client, tenant):
    created = await create(client, tenant, source="STRIPE", secret="whsec_firstStripeSecret000000000")

    variables = {"id": created["endpoint"]["id"], "secret": "whsec_rolledStripeSecret11111111"}
    result = (await graphql(client, ROTATE, variables, headers=tenant.headers))["data"]["rotateWebhookSecret"]

    assert result["signingSecret"] == "whsec_rolledStripeSecret11111111"


async def test_a_deleted_endpoint_is_gone_from_lists_and_lookups(client, tenant):
    created = await create(client, tenant)
    endpoint_id = created["endpoint"]["id"]

    deleted = (await graphql(client, DELETE, {"id": endpoint_id}, headers=tenant.headers))["data"]
    assert deleted["deleteWebhookEndpoint"] == {"__typename": "WebhookEndpointDeleted", "deletedId": endpoint_id}
    assert (await graphql(client, LIST, headers=tenant.headers))["data"]["webhookEndpoints"] == []
    again = (await graphql(client, DELETE, {"id": endpoint_id}, headers=tenant.headers))["data"]
    assert again["deleteWebhookEndpoint"]["code"] == "NOT_FOUND"
    rotate = (await graphql(client, ROTATE, {"id": endpoint_id}, headers=tenant.headers))["data"]
    assert rotate["rotateWebhookSecret"]["code"] == "NOT_FOUND"


async def test_another_tenant_cannot_see_rotate_or_delete_an_endpoint(client, db, settings, tenant, other_tenant):
    created = await create(client, tenant)
    endpoint_id = created["endpoint"]["id"]

    listed = (await graphql(client, LIST, headers=other_tenant.headers))["data"]["webhookEndpoints"]
    assert listed == []
    node = await graphql(client, NODE, {"id": endpoint_id}, headers=other_tenant.headers)
    assert node["data"] == {"node": None} and node["errors"][0]["message"] == "node not found"
    for mutation, field in ((ROTATE, "rotateWebhookSecret"), (DELETE, "deleteWebhookEndpoint")):
        result = (await graphql(client, mutation, {"id": endpoint_id}, headers=other_tenant.headers))["data"][field]
        assert result == {"__typename": "UserError", "code": "NOT_FOUND", "message": "webhook endpoint not found"}
    async with db.tenant_session(tenant.id) as session:
        row = (
            await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.id))
        ).scalar_one()
    assert row.deleted_at is None and row.previous_secret_ciphertext is None


async def test_another_types_id_is_not_found(client, tenant):
    viewer = await graphql(client, "{ viewer { tenant { id } } }", headers=tenant.headers)
    tenant_id = viewer["data"]["viewer"]["tenant"]["id"]

    result = (await graphql(client, DELETE, {"id": tenant_id}, headers=tenant.headers))["data"]

    assert result["deleteWebhookEndpoint"]["code"] == "NOT_FOUND"


async def test_managing_endpoints_needs_the_write_scope(client, db, tenant):
    read_only = {"Authorization": f"Bearer {await create_api_key_for(db, tenant.id, scopes=['read'])}"}

    result = await graphql(client, CREATE, {"input": {"source": "WHOP"}}, headers=read_only)

    assert result["data"] is None
    assert result["errors"][0]["message"] == "this requires the 'write' scope"
    assert (await graphql(client, LIST, headers=read_only))["data"]["webhookEndpoints"] == []
