"""`python -m tests.bench history`: a subscription business's history imported end to end.

A JSON Lines history (default 5 million events: usage and subscription events of about 3,000
customers over 21 months) is generated once into var/bench (reused by later runs of the same
size, never committed) and imported into a fresh database of each backend by the code
`churnsaver import events` runs, its worker process included. The import returns once every
event is stored and applied and the daily aggregates the risk features read are written: the
figure is events/s over that whole run, with the CPU time of both processes beside it (the
machine is shared: wall time alone says little). Then the database's size is set against the
file's. A second run of the same file must import nothing new. Targets: 50,000 events/s, a
database at most twice the file.
"""

import argparse
import asyncio
import operator
import os
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import CustomerDailyActivity, CustomerEvent
from churnsaver.backend.ingest.imports import import_events
from tests.bench.ingest.webhooks import BenchFailed
from tests.bench.server import REPO_ROOT
from tests.bench.suite import run_on_backends
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key

TARGET_EVENTS_PER_SECOND = 50_000
TARGET_SIZE_RATIO = 2.0
RUN_TIMEOUT_SECONDS = 3600
CUSTOMERS = 3_000
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 640  # 21 months
USAGE_EVENTS = ["login", "report.exported", "dashboard.viewed", "invite.sent", "api.call", "file.uploaded"]
PLANS = {"starter": 2900, "pro": 7900, "business": 19900}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=5_000_000, help="events in the generated history")
    parser.add_argument("--history-output", type=Path, default=REPO_ROOT / "var" / "bench" / "history.json")


def history_path(events: int) -> Path:
    return REPO_ROOT / "var" / "bench" / f"history-{events}.jsonl"


