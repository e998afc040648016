"""`churnsaver score` (every customer of a tenant, with a progress bar) and `churnsaver scores export`.

Scoring and explanations (pandas, CatBoost) are imported inside the commands: every other
command starts without them.
"""

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, errors, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.risk.service import export_scores
from churnsaver.backend.risk.settings import TIERS
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

if TYPE_CHECKING:
    from churnsaver.backend.risk.scoring import Progress as OnProgress
    from churnsaver.backend.risk.scoring import ScoringReport

scores_app = Typer(help="Export customers' risk scores.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's slug.")]
EXPORT_COLUMNS = ("customer_id", "score", "tier", "model_version", "reasons", "status", "churned_at")


def score(
    tenant: TenantOption,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score as of this ISO 8601 time or date (UTC if no zone); default now."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score every customer of the tenant with its active model (the rules until one is trained)."""
    moment = parse_as_of(as_of) if as_of is not None else None
    configure_logging("WARNING")  # on stderr (a customer left out is logged): stdout holds only the result
    report = run_async(_score)(tenant, moment, show_progress=not as_json and errors.is_terminal)
    tiers = {tier: report.tiers.get(tier, 0) for tier in TIERS}
    if as_json:
        print_json(
            {
                "as_of": report.as_of.isoformat(),
                "model_version": report.model_version,
                "scored": report.scored,
                "unchanged": report.unchanged,
                "churned": report.churned,
                "tier_changes": report.tier_changes,
                "tiers": tiers,
            }
        )
        return
    console.print(
        f"scored {report.scored:,} customers as of {report.as_of.isoformat()} with model {report.model_version} "
        f"({report.unchanged:,} already scored, {report.churned:,} churned left out, "
        f"{report.tier_changes:,} tier changes)",
        highlight=False,
        markup=False,
    )
    console.print(", ".join(f"{tier} {count:,}" for tier, count in tiers.items()), highlight=False)


def parse_as_of(value: str) -> datetime:
    """An ISO 8601 time or date, UTC when it names no zone; not in the future, whose features no
    one knows yet (and whose score would outrank every real-time one until that time came)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--as-of: {value!r} is not an ISO 8601 time or date")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > utcnow():
        fail(f"--as-of: {value!r} is in the future")
    return moment


async def _score(slug: str, as_of: datetime | None, *, show_progress: bool) -> "ScoringReport":
    from churnsaver.backend.risk.tasks import score_every_customer

    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        with _customer_progress(enabled=show_progress) as on_progress:
            return await score_every_customer(db, tenant.id, as_of, on_progress)
    finally:
        await db.dispose()


@contextmanager
def _customer_progress(*, enabled: bool) -> Iterator["OnProgress | None"]:
    """A bar of customers scored, on stderr: stdout holds only the result."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task("scoring", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@scores_app.command("export")
def export(
    tenant: TenantOption,
    output: Annotated[Path, typer.Option("--output", help="The CSV file to write.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Write every scored customer who can still churn, riskiest first, then every churned customer:
    customer_id (the tenant's own id), score, tier, model_version, reasons (human text joined
    with "; "), status (active or churned), churned_at. A churned customer has no score or tier."""
    written = run_async(_export)(tenant, output)
    if as_json:
        print_json({"output": str(output), "rows": written})
        return
    console.print(f"exported {written:,} customers to {output}", highlight=False, markup=False)


async def _export(slug: str, output: Path) -> int:
    from churnsaver.backend.risk.explain import reason_text

    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        subject = AuthSubject.system(tenant.id)
        try:
            file = output.open("w", newline="", encoding="utf-8")
        except OSError as error:
            raise InvalidInput(f"{output}: cannot write ({error.strerror})") from None
        written = 0
        with file:
            writer = csv.writer(file)
            writer.writerow(EXPORT_COLUMNS)
            async with db.tenant_session(tenant.id) as session:
                async for external_id, score_value, tier, version, reasons, status, churned_at in export_scores(
                    session, subject
                ):
                    reasons_text = "; ".join(reason_text(reason) for reason in reasons or ())
                    score_text = f"{score_value:.4f}" if score_value is not None else ""
                    churned_text = churned_at.isoformat() if churned_at is not None else ""
                    writer.writerow((external_id, score_text, tier, version, reasons_text, status, churned_text))
                    written += 1
        return written
    finally:
        await db.dispose()
