"""Depth, alias and token limits stop a query before any resolver runs; unexpected errors are masked."""

import httpx
import strawberry

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.graphql.context import Context
from churnsaver.graphql.errors import MaskUnexpectedErrors
from churnsaver.graphql.schema import Schema, create_schema
from tests.fixtures.graphql import graphql
from tests.fixtures.sql import counting_statements


async def test_too_many_aliases_are_rejected_before_resolving(client, app, tenant):
    query = "{ " + " ".join(f"a{n}: viewer {{ kind }}" for n in range(31)) + " }"

    with counting_statements(app.state.db) as statements:
        body = await graphql(client, query, headers=tenant.headers)

    assert body.get("data") is None
    assert "aliases" in body["errors"][0]["message"]
    assert len([s for s in statements if "tenants" in s or "customers" in s]) == 0


async def execute(settings: Settings, query: str):
    """Run `query` on a schema built for `settings`, as an anonymous caller."""
    context = Context(db=Database(settings), settings=settings, subject=None)
    try:
        return await create_schema(settings).execute(query, context_value=context)
    finally:
        await context.db.dispose()


async def test_too_deep_queries_are_rejected_before_resolving(settings, tenant):
    shallow_app = create_app(settings.model_copy(update={"graphql_max_depth": 1}), run_jobs=False)
    transport = httpx.ASGITransport(app=shallow_app)

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with counting_statements(shallow_app.state.db) as statements:
            body = await graphql(client, "{ viewer { tenant { slug } } }", headers=tenant.headers)
    await shallow_app.state.db.dispose()

    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert not any("FROM tenants" in statement for statement in statements)


async def test_too_many_tokens_are_rejected(client, tenant):
    query = "{ viewer { " + " ".join(["kind"] * 6000) + " } }"

    body = await graphql(client, query, headers=tenant.headers)

    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


async def test_unexpected_errors_are_masked():
    @strawberry.type
    class Query:
        @strawberry.field
        def broken(self) -> str:
            raise RuntimeError('relation "customers" does not exist at /srv/app/db.py line 3')

    schema = Schema(query=Query, extensions=[MaskUnexpectedErrors])
    result = await schema.execute("{ broken }")

    assert [error.message for error in result.errors] == ["Internal server error."]


async def test_introspection_is_off_in_production(tmp_path):
    settings = Settings(env="production", secret_key="k" * 48, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db")

    result = await execute(settings, "{ __schema { types { name } } }")

    assert result.data is None
    assert "introspection" in result.errors[0].message.lower()


async def test_introspection_is_on_in_development(client, tenant):
    body = await graphql(client, "{ __schema { queryType { name } } }", headers=tenant.headers)

    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
