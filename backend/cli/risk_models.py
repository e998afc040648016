"""`churnsaver model train|evaluate`: train a tenant's churn model, measure the active one.

Training (pandas, scipy, CatBoost: seconds to import) is imported inside the commands, so that
every other command starts without it.
"""

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, errors, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.service import evaluate_active_model
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

model_app = Typer(help="Train and evaluate churn-risk models.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's slug.")]
METRIC_ROWS = (
    ("ROC-AUC", "roc_auc"),
    ("PR-AUC", "pr_auc"),
    ("log loss", "log_loss"),
    ("Brier score", "brier"),
    ("top-decile lift", "top_decile_lift"),
)


def parse_as_of(value: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a timezone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of {value!r} is not an ISO 8601 date or time")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@model_app.command("train")
def train(
    tenant: TenantOption,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Train on what was known at this time (ISO 8601); default now.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Activate the new version even if it is worse.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a new version now: the holdout metrics of CatBoost and the logistic baseline, and
    which family (or the rules) ranked the holdout best and is served."""
    moment = parse_as_of(as_of)
    # A spinner on stderr for a person at a terminal; stdout holds only the result.
    show_spinner = not as_json and errors.is_terminal
    with errors.status("training…") if show_spinner else nullcontext():
        row = run_async(_train)(tenant, moment, force)
    if row.status != "ready":
        fail(row.error or f"training ended {row.status}")
    if as_json:
        print_json(model_json(row))
        return
    table = Table("holdout", "CatBoost", "logistic baseline", title=f"{tenant} {row.version}")
    for label, key in METRIC_ROWS:
        table.add_row(label, _figure(row.metrics, key), _figure(row.baseline_metrics, key))
    console.print(table)
    summary: dict[str, Any] = row.training_summary or {}
    activation = summary.get("activation", {})
    split = summary.get("split", {})
    console.print(
        f"rows: {split.get('fit', {}).get('rows', 0):,} fit, {split.get('validation', {}).get('rows', 0):,} "
        f"validation, {split.get('holdout', {}).get('rows', 0):,} holdout; {summary.get('churners', 0):,} churners",
        highlight=False,
    )
    comparison = summary.get("comparison") or {}
    if comparison:
        console.print(f"served family: {comparison['reason']}", highlight=False)
    state = "active" if row.active else "not active"
    console.print(f"{row.version} is {state}: {activation.get('reason', '')}", highlight=False)


@model_app.command("evaluate")
def evaluate(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The active version's metrics, recomputed on the current holdout."""
    report = run_async(_evaluate)(tenant)
    if as_json:
        print_json(report)
        return
    table = Table("holdout", "now", "at training", title=f"{tenant} {report['version']}")
    for label, key in METRIC_ROWS:
        table.add_row(label, _figure(report["metrics"], key), _figure(report["metrics_at_training"], key))
    console.print(table)


def model_json(row: RiskModel) -> dict[str, Any]:
    return {
        "version": row.version,
        "kind": row.kind,
        "status": row.status,
        "active": row.active,
        "as_of": row.as_of.isoformat(),
        "metrics": row.metrics,
        "baseline_metrics": row.baseline_metrics,
        "comparison": (row.training_summary or {}).get("comparison"),
        "training_summary": row.training_summary,
        "feature_importances": row.feature_importances,
    }


async def _tenant_id(db: Database, slug: str):
    async with db.system_session() as session:
        return (await tenants.get_tenant_by_slug(session, slug)).id


async def _train(slug: str, as_of: datetime | None, force: bool) -> RiskModel:
    from churnsaver.backend.risk.tasks import train_model

    # stdout holds only the result; the run's own log lines are for a log, not for this output.
    configure_logging("WARNING")
    db = Database(Settings())
    try:
        subject = AuthSubject.system(await _tenant_id(db, slug))
        return await train_model(db, subject, as_of=as_of, force=force)
    finally:
        await db.dispose()


async def _evaluate(slug: str) -> dict[str, Any]:
    configure_logging("WARNING")
    db = Database(Settings())
    try:
        subject = AuthSubject.system(await _tenant_id(db, slug))
        async with db.tenant_session(subject.tenant_id) as session:
            return await evaluate_active_model(session, subject)
    finally:
        await db.dispose()


def _figure(values: dict[str, Any] | None, key: str) -> str:
    value = (values or {}).get(key)
    return "-" if value is None else f"{value:.3f}"
