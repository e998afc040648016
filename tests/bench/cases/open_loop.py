"""An open-loop webhook load: requests sent on a fixed schedule, whatever the server's answers take.

A closed loop (a fixed number in flight, tests/bench/ingest/load.py) slows down with the
server, so a latency measured beside it would be measured under less load exactly when the
server struggles. Here request i leaves at start + i / rate. A request waits only for a free
connection: an idle one, or a new one while fewer than `max_connections` are open; one that
leaves over LATE_SECONDS after its time is counted late, and the rate achieved is reported
beside the rate asked for. Requests are serialized before the clock starts.
"""

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.bench.ingest.load import READ_LIMIT, Prepared, _exchange

LATE_SECONDS = 0.05


@dataclass
class OpenLoopResult:
    sent: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self, rate: float) -> dict[str, Any]:
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive") if len(self.latencies) > 1 else [0] * 99
        return {
            "rate_asked_per_second": rate,
            "rate_achieved_per_second": round(self.sent / self.seconds, 1) if self.seconds else 0.0,
            "sent": self.sent,
            "late": self.late,
            "ack_p50_ms": round(cuts[49] * 1000, 1),
            "ack_p99_ms": round(cuts[98] * 1000, 1),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
        }


async def send_open_loop(
    base_url: str, requests: list[Prepared], *, rate: float, stop: asyncio.Event, max_connections: int = 64
) -> OpenLoopResult:
    """Send `requests` at `rate` per second until they run out or `stop` is set; wait for the answers."""
    url = urlsplit(base_url)
    wire = [request.wire(url.netloc) for request in requests]
    result = OpenLoopResult()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    freed = asyncio.Condition()
    in_flight: set[asyncio.Task[None]] = set()

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with freed:
            while not idle and len(opened) >= max_connections:
                await freed.wait()
            if idle:
                return idle.pop()
            pair = await asyncio.open_connection(url.hostname, url.port, limit=READ_LIMIT)
            opened.append(pair[1])
            return pair

    async def send(request: bytes, pair: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        started = time.perf_counter()
        try:
            answer = await _exchange(*pair, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed a connection left idle past its keep-alive timeout: once more on a new one.
            pair[1].close()
            pair = await asyncio.open_connection(url.hostname, url.port, limit=READ_LIMIT)
            opened.append(pair[1])
            answer = await _exchange(*pair, request)
        result.latencies.append(time.perf_counter() - started)
        result.statuses[answer.status] += 1
        async with freed:
            idle.append(pair)
            freed.notify()

    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for index, request in enumerate(wire):
            due = start + index / rate
            if (delay := due - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
            pair = await connection()
            result.late += loop.time() - due > LATE_SECONDS
            result.sent += 1
            task = asyncio.create_task(send(request, pair))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        result.seconds = loop.time() - start
        await asyncio.gather(*in_flight)
    finally:
        for writer in opened:
            writer.close()
    return result
