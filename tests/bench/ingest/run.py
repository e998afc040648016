"""`python -m tests.bench ingest`: durable webhooks/s, events API events/s and CSV rows/s.

For each backend (the embedded SQLite always; PostgreSQL when CHURNSAVER_TEST_DATABASE_URL is
set) it migrates a fresh database, then runs the webhook benchmarks (bursts, then one sustained
load), the events API and CSV ones against real uvicorn processes on 127.0.0.1 (see each
module). On SQLite it also counts a delivery's instructions under callgrind (instructions.py).
It prints a table per backend and writes var/bench/ingest.json. Targets are reported, never
asserted on timings; the run fails (exit 1) only if something was not stored or processed
exactly once, or a section could not run.
"""

import argparse
import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.bench.ingest import instructions
from tests.bench.ingest.csv_import import CsvConfig, bench_csv
from tests.bench.ingest.events import EventsConfig, bench_events
from tests.bench.ingest.report import format_backend
from tests.bench.ingest.webhooks import WebhookConfig, bench_webhooks
from tests.bench.server import REPO_ROOT
from tests.bench.suite import run_on_backends
from tests.fixtures.databases import migrated_database

RUN_TIMEOUT_SECONDS = 1500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ingest options; `--backend` is the foundation's, shared by both benchmarks."""
    parser.add_argument("--webhooks", type=int, default=10_000, help="measured webhook deliveries")
    parser.add_argument("--webhook-warmup", type=int, default=1_000)
    parser.add_argument("--webhook-concurrency", type=int, default=64)
    parser.add_argument("--members", type=int, default=2_000, help="Whop members the deliveries are about")
    parser.add_argument(
        "--webhook-rounds", type=int, default=4, help="alternating rounds of the bare endpoint and the app"
    )
    parser.add_argument(
        "--without-diagnostic", action="store_true", help="skip the webhook run with jobs stopped (diagnostic)"
    )
    parser.add_argument(
        "--sustained-webhooks",
        type=int,
        default=100_000,
        help="webhook deliveries in one round long enough for processing to run beside it (0: skip)",
    )
    parser.add_argument(
        "--instruction-deliveries", type=int, default=1_000, help="deliveries counted under callgrind (0: skip)"
    )
    parser.add_argument("--event-batches", type=int, default=60, help="measured events API batches")
    parser.add_argument("--event-batch-size", type=int, default=500)
    parser.add_argument("--event-concurrency", type=int, default=4)
    parser.add_argument("--csv-rows", type=int, default=200_000)
    parser.add_argument("--ingest-output", type=Path, default=REPO_ROOT / "var" / "bench" / "ingest.json")


async def _section(name: str, run: Any) -> dict[str, Any]:
    try:
        return await run
    except Exception as error:  # reported in the table and the JSON; the run exits 1
        return {"error": f"{type(error).__name__}: {error}"[:2000], "section": name}


async def _instructions(deliveries: int) -> dict[str, Any]:
    """The webhook path counted in instructions (instructions.py): SQLite only, it makes its own database."""
    if not deliveries:
        return {"skipped": "not asked for (--instruction-deliveries 0)"}
    if not instructions.available():
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    return await _section("instructions", asyncio.to_thread(instructions.bench_instructions, deliveries))


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-ingest-{backend}-") as data_dir:
        async with migrated_database(backend, Path(data_dir)) as settings:
            webhook_config = WebhookConfig(
                deliveries=arguments.webhooks,
                warmup=arguments.webhook_warmup,
                concurrency=arguments.webhook_concurrency,
                members=arguments.members,
                rounds=arguments.webhook_rounds,
            )
            webhooks = await _section("webhooks", bench_webhooks(settings, webhook_config))
            if backend == "sqlite" and "error" not in webhooks:
                webhooks["instructions"] = await _instructions(arguments.instruction_deliveries)
            # Before the events section, whose server stops once the events are processed, not once
            # the re-scores they enqueued are done: the next server to start runs what is left.
            if arguments.sustained_webhooks and "error" not in webhooks:
                sustained = replace(webhook_config, deliveries=arguments.sustained_webhooks, rounds=1, sustained=True)
                webhooks["sustained"] = await _section("sustained webhooks", bench_webhooks(settings, sustained))
            events_config = EventsConfig(
                batches=arguments.event_batches,
                batch_size=arguments.event_batch_size,
                warmup_batches=4,
                concurrency=arguments.event_concurrency,
                customers=5_000,
            )
            events = await _section("events", bench_events(settings, events_config))
            csv = await _section("csv", bench_csv(settings, CsvConfig(rows=arguments.csv_rows)))
            # Last: it leaves its deliveries unprocessed, which a later server would then process.
            if not arguments.without_diagnostic and "error" not in webhooks:
                diagnostic = replace(webhook_config, processing=False)
                without_jobs = await _section("webhooks without jobs", bench_webhooks(settings, diagnostic))
                webhooks["app_without_jobs"] = without_jobs.get("app", without_jobs)
    return {"webhooks": webhooks, "events": events, "csv": csv}


def failed(results: dict[str, Any]) -> bool:
    return any(
        "error" in section
        or any("error" in section.get(part, {}) for part in ("app_without_jobs", "instructions", "sustained"))
        for backend in results["backends"].values()
        for section in backend.values()
    )


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="ingest: durable Whop webhooks against a bare endpoint, events API batches, CSV import",
        output=arguments.ingest_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
