"""The HTTP surface: health, readiness, metrics, headers, JSON errors, authentication, the console."""

import re

import httpx
import pytest

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from tests.fixtures.factories import create_api_key_for


async def test_healthz_is_ok_without_credentials(client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_broker(client):
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok (in-process)"}


async def test_metrics_are_prometheus_text(client):
    await client.get("/healthz")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'churnsaver_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text
    assert "churnsaver_outbox_lag_seconds" in response.text


async def test_every_response_has_a_request_id_and_security_headers(client):
    response = await client.get("/healthz")

    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_a_sane_incoming_request_id_is_kept(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "lb-1234"})

    assert response.headers["x-request-id"] == "lb-1234"


async def test_the_root_sends_a_browser_to_the_console(client):
    response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert response.status_code == 303
    assert response.headers["location"] == "/graphql"
    console = await client.get(response.headers["location"], headers={"Accept": "text/html"})
    assert console.status_code == 200
    assert "graphiql" in console.text.lower()


async def test_the_root_lists_the_endpoints_for_an_api_client(client):
    response = await client.get("/", headers={"Accept": "application/json"})

    assert response.status_code == 200
    endpoints = response.json()["endpoints"]
    assert endpoints == {
        "graphql": "/graphql",
        "health": "/healthz",
        "readiness": "/readyz",
        "metrics": "/metrics",
        "events": "/v1/events",
        "webhooks": {"whop": "/webhooks/whop/{endpointId}", "stripe": "/webhooks/stripe/{endpointId}"},
        "widget": {"script": "/widgets/v1/churnsaver.js", "session": "/widgets/v1/session"},
    }
    for path in ("health", "readiness", "metrics"):
        assert (await client.get(endpoints[path])).status_code == 200


async def test_the_root_lists_the_endpoints_to_a_browser_where_the_console_is_off(tmp_path):
    settings = Settings(env="production", secret_key="k" * 48, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    transport = httpx.ASGITransport(app=create_app(settings, run_jobs=False))

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as production:
        response = await production.get("/", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.json()["endpoints"]["graphql"] == "/graphql"


async def test_unknown_route_is_a_json_404(client):
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "HTTP_404"


async def test_missing_api_key_is_401_with_a_reason(client):
    response = await client.post("/graphql", json={"query": "{ viewer { kind } }"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key is required" in response.json()["error"]["message"]


async def test_malformed_api_key_is_401(client):
    response = await client.post(
        "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": "Bearer not-a-key"}
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "malformed API key"


async def test_wrong_scheme_is_401(client, tenant):
    response = await client.post(
        "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": f"Basic {tenant.api_key}"}
    )

    assert response.status_code == 401


async def test_unknown_api_key_is_401(client, tenant):
    forged = tenant.api_key[:-4] + ("AAAA" if not tenant.api_key.endswith("AAAA") else "BBBB")

    response = await client.post(
        "/graphql", json={"query": "{ viewer { kind } }"}, headers={"Authorization": f"Bearer {forged}"}
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "unknown API key"


async def test_graphiql_console_loads_without_a_key(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_console_loads_only_its_own_assets(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.text
    sources = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert sources
    assert all(source.startswith("/graphql/static/graphiql/") or source.startswith("data:") for source in sources)


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [
        ("react.production.min.js", "text/javascript"),
        ("react-dom.production.min.js", "text/javascript"),
        ("graphiql.min.js", "text/javascript"),
        ("console.js", "text/javascript"),
        ("graphiql.min.css", "text/css"),
        ("console.css", "text/css"),
    ],
)
async def test_console_assets_load_without_a_key(client, asset, media_type):
    response = await client.get(f"/graphql/static/graphiql/{asset}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


async def test_a_missing_console_asset_is_a_json_404_not_a_401(client):
    response = await client.get("/graphql/static/graphiql/missing.js")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "HTTP_404"


async def test_graphiql_console_is_off_in_production(tmp_path):
    settings = Settings(env="production", secret_key="k" * 48, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    transport = httpx.ASGITransport(app=create_app(settings, run_jobs=False))

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as production:
        response = await production.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


async def test_body_over_the_limit_is_413(client, tenant):
    query = "{ viewer { kind } }" + " " * (1024 * 1024)

    response = await client.post("/graphql", json={"query": query}, headers=tenant.headers)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_streamed_body_over_the_limit_is_413(client, tenant):
    async def chunks():
        for _ in range(20):
            yield b"x" * (64 * 1024)

    response = await client.post(
        "/graphql", content=chunks(), headers={**tenant.headers, "content-type": "application/json"}
    )

    assert response.status_code == 413


async def test_malformed_json_is_a_client_error_not_a_500(client, tenant):
    response = await client.post(
        "/graphql", content=b"{not json", headers={**tenant.headers, "content-type": "application/json"}
    )

    assert response.status_code == 400
    assert "json" in response.text.lower()


async def test_malformed_graphql_is_a_graphql_error(client, tenant):
    response = await client.post("/graphql", json={"query": "{ viewer { "}, headers=tenant.headers)

    assert response.status_code == 200
    assert response.json()["errors"][0]["message"].startswith("Syntax Error")


async def test_read_only_key_can_query(client, db: Database, tenant):
    key = await create_api_key_for(db, tenant.id, scopes=["read"])

    response = await client.post(
        "/graphql", json={"query": "{ viewer { scopes } }"}, headers={"Authorization": f"Bearer {key}"}
    )

    assert response.json()["data"]["viewer"]["scopes"] == ["read"]


async def test_two_authorization_headers_are_refused_whichever_is_valid(client, tenant):
    headers = [("authorization", "Bearer cs_not_a_key"), ("authorization", tenant.headers["Authorization"])]

    response = await client.post("/graphql", json={"query": "{ viewer { kind } }"}, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert "exactly one Authorization header" in response.json()["error"]["message"]
