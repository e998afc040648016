"""`python -m tests.bench cases`: from a hard-decline `payment.failed` webhook to its case, seen
through GraphQL, while other webhooks keep arriving.

For each backend: the embedded default (SQLite, `churnsaver serve` with its jobs in-process), and
when CHURNSAVER_TEST_DATABASE_URL and CHURNSAVER_TEST_REDIS_URL are set, PostgreSQL + Redis with
the web process and a separate `churnsaver worker` process. One tenant with a Whop endpoint;
each probe customer first gets a short billing history (activated, three paid months), sent and
processed before the clock starts. Then:
- a background of ordinary signed Whop deliveries (renewals, failures, lifecycle changes for
  `background_members` members of the same tenant) at `background_rate` per second, open loop
  (open_loop.py);
- a client subscribed to `caseEvents(kinds: [PAYMENT_FAILED])` over graphql-transport-ws;
- after a lead-in, `probes` hard-decline `payment.failed` deliveries ("Your card was reported
  stolen."), one per probe customer, at exponential gaps of mean `probe_interval`, each signed
  when sent and posted on a connection of its own.
A probe's latency runs from its webhook's 200 answer to the `OPENED` event of its customer's
case on the subscription; when the jobs have fallen behind, the run waits for them to catch up,
so a late case is counted late and only a case that never shows fails. Afterwards every probe's
case is looked for in `cases(filter: {kind: [PAYMENT_FAILED], status: [OPEN]})`, apart from the
subscription (which drops a subscriber too slow for its events), and the stages are split from
the stored times (inbox row received and processed, case row created; the database's clock, the
same machine's). The target is p99 < 1 s; a probe whose case never shows fails the run (exit 1),
a missed target does not. The run samples the load average and the CPU used by each process meanwhile; it prints a
table per backend and writes var/bench/cases.json.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
import websockets
from sqlalchemy import select

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.events import Source
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.ingest.models import InboxEvent
from tests.bench.cases.open_loop import send_open_loop
from tests.bench.ingest.deliveries import signed, whop_envelopes
from tests.bench.ingest.load import (
    READ_LIMIT,
    Prepared,
    _exchange,
    machine_cpu_seconds,
    post_all,
    postgres_cpu_between,
    postgres_cpu_seconds,
    server_tree_cpu_seconds,
)
from tests.bench.ingest.verify import inbox_by_status, wait_jobs_done
from tests.bench.load import process_cpu_seconds
from tests.bench.server import REPO_ROOT, running_server, running_worker
from tests.bench.suite import run_on_backends
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.senders import WebhookTarget, create_webhook_target, whop_v1_delivery

TARGET_P99_SECONDS = 1.0
RUN_TIMEOUT_SECONDS = 900
SETTLE_TIMEOUT_SECONDS = 180
HARD_DECLINE = "Your card was reported stolen."
PROTOCOL = ["graphql-transport-ws"]
CASE_EVENTS = """subscription {
  caseEvents(kinds: [PAYMENT_FAILED]) { type case { id kind status customer { externalId } } }
}"""
OPEN_PAYMENT_FAILED_CASES = """query($after: String) {
  cases(first: 100, after: $after, filter: {kind: [PAYMENT_FAILED], status: [OPEN]}, orderBy: OPENED_AT_DESC) {
    edges { node { customer { externalId } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@dataclass(frozen=True)
class LatencyConfig:
    probes: int = 300
    probe_interval: float = 0.2  # mean seconds between probes (exponential gaps)
    background_rate: float = 200.0  # other webhooks per second
    background_members: int = 2_000
    lead_in: float = 5.0  # seconds of background before the first probe
    wait_after: float = 30.0  # how long the last probes' cases may take to show
    worker_threads: int = 4  # `churnsaver worker --threads` (scaled out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case-probes", type=int, default=300, help="hard-decline webhooks timed to their case")
    parser.add_argument("--case-probe-interval", type=float, default=0.2, help="mean seconds between probes")
    parser.add_argument("--case-background-rate", type=float, default=200.0, help="other webhooks per second")
    parser.add_argument(
        "--case-redis-url",
        default=os.environ.get("CHURNSAVER_TEST_REDIS_URL"),
        help="Redis for the scaled-out run (emptied first); default CHURNSAVER_TEST_REDIS_URL",
    )
    parser.add_argument("--cases-output", type=Path, default=REPO_ROOT / "var" / "bench" / "cases.json")


class BenchFailed(Exception):
    """A delivery was refused, or a probe's case never showed."""


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def probe_user(run: str, number: int) -> str:
    return f"user_p{run}{number:05d}"


def history(run: str, probes: int, now: datetime) -> list[dict[str, Any]]:
    """Each probe customer's past: activated 95 days ago, then three monthly renewals paid."""
    envelopes = []
    for number in range(probes):
        user, membership = probe_user(run, number), f"mem_p{run}{number:05d}"
        envelopes.append(
            payloads.whop_membership_activated(
                user_id=user, membership_id=membership, at=now - timedelta(days=95), event_id=f"msg_h{user}_0"
            )
        )
        envelopes += [
            payloads.whop_payment_succeeded(
                user_id=user, membership_id=membership, at=now - timedelta(days=days), event_id=f"msg_h{user}_{days}"
            )
            for days in (90, 60, 30)
        ]
    return envelopes


def probe_request(target: WebhookTarget, run: str, number: int) -> Prepared:
    """A probe's hard decline, happening now, signed now."""
    user = probe_user(run, number)
    envelope = payloads.whop_payment_failed(
        user_id=user,
        membership_id=f"mem_p{run}{number:05d}",
        at=utcnow(),
        failure_message=HARD_DECLINE,
        event_id=f"msg_f{user}",
    )
    delivery = whop_v1_delivery(target.secret, envelope, msg_id=envelope["id"])
    return Prepared(target.path, delivery.body, delivery.headers)


def requests_for(target: WebhookTarget, envelopes: list[dict[str, Any]]) -> list[Prepared]:
    return [Prepared(target.path, delivery.body, delivery.headers) for delivery in signed(target.secret, envelopes)]


class CaseEventsClient:
    """A `caseEvents` subscription; when each customer's case was first seen opened (monotonic)."""

    def __init__(self) -> None:
        self.opened_at: dict[str, float] = {}
        self.errors: list[str] = []  # a subscriber too slow for its events is dropped with one
        self._socket: websockets.ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, base_url: str, api_key: str) -> None:
        self._socket = await websockets.connect(
            base_url.replace("http://", "ws://") + "/graphql", subprotocols=PROTOCOL, max_size=None
        )
        await self._socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {api_key}"}})
        )
        if json.loads(await self._socket.recv())["type"] != "connection_ack":
            raise BenchFailed("the subscription was not acknowledged")
        await self._socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CASE_EVENTS}}))
        self._task = asyncio.create_task(self._listen(self._socket))

    async def _listen(self, socket: websockets.ClientConnection) -> None:
        async for raw in socket:
            now = time.monotonic()
            message = json.loads(raw)
            if message.get("type") != "next" or "errors" in message["payload"]:
                self.errors.append(json.dumps(message)[:300])
                continue
            event = message["payload"]["data"]["caseEvents"]
            if event["type"] == "OPENED":
                self.opened_at.setdefault(event["case"]["customer"]["externalId"], now)

    async def wait_for(self, external_ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not all(external_id in self.opened_at for external_id in external_ids):
            if time.monotonic() > deadline or (self._task is not None and self._task.done()):
                return False
            await asyncio.sleep(0.05)
        return True

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class Prober:
    """Probes posted one at a time, each on a new connection as a provider's delivery often is;
    when each was accepted (monotonic)."""

    def __init__(self, base_url: str) -> None:
        self.url = urlsplit(base_url)
        self.accepted_at: dict[str, float] = {}

    async def post(self, user: str, request: Prepared) -> None:
        reader, writer = await asyncio.open_connection(self.url.hostname, self.url.port, limit=READ_LIMIT)
        try:
            answer = await _exchange(reader, writer, request.wire(self.url.netloc))
        finally:
            writer.close()
        if answer.status != 200 or answer.json().get("duplicate"):
            raise BenchFailed(f"a probe was answered {answer.status}: {answer.body[:300]!r}")
        self.accepted_at[user] = time.monotonic()


@dataclass
class Usage:
    """CPU used by each process of the run, and the load average, sampled over the probes."""

    server_pid: int
    worker_pid: int | None
    load_averages: list[float]
    started: dict[str, Any]

    @classmethod
    def begin(cls, server_pid: int, worker_pid: int | None) -> "Usage":
        usage = cls(server_pid, worker_pid, [], {})
        usage.started = usage._read()
        return usage

    def _read(self) -> dict[str, Any]:
        return {
            "wall": time.monotonic(),
            "machine": machine_cpu_seconds(),
            "server": server_tree_cpu_seconds(self.server_pid) or 0.0,
            "worker": process_cpu_seconds(self.worker_pid) or 0.0 if self.worker_pid else 0.0,
            "postgres": postgres_cpu_seconds(),
            "client": time.process_time(),
        }

    async def sample_load_average(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.load_averages.append(os.getloadavg()[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    def summary(self) -> dict[str, Any]:
        now, then = self._read(), self.started
        wall = now["wall"] - then["wall"]
        shares = {name: round((now[name] - then[name]) / wall, 2) for name in ("machine", "server", "worker", "client")}
        shares["postgres"] = round(postgres_cpu_between(then["postgres"], now["postgres"]) / wall, 2)
        return {
            "seconds": round(wall, 1),
            "cpu_share_of_one_core": shares,  # the machine's: of all its cores together, out of os.cpu_count()
            "load_average_1m": {
                "mean": round(statistics.fmean(self.load_averages), 2) if self.load_averages else None,
                "max": round(max(self.load_averages), 2) if self.load_averages else None,
            },
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        }


@contextlib.asynccontextmanager
async def running_backend(settings: Settings, worker_threads: int) -> AsyncIterator[tuple[str, int, int | None]]:
    """The web process (with its jobs when embedded) and, with Redis, a `churnsaver worker`:
    yields the base URL and the two pids."""
    async with running_server(settings, "ingest") as server:
        if settings.redis_url is None:
            yield server.base_url, server.pid, None
            return
        async with running_worker(settings, worker_threads) as worker_pid:
            yield server.base_url, server.pid, worker_pid


async def _graphql_check(base_url: str, api_key: str, users: list[str]) -> int:
    """How many of the probe customers have an OPEN PAYMENT_FAILED case, read through `cases`
    (every page of them, the background's included), independently of the subscription."""
    headers = {"Authorization": f"Bearer {api_key}"}
    customers: set[str] = set()
    after = None
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60) as client:
        while True:
            body = {"query": OPEN_PAYMENT_FAILED_CASES, "variables": {"after": after}}
            connection = (await client.post("/graphql", json=body, headers=headers)).json()["data"]["cases"]
            customers |= {edge["node"]["customer"]["externalId"] for edge in connection["edges"]}
            if not connection["pageInfo"]["hasNextPage"]:
                return len(customers & set(users))
            after = connection["pageInfo"]["endCursor"]


async def _stages(db: Database, tenant_id: uuid.UUID, run: str, probes: int) -> dict[str, Any]:
    """Where a probe's time went, from the stored times: webhook stored -> processed (the job picked
    up, deferred while deliveries arrive, applied) -> case stored (evaluation relayed, picked up, run)."""
    users = [probe_user(run, number) for number in range(probes)]
    inbox = select(InboxEvent.external_id, InboxEvent.received_at, InboxEvent.processed_at).where(
        InboxEvent.tenant_id == tenant_id, InboxEvent.external_id.in_([f"msg_f{user}" for user in users])
    )
    cases = (
        select(Customer.external_id, RecoveryCase.created_at)
        .join(Customer, Customer.id == RecoveryCase.customer_id)
        .where(RecoveryCase.tenant_id == tenant_id, Customer.external_id.in_(users))
    )
    async with db.tenant_session(tenant_id) as session:
        rows = await session.execute(inbox)
        processed = {external_id.removeprefix("msg_f"): (received, done) for external_id, received, done in rows}
        created = {external_id: created_at for external_id, created_at in await session.execute(cases)}
    to_processed, to_case = [], []
    for user, (received, done) in processed.items():
        if done is None or user not in created:
            continue
        to_processed.append((done - received).total_seconds())
        to_case.append((created[user] - done).total_seconds())
    return {"stored_to_processed": percentiles(to_processed), "processed_to_case_stored": percentiles(to_case)}


async def _probe(prober: Prober, target: WebhookTarget, run: str, config: LatencyConfig) -> None:
    rng = random.Random(13)
    for number in range(config.probes):
        await asyncio.sleep(rng.expovariate(1 / config.probe_interval))
        await prober.post(probe_user(run, number), probe_request(target, run, number))


async def measure(settings: Settings, config: LatencyConfig) -> dict[str, Any]:
    """The probes' latencies on one backend (`settings.redis_url`: scaled out), with what it took."""
    db = Database(settings)
    try:
        tenant = await create_tenant_with_key(db, name="Cases bench")
        target = await create_webhook_target(db, settings, tenant.id, Source.whop)
        run, now = uuid.uuid4().hex[:6], utcnow()
        seconds = config.lead_in + config.probes * config.probe_interval * 2 + config.wait_after
        count = int(config.background_rate * seconds)
        background = whop_envelopes(
            count, members=config.background_members, start=now - timedelta(seconds=30 * count), prefix=f"q{run}"
        )
        async with running_backend(settings, config.worker_threads) as (base_url, server_pid, worker_pid):
            warm = await post_all(
                base_url, requests_for(target, history(run, config.probes, now)), concurrency=16, server_pid=server_pid
            )
            if set(warm.statuses) != {200}:
                raise BenchFailed(f"the probes' histories were answered {dict(warm.statuses)}")
            if not await wait_jobs_done(db, tenant.id, SETTLE_TIMEOUT_SECONDS):
                raise BenchFailed("the probes' histories were not processed in time")
            events = CaseEventsClient()
            prober = Prober(base_url)
            await events.start(base_url, tenant.api_key)
            try:
                # A first failure, unmeasured: the subscription is live once its case shows.
                await prober.post(probe_user(run + "warm", 0), probe_request(target, run + "warm", 0))
                if not await events.wait_for([probe_user(run + "warm", 0)], SETTLE_TIMEOUT_SECONDS):
                    raise BenchFailed("the warm-up probe's case never showed on the subscription")
                stop = asyncio.Event()
                usage = Usage.begin(server_pid, worker_pid)
                sampler = asyncio.create_task(usage.sample_load_average(stop))
                sender = asyncio.create_task(
                    send_open_loop(base_url, requests_for(target, background), rate=config.background_rate, stop=stop)
                )
                try:
                    await asyncio.sleep(config.lead_in)
                    await _probe(prober, target, run, config)
                    users = [probe_user(run, number) for number in range(config.probes)]
                    seen_in_time = await events.wait_for(users, config.wait_after)
                finally:
                    stop.set()
                    sent = await sender
                    await sampler
                used = usage.summary()
                # Behind the load, the jobs may still be catching up: a case that shows late is
                # late, one that never shows is wrong.
                if not seen_in_time and await wait_jobs_done(db, tenant.id, SETTLE_TIMEOUT_SECONDS):
                    await events.wait_for(users, config.wait_after)
            finally:
                await events.close()
            shown = await _graphql_check(base_url, tenant.api_key, users)
        stages = await _stages(db, tenant.id, run, config.probes)
        inbox = await inbox_by_status(db, tenant.id, Source.whop)
    finally:
        await db.dispose()
    latencies = [events.opened_at[user] - prober.accepted_at[user] for user in users if user in events.opened_at]
    result = {
        "config": config.__dict__,
        "probes_seen": len(latencies),
        "probes_seen_within_wait_after": seen_in_time,
        "probes_shown_by_cases_query": shown,
        "subscription_errors": events.errors,
        "latency": percentiles(latencies),
        "target": f"p99 < {TARGET_P99_SECONDS * 1000:.0f} ms",
        "target_met": seen_in_time and percentiles(latencies)["p99_ms"] < TARGET_P99_SECONDS * 1000,
        "stages": stages,
        "background": sent.summary(config.background_rate),
        "usage": used,
        "inbox_by_status": inbox,
    }
    if len(latencies) != config.probes or shown != config.probes or set(sent.statuses) - {200}:
        result["error"] = (
            f"{config.probes - len(latencies)} probes' cases never showed on the subscription, "
            f"{config.probes - shown} not through cases(filter:), background answers {dict(sent.statuses)}"
            + (f"; the subscription ended: {events.errors[0]}" if events.errors else "")
        )
    return result


def flush_redis(url: str) -> None:
    """The scaled-out run starts from an empty Redis database: no queued message of an earlier run."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    config = LatencyConfig(
        probes=arguments.case_probes,
        probe_interval=arguments.case_probe_interval,
        background_rate=arguments.case_background_rate,
    )
    if backend == "postgres" and not arguments.case_redis_url:
        return {"skipped": "the scaled-out run needs Redis: set CHURNSAVER_TEST_REDIS_URL or --case-redis-url"}
    with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-cases-{backend}-") as data_dir:
        async with migrated_database(backend, Path(data_dir)) as settings:
            if backend == "postgres":
                await asyncio.to_thread(flush_redis, arguments.case_redis_url)
                settings = settings.model_copy(update={"redis_url": arguments.case_redis_url})
            try:
                return await measure(settings, config)
            except (BenchFailed, OSError) as error:
                return {"error": f"{type(error).__name__}: {error}"[:2000]}


def verdict(result: dict[str, Any]) -> str:
    return "PASS" if result["target_met"] else "FAIL"


def format_backend(title: str, result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"== {title}: skipped ({result['skipped']})"
    if not result.get("latency"):
        return f"== {title}: FAILED: {result['error']}"
    config, latency, background, usage = result["config"], result["latency"], result["background"], result["usage"]
    shares, load = usage["cpu_share_of_one_core"], usage["load_average_1m"]
    title += " + Redis, `churnsaver worker`" if title.startswith("PostgreSQL") else ", jobs in `serve`"
    lines = [
        f"== {title}: hard-decline payment.failed webhook -> case OPENED on caseEvents, "
        f"{config['probes']} probes, {config['background_rate']:.0f} other webhooks/s",
        "",
        f"  {'seen':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}   target {result['target']}: {verdict(result)}",
        f"  {result['probes_seen']:>6}{latency['p50_ms']:>9.1f}{latency['p99_ms']:>9.1f}{latency['max_ms']:>9.1f}",
        f"  cases(filter: {{kind: [PAYMENT_FAILED], status: [OPEN]}}) shows {result['probes_shown_by_cases_query']} "
        f"of {config['probes']}",
        "  stages (p50 / p99 ms, stored times): "
        + ", ".join(
            f"{name.replace('_', ' ')} {stage.get('p50_ms', 'n/a')} / {stage.get('p99_ms', 'n/a')}"
            for name, stage in result["stages"].items()
        ),
        f"  background: {background['rate_achieved_per_second']}/s achieved of "
        f"{background['rate_asked_per_second']:.0f} "
        f"({background['sent']} sent, {background['late']} late), ack p50 {background['ack_p50_ms']} ms, "
        f"p99 {background['ack_p99_ms']} ms, answers {background['statuses']}",
        f"  load average (1 min) over {usage['seconds']} s: mean {load['mean']}, max {load['max']} on "
        f"{os.cpu_count()} cores; CPU (cores): machine {shares['machine']}, web {shares['server']}, "
        f"worker {shares['worker']}, postgres {shares['postgres']}, bench client {shares['client']}",
    ]
    if "error" in result:
        lines.append(f"  FAILED: {result['error']}")
    return "\n".join(lines)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="cases: hard-decline payment.failed webhook to its case on the caseEvents subscription",
        output=arguments.cases_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
