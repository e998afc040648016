"""Scoring jobs: re-score the customers an ingest batch touched, score a tenant, score nightly.

Every job carries the time it scores as of, fixed when it was enqueued: a retry or a second copy
then scores with the same as of and model, which `scoring.py` recognises and skips.

Ingestion enqueues re-scores through this module, and every CLI command and job module imports
ingestion: `scoring.py` (pandas, CatBoost: seconds to import) is imported inside the jobs that
score, so only a process that scores pays for it.
"""

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.db import utcnow
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.service import list_tenants

RESCORE_CUSTOMERS = "risk.rescore_customers"
SCORE_TENANT = "risk.score_tenant"
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
    from churnsaver.backend.risk.scoring import score_customers

    tenant = uuid.UUID(tenant_id)
    async with runtime().db.tenant_unit_of_work(tenant) as session:
        report = await score_customers(
            session, tenant, datetime.fromisoformat(as_of), [uuid.UUID(customer_id) for customer_id in customer_ids]
        )
    if report.tier_changes:
        logger.info("risk.rescored", tenant_id=tenant_id, scored=report.scored, tier_changes=report.tier_changes)


@job(SCORE_TENANT)
async def score_tenant_job(tenant_id: str, as_of: str) -> None:
    from churnsaver.backend.risk.scoring import score_tenant

    report = await score_tenant(runtime().db, uuid.UUID(tenant_id), datetime.fromisoformat(as_of))
    logger.info(
        "risk.tenant_scored",
        tenant_id=tenant_id,
        model_version=report.model_version,
        scored=report.scored,
        unchanged=report.unchanged,
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
