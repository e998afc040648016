"""The cases domain's jobs: evaluate the customers an ingest batch touched, turn risk tier changes
into cases, and sweep what time alone decides (windows closing, recoveries due for verification,
daily usage drops). Every one reconciles (`reconcile.py`), which is idempotent: a retry or a
second copy records nothing twice. Nothing waits in memory: what is due is found in the database.
"""

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import CaseConsumerCursor, CaseStatus, RecoveryCase
from churnsaver.backend.cases.reconcile import ReconcileReport, reconcile_customers
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.cases.settings import load_settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.domain_events import EventFeed
from churnsaver.backend.customers.activity import NON_USAGE_NAMES
from churnsaver.backend.customers.models import CustomerDailyActivity
from churnsaver.backend.customers.repository import CustomerDailyActivityRepository
from churnsaver.backend.risk.models import TIER_CHANGED
from churnsaver.jobs.outbox import enqueue, withdraw
from churnsaver.jobs.registry import PROMPT, consumer, job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.service import list_tenants

EVALUATE_CUSTOMERS = "cases.evaluate_customers"
CONSUME_TIER_CHANGES = "cases.consume_tier_changes"
SWEEP = "cases.sweep"
SWEEP_TENANT = "cases.sweep_tenant"
CHECK_USAGE = "cases.check_usage"
# Tier changes read after the cases' own cursor; reconciling again records nothing twice.
TIER_FEED = EventFeed((TIER_CHANGED,), CaseConsumerCursor)
# Usage drops compare the last 7 days with the 28 before: customers active in these 35 days.
USAGE_LOOKBACK = timedelta(days=35)
logger = structlog.get_logger(__name__)


def enqueue_evaluation(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], *, not_before: datetime | None = None
) -> uuid.UUID | None:
    """Re-evaluate the cases of `customer_ids` after the caller's transaction commits (not before
    `not_before`): one outbox row, whose id is returned (None when there is nothing to evaluate)."""
    if not customer_ids:
        return None
    ids = sorted(str(customer_id) for customer_id in customer_ids)
    return enqueue(session, EVALUATE_CUSTOMERS, tenant_id=tenant_id, customer_ids=ids, not_before=not_before)


async def evaluate_enqueued(
    db: Database, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], job_id: uuid.UUID
) -> None:
    """Run now, in this process, an evaluation that a committed transaction enqueued as `job_id`
    (with a delay), taking that job back in the same transaction: a webhook's case is wanted
    without another trip through the queue, and the job stays the fallback should this process
    stop first. Nothing happens here when the job has been sent already."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        if not await withdraw(session, job_id):
            return
        actor = f"job:{EVALUATE_CUSTOMERS}"
        report = await reconcile_customers(session, tenant_id, customer_ids, utcnow(), actor=actor)
    _log_evaluated(tenant_id, report)


def _log_evaluated(tenant_id: uuid.UUID, report: ReconcileReport) -> None:
    if report.opened or report.events:
        logger.info("cases.evaluated", tenant_id=str(tenant_id), opened=report.opened, events=report.events)


async def evaluate(
    db: Database, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], actor: str, now: datetime | None = None
) -> ReconcileReport:
    async with db.tenant_unit_of_work(tenant_id) as session:
        return await reconcile_customers(session, tenant_id, customer_ids, now or utcnow(), actor=actor)


@job(EVALUATE_CUSTOMERS, queue="cases", priority=PROMPT, merge="customer_ids")
async def evaluate_customers(tenant_id: str, customer_ids: list[str]) -> None:
    tenant = uuid.UUID(tenant_id)
    ids = [uuid.UUID(customer_id) for customer_id in customer_ids]
    _log_evaluated(tenant, await evaluate(runtime().db, tenant, ids, f"job:{EVALUATE_CUSTOMERS}"))


async def consume_tier_events(db: Database, tenant_id: uuid.UUID, now: datetime | None = None) -> ReconcileReport:
    """Reconcile the customers of the tenant's tier events after the cursor, and move it on."""
    now = now or utcnow()
    async with db.tenant_unit_of_work(tenant_id) as session:
        batch = await TIER_FEED.read(session, tenant_id, now)
        report = ReconcileReport()
        if batch.fresh:
            customers = {event.subject_id for event in batch.fresh}
            report = await reconcile_customers(session, tenant_id, customers, now, actor=f"job:{CONSUME_TIER_CHANGES}")
        await TIER_FEED.advance(session, batch)
    TIER_FEED.committed(batch)
    if batch.full:
        async with db.tenant_unit_of_work(tenant_id) as session:
            enqueue(session, CONSUME_TIER_CHANGES, tenant_id=tenant_id)  # more behind them
    return report


