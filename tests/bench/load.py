"""Load from the bench process: concurrent clients paging through every customer, on each endpoint.

Each simulated client walks the pages with `after` cursors and starts over at the end, so the
load exercises keyset paging at every depth. The endpoints take turns in short rounds (ABBA
order), so drift in the machine's speed during the run falls on both alike.
"""

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.bench.app import PLAIN_PATH

PAGE_SIZE = 100
CUSTOMERS_QUERY = """
query($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    edges { cursor node { id externalId email name traits createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

Fetch = Callable[[httpx.AsyncClient, str | None], Awaitable[dict[str, Any]]]


class BadResponse(Exception):
    pass


def checked_connection(connection: dict[str, Any], expected_total: int) -> dict[str, Any]:
    edges, page_info = connection["edges"], connection["pageInfo"]
    if connection["totalCount"] != expected_total:
        raise BadResponse(f"totalCount {connection['totalCount']}, expected {expected_total}")
    if not edges or (page_info["hasNextPage"] and len(edges) != PAGE_SIZE):
        raise BadResponse(f"a page of {len(edges)} customers")
    return page_info


def graphql_fetch(headers: dict[str, str], expected_total: int, page_size: int = PAGE_SIZE) -> Fetch:
    async def fetch(client: httpx.AsyncClient, after: str | None) -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={"query": CUSTOMERS_QUERY, "variables": {"first": page_size, "after": after}},
            headers=headers,
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise BadResponse(f"GraphQL answered {response.status_code}: {response.text[:300]}")
        return checked_connection(body["data"]["customers"], expected_total)

    return fetch


def plain_fetch(headers: dict[str, str], expected_total: int, page_size: int = PAGE_SIZE) -> Fetch:
    async def fetch(client: httpx.AsyncClient, after: str | None) -> dict[str, Any]:
        params = {"first": str(page_size)} | ({"after": after} if after else {})
        response = await client.get(PLAIN_PATH, params=params, headers=headers)
        if response.status_code != 200:
            raise BadResponse(f"the plain endpoint answered {response.status_code}: {response.text[:300]}")
        return checked_connection(response.json()["customers"], expected_total)

    return fetch


@dataclass
class Walker:
    """One client's place in the walk through the pages."""

    after: str | None = None
    pages: int = 0

    def advance(self, page_info: dict[str, Any]) -> None:
        self.pages += 1
        self.after = page_info["endCursor"] if page_info["hasNextPage"] else None


@dataclass
class Measurement:
    latencies: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    server_cpu_seconds: float | None = 0.0
    client_cpu_seconds: float = 0.0
    pages_walked_past_first: int = 0

    def summary(self) -> dict[str, Any]:
        count = len(self.latencies)
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return {
            "requests": count,
            "requests_per_second": round(count / self.wall_seconds, 1),
            "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2),
            "server_cpu_ms_per_request": (
                round(self.server_cpu_seconds * 1000 / count, 2) if self.server_cpu_seconds is not None else None
            ),
            "client_cpu_share": round(self.client_cpu_seconds / self.wall_seconds, 2),
            "requests_after_first_page": self.pages_walked_past_first,
        }


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` (Linux /proc); None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(
    client: httpx.AsyncClient, fetch: Fetch, walkers: list[Walker], requests: int, server_pid: int, into: Measurement
) -> None:
    remaining = requests

    async def one_client(walker: Walker) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            deep = walker.after is not None
            started = time.perf_counter()
            page_info = await fetch(client, walker.after)
            into.latencies.append(time.perf_counter() - started)
            into.pages_walked_past_first += deep
            walker.advance(page_info)

    server_cpu_before = process_cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(one_client(walker) for walker in walkers))
    into.wall_seconds += time.perf_counter() - started
    into.client_cpu_seconds += time.process_time() - client_cpu_before
    server_cpu_after = process_cpu_seconds(server_pid)
    if server_cpu_before is None or server_cpu_after is None or into.server_cpu_seconds is None:
        into.server_cpu_seconds = None
    else:
        into.server_cpu_seconds += server_cpu_after - server_cpu_before


async def compare_under_load(
    base_url: str,
    server_pid: int,
    endpoints: dict[str, Fetch],
    *,
    requests: int,
    warmup: int,
    concurrency: int,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """Requests/s and latency of each endpoint, measured in alternating rounds on one server."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30, limits=limits) as client:
        walkers = {name: [Walker() for _ in range(concurrency)] for name in endpoints}
        for name, fetch in endpoints.items():
            await run_round(client, fetch, walkers[name], warmup, server_pid, Measurement())
        measurements = {name: Measurement() for name in endpoints}
        names = list(endpoints)
        per_round = -(-requests // rounds)
        for number in range(rounds):
            for name in names if number % 2 == 0 else reversed(names):
                await run_round(client, endpoints[name], walkers[name], per_round, server_pid, measurements[name])
    return {name: measurement.summary() for name, measurement in measurements.items()}
