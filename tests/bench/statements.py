"""SQL statements per request, counted in-process on the app's engines, for several page sizes.

Each request is made alone, so every statement the engines see between two requests is its
own. The first request of a key stamps its last use (an UPDATE, once a minute per key); a
warm-up request takes that, so the counts are the steady state. The same pass checks that the
plain endpoint returns exactly the GraphQL `data`, so the comparison under load is like for like.
"""

import re
from typing import Any

import httpx

from tests.bench.app import PLAIN_PATH, create_bench_app
from tests.bench.dataset import SeededDatabase
from tests.bench.load import CUSTOMERS_QUERY
from tests.fixtures.sql import counting_statements

PAGE_SIZES = (1, 10, 50, 100)
TARGET_MAX_STATEMENTS = 3


async def graphql_page(client: httpx.AsyncClient, headers: dict[str, str], first: int, after: str | None) -> dict:
    response = await client.post(
        "/graphql", json={"query": CUSTOMERS_QUERY, "variables": {"first": first, "after": after}}, headers=headers
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise AssertionError(f"GraphQL answered {response.status_code}: {response.text[:300]}")
    return body["data"]["customers"]


async def plain_page(client: httpx.AsyncClient, headers: dict[str, str], first: int, after: str | None) -> dict:
    params = {"first": str(first)} | ({"after": after} if after else {})
    response = await client.get(PLAIN_PATH, params=params, headers=headers)
    if response.status_code != 200:
        raise AssertionError(f"the plain endpoint answered {response.status_code}: {response.text[:300]}")
    return response.json()["customers"]


def short(statement: str) -> str:
    statement = re.sub(r"\s+", " ", statement).strip()
    return statement if len(statement) <= 120 else statement[:117] + "..."


async def count_statements(seeded: SeededDatabase) -> dict[str, Any]:
    """Statements per request for each endpoint and page size, on the first page and the next."""
    # Quiet: create_app configures process-wide logging, and an access line per request would
    # also log every request the bench client makes under load from this process.
    app = create_bench_app(seeded.settings.model_copy(update={"log_level": "WARNING"}))
    headers = seeded.headers
    fetchers = {"graphql": graphql_page, "plain": plain_page}
    counts: dict[str, dict[str, dict[str, int]]] = {name: {} for name in fetchers}
    samples: dict[str, list[str]] = {}
    async with app.router.lifespan_context(app):
        db = app.state.db
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await plain_page(client, headers, 1, None)
            with counting_statements(db) as statements:
                for size in PAGE_SIZES:
                    pages: dict[str, list[dict]] = {}
                    for name, fetch in fetchers.items():
                        before = len(statements)
                        first_page = await fetch(client, headers, size, None)
                        between = len(statements)
                        next_page = await fetch(client, headers, size, first_page["pageInfo"]["endCursor"])
                        counts[name][str(size)] = {"first": between - before, "after": len(statements) - between}
                        pages[name] = [first_page, next_page]
                        if size == max(PAGE_SIZES):
                            samples[name] = [short(statement) for statement in statements[between:]]
                    if pages["graphql"] != pages["plain"]:
                        raise AssertionError(f"the plain endpoint and GraphQL disagree on pages of {size}")
    graphql_counts = {n for page in counts["graphql"].values() for n in page.values()}
    return {
        "page_sizes": list(PAGE_SIZES),
        "counts": counts,
        "statements_at_largest_page_after_cursor": samples,
        "graphql_constant": len(graphql_counts) == 1,
        "graphql_max": max(graphql_counts),
        "target": f"GraphQL: constant, at most {TARGET_MAX_STATEMENTS}",
        "target_met": len(graphql_counts) == 1 and max(graphql_counts) <= TARGET_MAX_STATEMENTS,
        "note": "steady state; a key's first request in a minute adds its last-use UPDATE (and, on PostgreSQL, "
        "that transaction's set_config)",
    }
