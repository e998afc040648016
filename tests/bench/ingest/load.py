"""Posting prepared requests to a server from this process, a fixed number in flight at a time.

Each of `concurrency` connections takes the next request from a shared list and posts it over
HTTP/1.1 keep-alive, so at most `concurrency` requests are in flight, as from a provider
delivering in parallel. The client is a few lines on asyncio streams rather than httpx: on a
2-core machine the load generator shares the CPU with the server it measures, and httpx spent
over ten times this client's CPU per request here (and still could not saturate a bare
endpoint), which would take from the server the core it has in production. Requests are
serialized before the clock starts. Over the same wall time the bench measures the server's
CPU (from /proc, its child processes included), its own, PostgreSQL's (when it runs here) and everything else's on the
machine, which says how quiet the machine was.
"""

import asyncio
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.bench.load import process_cpu_seconds

READ_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Prepared:
    path: str
    body: bytes
    headers: dict[str, str]

    def wire(self, host: str) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"host: {host}", f"content-length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items() if name.lower() != "content-length"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class BadAnswer(Exception):
    pass


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Answer:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:])
    if length is None:
        raise BadAnswer(f"an answer without content-length: {head[:200]!r}")
    return Answer(status, await reader.readexactly(length))


def machine_cpu_seconds() -> float:
    """CPU time used by everything on the machine so far (user + nice + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / os.sysconf("SC_CLK_TCK")


def server_tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of the server `pid` and its children (the embedded jobs' process), from /proc."""
    own = process_cpu_seconds(pid)
    if own is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            own += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU time of each of this machine's PostgreSQL processes, by pid (none when it runs elsewhere)."""
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        if head.endswith("(postgres"):
            fields = rest.split()
            used[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def postgres_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """What PostgreSQL's processes used in between; one that ended meanwhile is not counted."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    kept: list[Any] = field(default_factory=list)  # per request, in request order: what `keep` took
    wall_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    client_cpu_seconds: float = 0.0
    machine_cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0
    group_commit: dict[str, float] | None = None  # the app's group-commit figures, when it has them
    started_at: float = 0.0  # time.monotonic()
    finished_at: float = 0.0

    def summary(self, *, items_per_request: int = 1) -> dict[str, Any]:
        count = len(self.latencies)
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        server = self.server_cpu_seconds
        others = self.machine_cpu_seconds - self.client_cpu_seconds - (server or 0.0) - self.postgres_cpu_seconds
        summary = {
            "requests": count,
            "requests_per_second": round(count / self.wall_seconds, 1),
            "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2),
            "max_ms": round(max(self.latencies) * 1000, 2),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "server_cpu_ms_per_request": round(server * 1000 / count, 3) if server is not None else None,
            "server_cpu_share": round(server / self.wall_seconds, 2) if server is not None else None,
            "client_cpu_share": round(self.client_cpu_seconds / self.wall_seconds, 2),
            "postgres_cpu_share": round(self.postgres_cpu_seconds / self.wall_seconds, 2),
            "other_processes_cpu_share": round(max(others, 0.0) / self.wall_seconds, 2),
        }
        if self.group_commit is not None:
            summary["group_commit"] = self.group_commit
        if items_per_request != 1:
            summary["items_per_second"] = round(count * items_per_request / self.wall_seconds, 1)
        return summary


async def post_all(
    base_url: str,
    requests: list[Prepared],
    *,
    concurrency: int,
    server_pid: int,
    keep: Callable[[Answer], Any] = lambda answer: None,
) -> LoadResult:
    """Post every request; `keep` takes what the caller needs of each answer."""
    url = urlsplit(base_url)
    host = url.netloc
    wire = [request.wire(host) for request in requests]
    result = LoadResult(kept=[None] * len(requests))
    connections = [
        await asyncio.open_connection(url.hostname, url.port, limit=READ_LIMIT)
        for _ in range(min(concurrency, len(wire)))
    ]
    next_index = 0

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        while next_index < len(wire):
            index = next_index
            next_index += 1
            started = time.perf_counter()
            answer = await _exchange(reader, writer, wire[index])
            result.latencies.append(time.perf_counter() - started)
            result.statuses[answer.status] += 1
            result.kept[index] = keep(answer)

    server_cpu_before = server_tree_cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    machine_cpu_before = machine_cpu_seconds()
    postgres_cpu_before = postgres_cpu_seconds()
    result.started_at = time.monotonic()
    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    finally:
        result.wall_seconds = time.perf_counter() - started
        result.finished_at = time.monotonic()
        result.client_cpu_seconds = time.process_time() - client_cpu_before
        result.machine_cpu_seconds = machine_cpu_seconds() - machine_cpu_before
        result.postgres_cpu_seconds = postgres_cpu_between(postgres_cpu_before, postgres_cpu_seconds())
        server_cpu_after = server_tree_cpu_seconds(server_pid)
        for _reader, writer in connections:
            writer.close()
    if server_cpu_before is not None and server_cpu_after is not None:
        result.server_cpu_seconds = server_cpu_after - server_cpu_before
    return result


def combined(results: list[LoadResult]) -> LoadResult:
    """Rounds of one load as one result: every request, the rounds' wall and CPU times summed."""
    total = LoadResult(started_at=results[0].started_at, finished_at=results[-1].finished_at)
    for result in results:
        total.latencies += result.latencies
        total.statuses += result.statuses
        total.kept += result.kept
        total.wall_seconds += result.wall_seconds
        total.client_cpu_seconds += result.client_cpu_seconds
        total.machine_cpu_seconds += result.machine_cpu_seconds
        total.postgres_cpu_seconds += result.postgres_cpu_seconds
        if result.server_cpu_seconds is not None:
            total.server_cpu_seconds = (total.server_cpu_seconds or 0.0) + result.server_cpu_seconds
    return total
