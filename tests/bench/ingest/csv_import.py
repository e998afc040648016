"""CSV import: customers/s from a generated export of mixed-type columns.

The file looks like a CRM or billing export: an id, profile columns, text and numeric traits
with blanks in the numeric ones, dates, a Yes/No churn label, quoted text with commas. It is
imported in this process by the code `churnsaver import customers` runs (the figure the target
is about); a tenth of it is also imported by the command itself, whose wall time includes
starting Python. Every row must become one customer.
"""

import asyncio
import csv
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.sqlite_writer import switching_threads_often
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.ingest.imports import CustomerColumns, import_customers
from tests.bench.ingest.webhooks import BenchFailed
from tests.bench.server import REPO_ROOT, server_environment
from tests.fixtures.factories import create_tenant_with_key

TARGET_ROWS_PER_SECOND = 50_000
CLI_TIMEOUT_SECONDS = 300
CLI_SHARE = 10  # the command imports this fraction of the rows: it shows the command works, start-up included
PLANS = ["Basic", "Pro", "Elite", "Team"]
COUNTRIES = ["US", "DE", "FR", "GB", "BR", "IN", "JP", "CA"]
COLUMNS = [
    "customer_id",
    "email",
    "name",
    "plan",
    "seats",
    "mrr",
    "tenure_months",
    "signup_date",
    "country",
    "nps",
    "support_tickets",
    "last_login",
    "notes",
    "churned",
]


@dataclass(frozen=True)
class CsvConfig:
    rows: int


def write_export(path: Path, rows: int, *, seed: int = 5) -> int:
    """A `rows`-row export at `path`; its size in bytes."""
    rng = random.Random(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for number in range(rows):
            seats = rng.randrange(1, 200)
            writer.writerow(
                [
                    f"cus_{number:07d}",
                    f"customer{number}@example.com",
                    f"Customer {number}",
                    rng.choice(PLANS),
                    seats,
                    "" if rng.random() < 0.05 else f"{seats * rng.choice([9.0, 29.0, 99.0]):.2f}",
                    rng.randrange(0, 72),
                    f"20{rng.randrange(18, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                    rng.choice(COUNTRIES),
                    "" if rng.random() < 0.3 else rng.randrange(0, 11),
                    rng.randrange(0, 15),
                    f"2026-0{rng.randrange(1, 10)}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
                    "" if rng.random() < 0.7 else f'asked about "annual", seats {seats}, plan {rng.choice(PLANS)}',
                    rng.choice(["Yes", "No", "No", "No"]),
                ]
            )
    return path.stat().st_size


async def _customers(db: Database, tenant_id: Any) -> int:
    async with db.tenant_session(tenant_id) as session:
        statement = select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id)
        return (await session.execute(statement)).scalar_one()


def _run_cli(settings: Settings, path: Path, slug: str) -> tuple[float, dict[str, Any]]:
    command = [sys.executable, "-m", "churnsaver.backend.cli", "import", "customers", str(path)]
    command += ["--tenant", slug, "--label-column", "churned", "--json"]
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=server_environment(settings),
        capture_output=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise BenchFailed(f"churnsaver import customers failed: {completed.stderr.decode()[-2000:]}")
    return elapsed, json.loads(completed.stdout)


async def bench_csv(settings: Settings, config: CsvConfig) -> dict[str, Any]:
    path = settings.data_dir / "customers.csv"
    size = await asyncio.to_thread(write_export, path, config.rows)
    cli_path, cli_rows = settings.data_dir / "customers-cli.csv", max(config.rows // CLI_SHARE, 1)
    await asyncio.to_thread(write_export, cli_path, cli_rows, seed=6)
    db = Database(settings)
    try:
        in_process = await create_tenant_with_key(db, name="CSV bench")
        by_cli = await create_tenant_with_key(db, name="CSV bench (CLI)")
        columns = CustomerColumns(label="churned")
        cpu_before = time.process_time()
        started = time.perf_counter()
        with switching_threads_often():  # as the command runs it
            report = await import_customers(db, in_process.id, path, columns, lambda _done: None)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        cli_seconds, cli_report = await asyncio.to_thread(_run_cli, settings, cli_path, by_cli.tenant.slug)
        stored = await _customers(db, in_process.id)
        stored_by_cli = await _customers(db, by_cli.id)
    finally:
        await db.dispose()
    checks = {
        "rows": config.rows,
        "imported": report.imported,
        "rejected": report.rejected,
        "customers_stored": stored,
        "cli_imported": cli_report["imported"],
        "cli_customers_stored": stored_by_cli,
    }
    if not (report.imported == stored == config.rows and cli_report["imported"] == stored_by_cli == cli_rows):
        raise BenchFailed(f"the CSV import did not store one customer per row: {checks}")
    rows_per_second = config.rows / elapsed
    return {
        "config": {**config.__dict__, "file_bytes": size, "columns": len(COLUMNS)},
        "import": {
            "seconds": round(elapsed, 2),
            "rows_per_second": round(rows_per_second, 1),
            "cpu_share": round(cpu / elapsed, 2),
            # This process's CPU (SQLite's work included, PostgreSQL's not): comparable across
            # runs on a busy machine, where rows_per_second is not.
            "rows_per_cpu_second": round(config.rows / cpu, 1),
            "trait_types": {name: str(kind) for name, kind in report.columns.items()},
        },
        "cli": {
            "rows": cli_rows,
            "seconds": round(cli_seconds, 2),
            "rows_per_second": round(cli_rows / cli_seconds, 1),
        },
        "checks": checks,
        "targets": {f"import >= {TARGET_ROWS_PER_SECOND:,} rows/s": rows_per_second >= TARGET_ROWS_PER_SECOND},
    }