@consumer(TIER_CHANGED)
@job(CONSUME_TIER_CHANGES)
async def consume_tier_changes(tenant_id: str) -> None:
    report = await consume_tier_events(runtime().db, uuid.UUID(tenant_id))
    if report.opened or report.events:
        logger.info("cases.tier_changes", tenant_id=tenant_id, opened=report.opened, events=report.events)


async def due_customers(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """Customers with an open case whose window has closed, or a recovery due for verification."""
    settings = await load_settings(session, tenant_id)
    cases = CaseRepository(session, tenant_id)
    open_due = (RecoveryCase.status == CaseStatus.open.value) & (RecoveryCase.window_ends_at <= now)
    verify_due = (
        (RecoveryCase.status == CaseStatus.recovered.value)
        & RecoveryCase.verified_at.is_(None)
        & (RecoveryCase.resolved_at <= now - settings.verify_after)
    )
    statement = cases.select_readable(RecoveryCase.customer_id).where(or_(open_due, verify_due)).distinct()
    return list((await session.execute(statement)).scalars())


async def recently_active_customers(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """Customers with product usage in the last 35 days: those a usage drop can open or close for."""
    activity = CustomerDailyActivityRepository(session, tenant_id)
    statement = activity.select_readable(CustomerDailyActivity.customer_id).where(
        CustomerDailyActivity.day >= (now - USAGE_LOOKBACK).date(),
        CustomerDailyActivity.name.not_in(sorted(NON_USAGE_NAMES)),
    )
    return list((await session.execute(statement.distinct())).scalars())


async def sweep_tenant_cases(
    db: Database, tenant_id: uuid.UUID, *, usage: bool, now: datetime | None = None
) -> ReconcileReport:
    """Reconcile the tenant's customers whose cases time has moved (and, with `usage`, every recently
    active customer), and catch up on tier events a lost notification left behind."""
    now = now or utcnow()
    async with db.tenant_session(tenant_id) as session:
        customers = set(await due_customers(session, tenant_id, now))
        if usage:
            customers |= set(await recently_active_customers(session, tenant_id, now))
    report = await evaluate(db, tenant_id, sorted(customers, key=str), f"job:{SWEEP}", now)
    report.add(await consume_tier_events(db, tenant_id, now))
    return report


@job(SWEEP)
async def sweep() -> None:
    """Every few minutes: one `cases.sweep_tenant` per tenant."""
    await _per_tenant(usage=False)


@job(CHECK_USAGE)
async def check_usage() -> None:
    """Daily: the sweep, with every recently active customer's usage checked for a drop."""
    await _per_tenant(usage=True)


async def _per_tenant(*, usage: bool) -> None:
    async with runtime().db.system_unit_of_work() as session:
        for tenant in await list_tenants(session):
            enqueue(session, SWEEP_TENANT, tenant_id=tenant.id, usage=usage)


@job(SWEEP_TENANT)
async def sweep_tenant(tenant_id: str, usage: bool) -> None:
    report = await sweep_tenant_cases(runtime().db, uuid.UUID(tenant_id), usage=usage)
    if report.opened or report.events:
        logger.info("cases.swept", tenant_id=tenant_id, opened=report.opened, events=report.events)


every(timedelta(minutes=10), SWEEP)
every(timedelta(days=1), CHECK_USAGE)
