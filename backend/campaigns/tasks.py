"""The campaigns domain's jobs: enroll cases as they open (a consumer of cases' `case.changed`
domain events, after a cursor of its own), and dispatch due steps (a job queued for each due time,
and a periodic sweep, so that nothing depends on a process staying up or on Redis: the step rows
are the truth).
"""

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import update

from churnsaver.backend.campaigns.dispatch import dispatch_due
from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE, EnrollReport, enroll_cases
from churnsaver.backend.campaigns.models import CampaignConsumerCursor, CampaignStepDue, StepStatus
from churnsaver.backend.campaigns.playbooks import StepCondition
from churnsaver.backend.cases.models import CASE_CHANGED
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.domain_events import EventFeed
from churnsaver.backend.core.repository import owned_by
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import PROMPT, consumer, job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.service import list_tenants

CONSUME_CASE_CHANGES = "campaigns.consume_case_changes"
SWEEP = "campaigns.sweep"
CASE_FEED = EventFeed((CASE_CHANGED,), CampaignConsumerCursor)
logger = structlog.get_logger(__name__)


async def consume_case_events(db: Database, tenant_id: uuid.UUID, now: datetime | None = None) -> EnrollReport:
    """Enroll the cases opened since the cursor; a joined payment case (the provider's retry
    failed) makes its steps waiting for that retry due now."""
    now = now or utcnow()
    async with db.tenant_unit_of_work(tenant_id) as session:
        batch = await CASE_FEED.read(session, tenant_id, now)
        opened = [event.subject_id for event in batch.fresh if event.payload.get("case_event") == "opened"]
        report = await enroll_cases(session, tenant_id, opened, now) if opened else EnrollReport()
        joined = [event.subject_id for event in batch.fresh if event.payload.get("case_event") == "joined"]
        if joined:
            statement = (
                update(CampaignStepDue)
                .where(
                    owned_by(tenant_id, CampaignStepDue),
                    CampaignStepDue.case_id.in_(joined),
                    CampaignStepDue.status == StepStatus.pending.value,
                    CampaignStepDue.condition == StepCondition.after_next_retry.value,
                    CampaignStepDue.due_at > now,
                )
                .values(due_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if (await session.execute(statement)).rowcount:  # type: ignore[attr-defined]
                enqueue(session, DISPATCH_DUE, tenant_id=tenant_id)
        await CASE_FEED.advance(session, batch)
    CASE_FEED.committed(batch)
    if batch.full:
        async with db.tenant_unit_of_work(tenant_id) as session:
            enqueue(session, CONSUME_CASE_CHANGES, tenant_id=tenant_id)  # more behind them
    return report


@consumer(CASE_CHANGED)
@job(CONSUME_CASE_CHANGES, queue="cases", priority=PROMPT)
async def consume_case_changes(tenant_id: str) -> None:
    report = await consume_case_events(runtime().db, uuid.UUID(tenant_id))
    if report.enrolled or report.held_out:
        logger.info("campaigns.enrolled", tenant_id=tenant_id, enrolled=report.enrolled, held_out=report.held_out)


@job(DISPATCH_DUE, queue="cases", priority=PROMPT)
async def dispatch_due_steps(tenant_id: str) -> None:
    """Send the tenant's due steps. Queued for each step's due time; a copy that finds nothing
    due (another took them, or the steps moved) does nothing."""
    report = await dispatch_due(runtime().db, uuid.UUID(tenant_id))
    if report.sent or report.stopped or report.skipped:
        logger.info(
            "campaigns.dispatched",
            tenant_id=tenant_id,
            sent=report.sent,
            skipped=report.skipped,
            stopped=report.stopped,
            deferred=report.deferred,
        )


@job(SWEEP)
async def sweep() -> None:
    """Every minute: a dispatch per tenant, for due steps whose job was lost (a flushed Redis
    loses no step: the rows are the truth), and the case events a lost notification left behind."""
    async with runtime().db.system_unit_of_work() as session:
        for tenant in await list_tenants(session):
            enqueue(session, DISPATCH_DUE, tenant_id=tenant.id)
            enqueue(session, CONSUME_CASE_CHANGES, tenant_id=tenant.id)


every(timedelta(minutes=1), SWEEP)
