"""`churnsaver import customers|events`: bulk imports from files, with a progress bar."""

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, errors, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.core.sqlite_writer import switching_threads_often
from churnsaver.backend.ingest import imports
from churnsaver.backend.ingest.imports import MAX_REPORTED_REJECTIONS, CustomerColumns, ImportReport, OnProgress
from churnsaver.tenants import service as tenants

import_app = Typer(help="Import customers (CSV) and events (JSON Lines) from files.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's slug.")]
PRINTED_REJECTIONS = 20


@import_app.command("customers")
def import_customers(
    file: Annotated[Path, typer.Argument(help="A CSV export with a header row, UTF-8.", show_default=False)],
    tenant: TenantOption,
    id_column: Annotated[
        str | None, typer.Option(help="The customer id column; default: id, customer_id, customerID or external_id.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="A known churn outcome: yes/no, true/false, 1/0 or churned/active.")
    ] = None,
    churn_date_column: Annotated[str | None, typer.Option(help="When the customer churned (ISO 8601).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create or update a customer per row; the other columns become traits with inferred types.

    Re-running the same file duplicates nothing.
    """
    columns = CustomerColumns(id=id_column, label=label_column, churn_date=churn_date_column)
    report = _run_import(file, tenant, partial(_import_customers, path=file, columns=columns), as_json)
    if as_json:
        print_json(
            {
                "imported": report.imported,
                "updated": report.updated,
                **_rejections_json(report),
                "columns": report.columns,
            }
        )
        return
    console.print(
        f"customers: {report.imported:,} new, {report.updated:,} updated, {report.rejected:,} rows rejected",
        highlight=False,
    )
    traits = ", ".join(f"{name} ({kind})" for name, kind in report.columns.items())
    console.print(f"traits: {traits}", markup=False, highlight=False, soft_wrap=True)
    _print_rejections(report, "rows")


@import_app.command("events")
def import_events(
    file: Annotated[Path, typer.Argument(help="Events-API items, one JSON object per line.", show_default=False)],
    tenant: TenantOption,
    as_json: JsonOption = False,
) -> None:
    """Store and process events-API items; items already imported (same messageId) are skipped."""
    report = _run_import(file, tenant, partial(imports.import_events, path=file), as_json, counting="events")
    if as_json:
        print_json(
            {
                "imported": report.imported,
                "duplicates": report.duplicates,
                "quarantined": report.quarantined,
                **_rejections_json(report),
            }
        )
        return
    console.print(
        f"events: {report.imported:,} new, {report.duplicates:,} already imported, {report.rejected:,} lines rejected",
        highlight=False,
    )
    if report.quarantined:
        console.print(
            f"  {report.quarantined:,} events could not be applied: quarantined (see failedEvents; "
            "`churnsaver ingest retry` once fixed)",
            highlight=False,
        )
    _print_rejections(report, "lines")


async def _import_customers(
    db: Database, tenant_id: uuid.UUID, path: Path, columns: CustomerColumns, on_progress: OnProgress
) -> ImportReport:
    # The file is parsed in the event loop while SQLite's writer thread writes: switch often.
    with switching_threads_often():
        return await imports.import_customers(db, tenant_id, path, columns, on_progress)


# An import bound to its file and options, still to be given the database, tenant and progress.
ImportRun = Callable[..., Awaitable[ImportReport]]


def _run_import(file: Path, slug: str, run: ImportRun, as_json: bool, *, counting: str | None = None) -> ImportReport:
    if not file.is_file():
        fail(f"{file}: no such file")
    configure_logging("WARNING")  # on stderr (a quarantined line is logged): stdout holds only the report
    # A bar drawn into a pipe or a log is noise: only for a person at a terminal.
    return run_async(_import)(file, slug, run, show_progress=not as_json and errors.is_terminal, counting=counting)


async def _import(file: Path, slug: str, run: ImportRun, *, show_progress: bool, counting: str | None) -> ImportReport:
    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        with _file_progress(file, enabled=show_progress, counting=counting) as (on_progress, on_count):
            if counting is None:
                return await run(db, tenant.id, on_progress=on_progress)
            return await run(db, tenant.id, on_progress=on_progress, on_events=on_count)
    finally:
        await db.dispose()


class CountRateColumn(ProgressColumn):
    """What was done, and how many a second: `1,234,567 events, 61,000/s`."""

    def __init__(self, counting: str) -> None:
        super().__init__()
        self.counting = counting

    def render(self, task: Task) -> Text:
        done = task.fields.get("count", 0)
        rate = done / task.elapsed if task.elapsed else 0
        return Text(f"{done:,} {self.counting}, {rate:,.0f}/s", style="progress.data.speed")


@contextmanager
def _file_progress(
    file: Path, *, enabled: bool, counting: str | None
) -> Iterator[tuple[OnProgress, Callable[[int], None]]]:
    """A progress bar of the bytes read, with its ETA (and, `counting` things, how many a second),
    on stderr: stdout holds only the result."""
    if not enabled:
        yield (lambda _done: None), (lambda _count: None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        CountRateColumn(counting) if counting else TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task(file.name, total=file.stat().st_size, count=0)
        yield (lambda done: progress.update(task, completed=done)), (lambda count: progress.update(task, count=count))


def _rejections_json(report: ImportReport) -> dict[str, Any]:
    return {
        "rejected": [{"line": r.line, "reason": r.reason} for r in report.rejections],
        "rejected_count": report.rejected,
    }


def _print_rejections(report: ImportReport, what: str) -> None:
    for rejection in report.rejections[:PRINTED_REJECTIONS]:
        # Reasons quote the file's own text: printed as is, never read as rich markup.
        console.print(f"  line {rejection.line}: {rejection.reason}", markup=False, highlight=False, soft_wrap=True)
    if report.rejected > PRINTED_REJECTIONS:
        more = report.rejected - PRINTED_REJECTIONS
        console.print(f"  … and {more:,} more rejected {what} (--json lists the first {MAX_REPORTED_REJECTIONS:,})")
