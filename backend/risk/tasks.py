"""The risk engine's jobs: re-score the customers an ingest batch touched, score a tenant, score
nightly, and train a queued model version (the job boundary commits each step of a run).

A customer whose scoring fails on its data (its features or its score cannot be computed or
stored) is left out of a re-score and logged, and the others are scored: the policy every job
over a tenant's items follows (backend/core/quarantine.py). A failure of the moment retries.

Every scoring job carries the time it scores as of, fixed when it was enqueued: a retry or a
second copy then scores with the same as of and model, which `scoring.py` recognises and skips.
A training job runs only a version row that is still queued, so a retry or a second copy of a
finished run does nothing.

Every process that enqueues a job loads the job modules (the outbox checks the name), the API
and the CLI included: scoring and training (pandas, CatBoost: seconds to import) are imported
inside the jobs, so only a process that scores or trains pays for it.
"""

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.quarantine import Batch, Failure, is_transient, run_isolating
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import RiskModelRepository
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.service import list_tenants

if TYPE_CHECKING:
    from churnsaver.backend.risk.scoring import Progress, ScoringReport
    from churnsaver.backend.risk.training import TrainingRun

RESCORE_CUSTOMERS = "risk.rescore_customers"
SCORE_TENANT = "risk.score_tenant"
T = TypeVar("T")
logger = structlog.get_logger(__name__)


def enqueue_rescore(session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID]) -> None:
    """Re-score `customer_ids` as of now, after the caller's transaction commits: one outbox row."""
    if customer_ids:
        enqueue(
            session,
            RESCORE_CUSTOMERS,
            tenant_id=tenant_id,
            customer_ids=sorted(str(customer_id) for customer_id in customer_ids),
            as_of=utcnow().isoformat(),
        )


def enqueue_score_tenant(session: AsyncSession, tenant_id: uuid.UUID, as_of: datetime | None = None) -> None:
    """Score every customer of the tenant as of `as_of` (default: now), after the caller commits."""
    enqueue(session, SCORE_TENANT, tenant_id=tenant_id, as_of=(as_of or utcnow()).isoformat())


@job(RESCORE_CUSTOMERS)
async def rescore_customers(tenant_id: str, customer_ids: list[str], as_of: str) -> None:
    tenant = uuid.UUID(tenant_id)
    ids = [uuid.UUID(customer_id) for customer_id in customer_ids]
    scored = await rescore(runtime().db, tenant, datetime.fromisoformat(as_of), ids)
    if scored.tier_changes:
        logger.info("risk.rescored", tenant_id=tenant_id, scored=scored.scored, tier_changes=scored.tier_changes)


async def rescore(
    db: Database, tenant_id: uuid.UUID, as_of: datetime, customer_ids: list[uuid.UUID]
) -> "ScoringReport":
    """Score `customer_ids` as of `as_of` in one transaction, committed; a customer whose scoring
    fails on its data is left out (and logged), the others are scored."""
    from churnsaver.backend.risk.scoring import ScoringReport, load_scoring_model, score_customers

    async def work(session: AsyncSession, batch: Batch) -> "tuple[ScoringReport, list[Failure[uuid.UUID]]]":
        model = await load_scoring_model(session, tenant_id)

        async def score(group: list[uuid.UUID]) -> ScoringReport:
            return await score_customers(session, tenant_id, as_of, group, model=model)

        applied = await batch.apply(customer_ids, score)
        return ScoringReport.combined(applied.results, as_of, model.version), applied.failures

    report, failures = await run_isolating(db, tenant_id, work, what=RESCORE_CUSTOMERS)
    for failure in failures:
        logger.warning(
            "risk.customer_not_scored", tenant_id=str(tenant_id), customer_id=str(failure.item), error=failure.kind
        )
    return report


async def score_every_customer(
    db: Database, tenant_id: uuid.UUID, as_of: datetime | None = None, progress: "Progress | None" = None
) -> "ScoringReport":
    """Every customer of the tenant (`scoring.score_tenant`). When a customer's data fails a slice,
    the tenant is scored again slice by slice with `rescore`, which leaves out the customers that
    fail; scores already written are recognised and skipped."""
    from churnsaver.backend.risk.scoring import CHUNK_SIZE, ScoringReport, score_tenant

    as_of = as_of or utcnow()
    try:
        return await score_tenant(db, tenant_id, as_of, progress)
    except Exception as error:
        if is_transient(error):
            raise
        logger.warning("risk.score_tenant_isolating", tenant_id=str(tenant_id), error=type(error).__name__)
    async with db.tenant_session(tenant_id) as session:
        customer_ids = await CustomerRepository(session, tenant_id).ids()
    reports = [
        await rescore(db, tenant_id, as_of, customer_ids[start : start + CHUNK_SIZE])
        for start in range(0, len(customer_ids), CHUNK_SIZE)
    ]
    return ScoringReport.combined(reports, as_of, reports[0].model_version)


