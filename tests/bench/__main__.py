"""`make bench`: the foundation benchmark, then the ingest benchmark (tests/bench/ingest/run.py), the
history import benchmark (tests/bench/ingest/history.py), then the risk benchmark (tests/bench/risk/run.py)
with the static churn tables (tests/bench/risk/static_tables.py).

Then the cases benchmark (tests/bench/cases/latency.py): a hard-decline webhook to its case on the
`caseEvents` subscription, under a background of other webhooks. Then the campaigns benchmark
(tests/bench/campaigns/throughput.py): due campaign steps to an SMTP server, none twice; and
(tests/bench/campaigns/first_email.py) a hard-decline webhook to its first email at an SMTP server.

`python -m tests.bench [all|foundation|ingest|history|risk|static-tables|cases|campaigns|first-email] [options]`;
`all` is the default.

The foundation benchmark: the GraphQL `customers` page against a plain Starlette endpoint
running the same SQL. For each backend (the embedded SQLite always; PostgreSQL when CHURNSAVER_TEST_DATABASE_URL is
set) it seeds a fresh database, counts SQL statements per request in-process, then serves both
endpoints from one uvicorn process and loads them from here, over 127.0.0.1. It prints a table
and writes var/bench/foundation.json. Targets are reported, never asserted on timings; the run
fails only if an endpoint answers wrongly.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.campaigns import first_email
from tests.bench.campaigns import throughput as campaigns_throughput
from tests.bench.cases import latency as cases_latency
from tests.bench.dataset import BACKENDS, SeededDatabase, available_backends, seeded_database
from tests.bench.ingest import history
from tests.bench.ingest import run as ingest_run
from tests.bench.load import PAGE_SIZE, compare_under_load, graphql_fetch, plain_fetch
from tests.bench.report import format_backend, ratio_of, write_json
from tests.bench.risk import run as risk_run
from tests.bench.risk import static_tables
from tests.bench.server import REPO_ROOT, running_server
from tests.bench.statements import count_statements
from tests.bench.suite import any_backend_failed

RUN_TIMEOUT_SECONDS = (
    900
    + ingest_run.RUN_TIMEOUT_SECONDS
    + history.RUN_TIMEOUT_SECONDS
    + risk_run.RUN_TIMEOUT_SECONDS
    + cases_latency.RUN_TIMEOUT_SECONDS
    + campaigns_throughput.RUN_TIMEOUT_SECONDS
    + first_email.RUN_TIMEOUT_SECONDS
)
SUITES = ("all", "foundation", "ingest", "history", "risk", "static-tables", "cases", "campaigns", "first-email")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", choices=SUITES, default="all", help="which benchmark (default: both)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per endpoint first")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the requests are split into")
    parser.add_argument("--backend", choices=sorted(BACKENDS), action="append", help="default: every available one")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "var" / "bench" / "foundation.json")
    ingest_run.add_arguments(parser)
    history.add_arguments(parser)
    risk_run.add_arguments(parser)
    static_tables.add_arguments(parser)
    cases_latency.add_arguments(parser)
    campaigns_throughput.add_arguments(parser)
    first_email.add_arguments(parser)
    return parser.parse_args()


async def bench_backend(seeded: SeededDatabase, arguments: argparse.Namespace) -> dict[str, Any]:
    statements = await count_statements(seeded)
    endpoints = {
        "graphql": graphql_fetch(seeded.headers, arguments.customers),
        "plain": plain_fetch(seeded.headers, arguments.customers),
    }
    async with running_server(seeded.settings) as server:
        load = await compare_under_load(
            server.base_url,
            server.pid,
            endpoints,
            requests=arguments.requests,
            warmup=arguments.warmup,
            concurrency=arguments.concurrency,
            rounds=arguments.rounds,
        )
    return {
        "config": {
            "customers": arguments.customers,
            "page_size": PAGE_SIZE,
            "requests": arguments.requests,
            "warmup": arguments.warmup,
            "concurrency": arguments.concurrency,
            "rounds": arguments.rounds,
        },
        "load": load,
        "ratio": ratio_of(load),
        "sql_statements": statements,
    }


async def run_foundation(arguments: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "foundation: GraphQL customers(first: 100) against a plain Starlette endpoint, same SQL",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "backends": {},
    }
    backends = arguments.backend or available_backends()
    if "postgres" in backends and "postgres" not in available_backends():
        raise SystemExit("--backend postgres needs CHURNSAVER_TEST_DATABASE_URL")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-{backend}-") as data_dir:
            async with seeded_database(backend, Path(data_dir), arguments.customers) as seeded:
                result = await bench_backend(seeded, arguments)
        results["backends"][backend] = result
        print(format_backend(BACKENDS[backend], result), end="\n\n", flush=True)
    return results


async def main() -> None:
    arguments = parse_arguments()
    ingest_failed = history_failed = risk_failed = cases_failed = campaigns_failed = email_failed = False
    async with asyncio.timeout(RUN_TIMEOUT_SECONDS):
        if arguments.suite in ("all", "foundation"):
            results = await run_foundation(arguments)
            write_json(arguments.output, results)
            print(f"results written to {arguments.output}", end="\n\n", flush=True)
        if arguments.suite in ("all", "ingest"):
            results = await ingest_run.run(arguments)
            ingest_failed = ingest_run.failed(results)
        if arguments.suite in ("all", "history"):
            results = await history.run(arguments)
            history_failed = history.failed(results)
        if arguments.suite in ("all", "risk"):
            results = await risk_run.run(arguments)
            risk_failed = risk_run.failed(results)
        if arguments.suite in ("all", "risk", "static-tables"):
            await static_tables.run(arguments)
        if arguments.suite in ("all", "cases"):
            results = await cases_latency.run(arguments)
            cases_failed = any_backend_failed(results)
        if arguments.suite in ("all", "campaigns"):
            results = await campaigns_throughput.run(arguments)
            campaigns_failed = any_backend_failed(results)
        if arguments.suite in ("all", "first-email"):
            results = await first_email.run(arguments)
            email_failed = any_backend_failed(results)
    if arguments.suite == "static-tables":
        return
    if "postgres" not in results["backends"]:
        print("PostgreSQL skipped: set CHURNSAVER_TEST_DATABASE_URL to bench it too", file=sys.stderr)
    if ingest_failed:
        raise SystemExit("the ingest benchmark failed: see FAILED above")
    if history_failed:
        raise SystemExit("the history import benchmark failed: see FAILED above")
    if risk_failed:
        raise SystemExit("the risk benchmark failed: a customer was left unscored")
    if cases_failed:
        raise SystemExit("the cases benchmark failed: see FAILED above")
    if campaigns_failed:
        raise SystemExit("the campaigns benchmark failed: a mail was missing or sent twice")
    if email_failed:
        raise SystemExit("the first-email benchmark failed: see FAILED above")


if __name__ == "__main__":
    asyncio.run(main())
