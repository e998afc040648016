"""Strict-Transport-Security goes on answers served over TLS, directly or through a proxy the server
trusts that says so (X-Forwarded-Proto), and never on plain http."""

import uuid

import httpx

from tests.fixtures.server import running_server

HSTS = "strict-transport-security"


async def test_answers_over_https_carry_hsts(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        health = await client.get("/healthz")
        refused = await client.post("/graphql", json={"query": "{ viewer { kind } }"})
        webhook = await client.post(f"/webhooks/whop/{uuid.uuid4()}", content=b"{}")

    assert health.headers[HSTS] == "max-age=31536000"
    assert refused.status_code == 401
    assert refused.headers[HSTS] == "max-age=31536000"
    assert webhook.headers[HSTS] == "max-age=31536000"


async def test_plain_http_answers_carry_no_hsts_whatever_the_client_claims(client):
    plain = await client.get("/healthz")
    claimed = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})

    assert HSTS not in plain.headers
    assert HSTS not in claimed.headers


def test_a_trusted_proxy_saying_https_gets_hsts(settings):
    with running_server(settings) as base_url:
        behind_tls_proxy = httpx.get(f"{base_url}/healthz", headers={"X-Forwarded-Proto": "https"})
        plain = httpx.get(f"{base_url}/healthz")

    assert behind_tls_proxy.headers[HSTS] == "max-age=31536000"
    assert HSTS not in plain.headers