@job(SCORE_TENANT)
async def score_tenant_job(tenant_id: str, as_of: str) -> None:
    report = await score_every_customer(runtime().db, uuid.UUID(tenant_id), datetime.fromisoformat(as_of))
    logger.info(
        "risk.tenant_scored",
        tenant_id=tenant_id,
        model_version=report.model_version,
        scored=report.scored,
        unchanged=report.unchanged,
        churned=report.churned,
        tier_changes=report.tier_changes,
    )


@job("risk.score_all_tenants")
async def score_all_tenants() -> None:
    """Nightly: one `risk.score_tenant` per tenant, all as of the same moment."""
    as_of = utcnow()
    async with runtime().db.system_unit_of_work() as session:
        for tenant in await list_tenants(session):
            enqueue_score_tenant(session, tenant.id, as_of)


every(timedelta(days=1), "risk.score_all_tenants")

TRAIN = "risk.train"


def enqueue_training(session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID, *, force: bool) -> None:
    """Train the queued version `model_id`, after the caller's transaction commits."""
    enqueue(session, TRAIN, tenant_id=tenant_id, model_id=str(model_id), force=force)


# Training fails the same way when retried (the run is marked failed, not raised): few retries,
# only for a job that could not start (the database unreachable, say).
@job(TRAIN, max_retries=3)
async def train(tenant_id: str, model_id: str, force: bool = False) -> None:
    subject = AuthSubject.system(uuid.UUID(tenant_id))
    await train_model(runtime().db, subject, force=force, model_id=uuid.UUID(model_id))


async def train_model(
    db: Database,
    subject: AuthSubject,
    *,
    as_of: datetime | None = None,
    force: bool = False,
    model_id: uuid.UUID | None = None,
) -> RiskModel:
    """Run the training of version `model_id` (a new one when None) and return its final row.

    Each step of `training.py` commits in a unit of work of its own, so the version's status and
    progress are visible while the fit runs. A version that is not queued any more (a retried or
    duplicate job) is returned untouched. Ends "ready" (active or not), "rejected" (too few
    churners: the rules keep scoring) or "failed".
    """
    from churnsaver.backend.risk import training

    tenant_id = subject.tenant_id
    if model_id is None:
        async with db.tenant_unit_of_work(tenant_id) as session:
            model_id = (await training.create_version(session, subject, as_of=as_of)).id
    async with db.tenant_unit_of_work(tenant_id) as session:
        claimed = await training.claim_run(session, tenant_id, model_id)
    if claimed:
        try:
            await _run_training(db, tenant_id, model_id, force)
        except Exception:
            logger.exception("risk.training_failed", tenant_id=str(tenant_id), model_id=str(model_id))
            async with db.tenant_unit_of_work(tenant_id) as session:
                error = "training failed unexpectedly"
                await training.finish_run(session, tenant_id, model_id, status="failed", error=error)
    async with db.tenant_session(tenant_id) as session:
        return await RiskModelRepository(session, tenant_id).get_or_raise(model_id, what="risk model")


async def _with_heartbeat(
    db: Database, tenant_id: uuid.UUID, model_id: uuid.UUID, stage: str, percent: int, work: Awaitable[T]
) -> T:
    """`work`'s result, recording the run's stage with a heartbeat every HEARTBEAT_EVERY while it
    runs: a run whose heartbeat stops has lost its process (`training.stalled`)."""
    from churnsaver.backend.risk import training

    task = asyncio.ensure_future(work)
    while True:
        async with db.tenant_unit_of_work(tenant_id) as session:
            await training.record_progress(session, tenant_id, model_id, stage, percent)
        done, _ = await asyncio.wait({task}, timeout=training.HEARTBEAT_EVERY.total_seconds())
        if done:
            return task.result()


async def _prepare(db: Database, tenant_id: uuid.UUID, model_id: uuid.UUID) -> "TrainingRun":
    from churnsaver.backend.risk import training

    async with db.tenant_session(tenant_id) as session:
        return await training.prepare_run(session, tenant_id, model_id)


async def _run_training(db: Database, tenant_id: uuid.UUID, model_id: uuid.UUID, force: bool) -> None:
    from churnsaver.backend.risk import training

    run = await _with_heartbeat(db, tenant_id, model_id, "building training rows", 5, _prepare(db, tenant_id, model_id))
    summary = run.training_set.summary
    if (reason := run.rejection()) is not None:
        async with db.tenant_unit_of_work(tenant_id) as session:
            await training.finish_run(
                session, tenant_id, model_id, status="rejected", training_summary=summary, error=reason
            )
        return
    try:
        fitting = asyncio.to_thread(training.fit, run.training_set)
        trained = await _with_heartbeat(db, tenant_id, model_id, "training", 20, fitting)
    except training.NotEnoughData as not_enough:
        async with db.tenant_unit_of_work(tenant_id) as session:
            await training.finish_run(
                session, tenant_id, model_id, status="rejected", training_summary=summary, error=str(not_enough)
            )
        return
    async with db.tenant_unit_of_work(tenant_id) as session:
        await training.record_progress(session, tenant_id, model_id, "comparing with the active version", 90)
    async with db.tenant_unit_of_work(tenant_id) as session:
        await training.store_trained(session, tenant_id, model_id, trained, run, force=force)
