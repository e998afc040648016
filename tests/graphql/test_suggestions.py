"""In production, GraphQL errors name no suggestions ("Did you mean 'email'?"); in development they may."""

import httpx
import pytest

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Environment
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.graphql import graphql

MISTAKES = {
    "field": "{ viewer { kin } }",
    "argument": "{ customers(frist: 5) { totalCount } }",
    "type": "query ($f: CustomerFiltr) { customers(filter: $f) { totalCount } }",
}


async def messages_in(settings, env: Environment, query: str, tenant: TenantWithKey) -> list[str]:
    app = create_app(settings.model_copy(update={"env": env, "secret_key": "k" * 48}), run_jobs=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = await graphql(client, query, headers=tenant.headers)
    finally:
        await app.state.db.dispose()
    assert body.get("data") is None
    return [error["message"] for error in body["errors"]]


@pytest.mark.parametrize("mistake", MISTAKES)
async def test_production_errors_carry_no_suggestions(settings, tenant, mistake):
    messages = await messages_in(settings, Environment.production, MISTAKES[mistake], tenant)

    assert messages
    assert not any("Did you mean" in message for message in messages), messages


@pytest.mark.parametrize("mistake", MISTAKES)
async def test_development_errors_suggest_the_name_meant(settings, tenant, mistake):
    messages = await messages_in(settings, Environment.development, MISTAKES[mistake], tenant)

    assert any("Did you mean" in message for message in messages), messages
