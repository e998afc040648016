"""Posting prepared requests to a server from this process, a fixed number in flight at a time.

Each of `concurrency` workers takes the next request from a shared list and posts it over its
own keep-alive connection, so at most `concurrency` requests are in flight, as from a provider
delivering in parallel. The server's CPU (from /proc) and this process's are measured over the
same wall time: a client near 100% of a core would be what sets the pace.
"""

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.bench.load import process_cpu_seconds


@dataclass(frozen=True, slots=True)
class Prepared:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)  # per request, in request order: its JSON answer
    wall_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    client_cpu_seconds: float = 0.0
    started_at: float = 0.0  # time.monotonic()
    finished_at: float = 0.0

    def summary(self, *, items_per_request: int = 1) -> dict[str, Any]:
        count = len(self.latencies)
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        summary = {
            "requests": count,
            "requests_per_second": round(count / self.wall_seconds, 1),
            "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2),
            "max_ms": round(max(self.latencies) * 1000, 2),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "server_cpu_ms_per_request": (
                round(self.server_cpu_seconds * 1000 / count, 3) if self.server_cpu_seconds is not None else None
            ),
            "server_cpu_share": (
                round(self.server_cpu_seconds / self.wall_seconds, 2) if self.server_cpu_seconds is not None else None
            ),
            "client_cpu_share": round(self.client_cpu_seconds / self.wall_seconds, 2),
        }
        if items_per_request != 1:
            summary["items_per_second"] = round(count * items_per_request / self.wall_seconds, 1)
        return summary


async def post_all(
    base_url: str,
    requests: list[Prepared],
    *,
    concurrency: int,
    server_pid: int,
    read: Callable[[httpx.Response], Any] = lambda response: None,
) -> LoadResult:
    """Post every request; `read` keeps what the caller needs of each answer."""
    result = LoadResult(bodies=[None] * len(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60, limits=limits) as client:
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(requests):
                index = next_index
                next_index += 1
                request = requests[index]
                started = time.perf_counter()
                response = await client.post(request.path, content=request.body, headers=request.headers)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[response.status_code] += 1
                result.bodies[index] = read(response)

        server_cpu_before = process_cpu_seconds(server_pid)
        client_cpu_before = time.process_time()
        result.started_at = time.monotonic()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_seconds = time.perf_counter() - started
        result.finished_at = time.monotonic()
        result.client_cpu_seconds = time.process_time() - client_cpu_before
        server_cpu_after = process_cpu_seconds(server_pid)
    if server_cpu_before is not None and server_cpu_after is not None:
        result.server_cpu_seconds = server_cpu_after - server_cpu_before
    return result