def write_history(path: Path, events: int, *, seed: int = 19) -> int:
    """About `events` events-API items, day by day: each customer subscribes, pays monthly, uses
    the product at its own rate (fading before a cancellation), and some cancel. The size in bytes."""
    rng = random.Random(seed)
    rate = events / (CUSTOMERS * DAYS * 0.8)  # usage events a customer-day, about 80% of days subscribed
    customers = [
        {
            "id": f"cus_{index:05d}",
            "joined": rng.randrange(0, DAYS // 3) if index % 3 else 0,
            "leaves": rng.randrange(DAYS // 3, DAYS * 2),
            "plan": rng.choice(list(PLANS)),
            "activity": rng.lognormvariate(0, 0.6),
            "mix": [rng.random() ** 2 for _ in USAGE_EVENTS],
        }
        for index in range(CUSTOMERS)
    ]
    written = 0
    temporary = path.with_suffix(".partial")
    with temporary.open("wb") as file:
        for day in range(DAYS):
            lines: list[bytes] = []
            for customer in customers:
                if not customer["joined"] <= day <= customer["leaves"] or written >= events:
                    continue
                lines += _customer_day(rng, customer, day, rate)
            lines = lines[: events - written]
            written += len(lines)
            file.write(b"".join(lines))
    temporary.replace(path)
    return path.stat().st_size


def _customer_day(rng: random.Random, customer: dict[str, Any], day: int, rate: float) -> list[bytes]:
    name, moment = customer["id"], START + timedelta(days=day)
    items: list[dict[str, Any]] = []
    subscription = {"subscriptionId": f"sub_{name}", "plan": customer["plan"], "currency": "USD"}
    price = PLANS[customer["plan"]]
    if day == customer["joined"]:
        items.append(_item(name, "subscription.started", moment, {**subscription, "mrr": price}, "start"))
    elif (day - customer["joined"]) % 30 == 0:
        items.append(_item(name, "payment.succeeded", moment, {"amount": price, "currency": "USD"}, f"pay{day}"))
    if day == customer["leaves"]:
        items.append(_item(name, "subscription.canceled", moment + timedelta(hours=23), subscription, "cancel"))
    fading = min(1.0, max(0.1, (customer["leaves"] - day) / 30))
    for _ in range(_poisson(rng, rate * customer["activity"] * fading)):
        event = rng.choices(USAGE_EVENTS, weights=customer["mix"])[0]
        at = moment + timedelta(seconds=rng.randrange(86_400))
        items.append(_item(name, event, at, {}, f"u{day}-{rng.getrandbits(40):x}"))
    return [orjson.dumps(item) + b"\n" for item in items]


def _item(customer: str, event: str, at: datetime, properties: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"{customer}-{key}",
        "customerId": customer,
        "event": event,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and of its finished children (the parsing worker), user and system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


async def _database_bytes(db: Database, settings: Settings) -> int:
    if settings.database_url is None:
        async with db.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return sum(path.stat().st_size for path in settings.data_dir.glob("*.db*"))
    async with db.engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())


async def _counts(db: Database, tenant_id: Any) -> tuple[int, int]:
    async with db.tenant_session(tenant_id) as session:
        events = (await session.execute(select(func.count()).select_from(CustomerEvent))).scalar_one()
        days = (await session.execute(select(func.count()).select_from(CustomerDailyActivity))).scalar_one()
    return events, days


async def bench_history(settings: Settings, events: int) -> dict[str, Any]:
    path = history_path(events)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(write_history, path, events)
    lines = sum(1 for _ in path.open("rb"))
    file_bytes = path.stat().st_size
    db = Database(settings)
    try:
        tenant = await create_tenant_with_key(db, name="History bench")
        empty_bytes = await _database_bytes(db, settings)
        cpu, load, started = _cpu_seconds(), os.getloadavg(), time.perf_counter()
        report = await import_events(db, tenant.tenant.id, path, on_progress=lambda _done: None)
        elapsed, (own_cpu, worker_cpu) = time.perf_counter() - started, map(operator.sub, _cpu_seconds(), cpu)
        stored, aggregate_rows = await _counts(db, tenant.tenant.id)
        database_bytes = await _database_bytes(db, settings) - empty_bytes
        again_started = time.perf_counter()
        again = await import_events(db, tenant.tenant.id, path, on_progress=lambda _done: None)
        again_elapsed = time.perf_counter() - again_started
    finally:
        await db.dispose()
    if (report.imported, report.rejected, report.quarantined) != (lines, 0, 0) or stored < lines:
        raise BenchFailed(f"{lines} lines, but {report.imported} imported, {report.rejected} rejected, {stored} stored")
    if again.imported:
        raise BenchFailed(f"a re-run of the same file imported {again.imported} events again")
    return {
        "events": lines,
        "file_bytes": file_bytes,
        "seconds": elapsed,
        "events_per_second": lines / elapsed,
        "cpu_seconds": own_cpu + worker_cpu,  # both processes; the database server's not counted
        "importer_cpu_seconds": own_cpu,  # this process: writing (SQLite's work included)
        "parser_cpu_seconds": worker_cpu,  # the parsing worker, counted once it has ended
        "load_average_before": load,
        "database_bytes": database_bytes,
        "size_ratio": database_bytes / file_bytes,
        "daily_activity_rows": aggregate_rows,
        "rerun_seconds": again_elapsed,
        "rerun_duplicates": again.duplicates,
    }


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-history-{backend}-") as data_dir:
        async with migrated_database(backend, Path(data_dir)) as settings:
            try:
                return {"history": await bench_history(settings, arguments.events)}
            except Exception as error:  # reported in the table and the JSON; the run exits 1
                return {"history": {"error": f"{type(error).__name__}: {error}"[:2000]}}


def format_backend(name: str, result: dict[str, Any]) -> str:
    history = result["history"]
    if "error" in history:
        return f"{name}: history import FAILED: {history['error']}"
    rate, ratio = history["events_per_second"], history["size_ratio"]
    return "\n".join(
        [
            f"{name}: history import, {history['events']:,} events, "
            f"{history['file_bytes'] / 1e6:,.0f} MB of JSON Lines",
            f"  {rate:,.0f} events/s end to end ({history['seconds']:,.1f} s, {history['cpu_seconds']:,.1f} CPU s: "
            f"{history['importer_cpu_seconds']:,.1f} importing, {history['parser_cpu_seconds']:,.1f} parsing; "
            f"target {TARGET_EVENTS_PER_SECOND:,}: {'met' if rate >= TARGET_EVENTS_PER_SECOND else 'NOT met'})",
            f"  database {history['database_bytes'] / 1e6:,.0f} MB, {ratio:.2f}x the file "
            f"(target {TARGET_SIZE_RATIO:.0f}x: {'met' if ratio <= TARGET_SIZE_RATIO else 'NOT met'})",
            f"  re-run: {history['rerun_duplicates']:,} duplicates, nothing new, {history['rerun_seconds']:,.1f} s",
            f"  load average before: {', '.join(f'{value:.1f}' for value in history['load_average_before'])}",
        ]
    )


def failed(results: dict[str, Any]) -> bool:
    return any("error" in backend["history"] for backend in results["backends"].values())


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="history import: a generated events history through `churnsaver import events`, end to end",
        output=arguments.history_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
