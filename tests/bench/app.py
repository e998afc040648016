"""The app under load: the real app, plus a plain Starlette JSON endpoint as the baseline.

`/plain/customers` authenticates the way the middleware does, runs the same SQL as the GraphQL
`customers` field (`first_customers`) and returns the same JSON as the GraphQL `data`. It is added
to the real app, so both go through the same middleware (request context, access log, metrics,
body limit); only GraphQL itself differs.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.relay import to_base64

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import Page, keyset_page
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.tenants.api_keys import InvalidApiKey, authenticate_api_key, bearer_token, record_key_use
from churnsaver.tenants.auth import Scope

PLAIN_PATH = "/plain/customers"


def customer_json(row: Customer) -> dict[str, Any]:
    return {
        "id": to_base64("Customer", row.id),
        "externalId": row.external_id,
        "email": row.email,
        "name": row.name,
        "traits": row.traits,
        "createdAt": row.created_at.isoformat(),
    }


def connection_json(page: Page[Customer]) -> dict[str, Any]:
    """The shape the GraphQL query in tests/bench/load.py asks for."""
    return {
        "totalCount": page.total_count,
        "edges": [
            {"cursor": cursor, "node": customer_json(row)} for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.cursors[-1] if page.cursors else None},
    }


async def first_customers(
    session: AsyncSession, tenant_id: uuid.UUID, *, first: int, after: str | None
) -> Page[Customer]:
    """The page the GraphQL `customers` field reads without a filter: oldest first, with the total."""
    statement = CustomerRepository(session, tenant_id).select_readable()
    return await keyset_page(session, statement, Customer, first=first, after=after)


def error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def plain_customers(request: Request) -> Response:
    db: Database = request.app.state.db
    try:
        token = bearer_token(request.headers.get("authorization", ""))
        async with db.system_session() as session:
            authentication = await authenticate_api_key(session, token)
    except InvalidApiKey as failure:
        return error(401, "UNAUTHENTICATED", failure.reason)
    subject = authentication.subject
    if authentication.use_is_unrecorded:
        async with db.tenant_unit_of_work(subject.tenant_id) as session:
            await record_key_use(session, subject)
    if not subject.can(Scope.read):
        return error(403, "FORBIDDEN", "this requires the 'read' scope")
    try:
        first = int(request.query_params.get("first", "100"))
        async with db.tenant_unit_of_work(subject.tenant_id) as session:
            page = await first_customers(
                session, subject.tenant_id, first=first, after=request.query_params.get("after")
            )
    except (ValueError, InvalidInput) as failure:
        return error(400, "INVALID_INPUT", str(failure))
    return JSONResponse({"customers": connection_json(page)})


def create_bench_app(settings: Settings) -> Starlette:
    app = create_app(settings, run_jobs=False)
    app.router.routes.append(Route(PLAIN_PATH, plain_customers, methods=["GET"]))
    return app
