"""Sending due steps: claim them, check the stop conditions, move them out of quiet hours and
under the frequency caps, and hand each to channels with an idempotency key of its own.

A batch of due steps is claimed with FOR UPDATE SKIP LOCKED on PostgreSQL (two dispatchers take
different rows); on SQLite the transaction takes the write lock first, so dispatchers take turns.
A step is marked sent in the same transaction that stores its message through
`channels.schedule_message(idempotency_key="campaign-step:<step id>")`: a duplicate job, a retry,
a killed worker or a second dispatcher finds the step sent, or the key taken, and never sends twice;
a step not yet sent stays pending in the database and a later job or the sweep sends it.

Stop conditions (checked when due): the case is no longer open, the campaign is paused or
archived, the customer opted out of the step's channel. Quiet hours (the channel settings,
default 21:00-08:00, in the customer's zone) move the step to the next allowed minute. Caps
(default 3 per customer in 7 days, 1 per channel in 24 hours, across campaigns) defer a step to
when the cap allows it, never skip it: the case's window closing stops it if that comes first.
In-app messages are neither capped nor counted: they wait in the app to be seen, they interrupt
nobody.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE
from churnsaver.backend.campaigns.models import CampaignStatus, CampaignStepDue, StepStatus
from churnsaver.backend.campaigns.repository import CampaignRepository, StepRepository
from churnsaver.backend.campaigns.timing import CAP_RECHECK, Caps, after_quiet_hours, cap_allows, customer_zone
from churnsaver.backend.cases import service as cases
from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.channels import service as channels
from churnsaver.backend.core.bulk import is_one_of, start_bulk_transaction
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.jobs.outbox import enqueue

BATCH_STEPS = 500
UNCAPPED_CHANNELS = frozenset({"in_app"})
WEEK = timedelta(days=7)
DAY = timedelta(days=1)


@dataclass(slots=True)
class DispatchReport:
    sent: int = 0
    skipped: int = 0
    stopped: int = 0
    deferred: int = 0

    def add(self, other: "DispatchReport") -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.stopped += other.stopped
        self.deferred += other.deferred


async def dispatch_due(
    db: Database, tenant_id: uuid.UUID, now: datetime | None = None, *, limit: int = BATCH_STEPS
) -> DispatchReport:
    """Dispatch the tenant's steps due by `now`, a batch per transaction, until none is left."""
    report = DispatchReport()
    while True:
        moment = now or utcnow()
        # Read first, outside a write transaction: a copy with nothing due never takes SQLite's write lock.
        async with db.tenant_session(tenant_id) as session:
            if not await StepRepository(session, tenant_id).any_due(moment):
                return report
        async with db.tenant_unit_of_work(tenant_id) as session:
            await session.run_sync(start_bulk_transaction, CampaignStepDue.__table__)
            due = StepRepository(session, tenant_id).select_due(moment, limit)
            steps = list((await session.execute(due)).scalars())
            if steps:
                report.add(await dispatch_steps(session, tenant_id, steps, moment))
        if len(steps) < limit:
            return report


async def dispatch_steps(
    session: AsyncSession, tenant_id: uuid.UUID, steps: Sequence[CampaignStepDue], now: datetime
) -> DispatchReport:
    """Send, stop or defer each of `steps` (claimed, pending, due), in the caller's transaction."""
    report = DispatchReport()
    case_rows = (
        CaseRepository(session, tenant_id)
        .select_readable()
        .where(is_one_of(session, RecoveryCase.id, sorted({step.case_id for step in steps}, key=str)))
    )
    case_status = {case.id: case.status for case in (await session.execute(case_rows)).scalars()}
    campaigns = await CampaignRepository(session, tenant_id).of_ids({step.campaign_id for step in steps})
    customer_ids = sorted({step.customer_id for step in steps}, key=str)
    customers = CustomerRepository(session, tenant_id).select_readable(Customer.id, Customer.traits)
    traits = dict((await session.execute(customers.where(is_one_of(session, Customer.id, customer_ids)))).all())
    settings = await channels.settings_for(session, tenant_id)
    caps = Caps(settings.cap_per_customer_per_week, settings.cap_per_channel_per_day)
    own_sent: dict[uuid.UUID, list[tuple[str, datetime]]] = {customer_id: [] for customer_id in customer_ids}
    for sent in await StepRepository(session, tenant_id).sent_since(customer_ids, now - WEEK):
        if sent.sent_at is not None:
            own_sent[sent.customer_id].append((sent.channel, sent.sent_at))
    wake_at: set[datetime] = set()
    for step in steps:
        campaign = campaigns.get(step.campaign_id)
        status = case_status.get(step.case_id)
        if status != CaseStatus.open.value:
            _stop(step, f"the case is {status or 'gone'}", now)
        elif campaign is None or campaign.status != CampaignStatus.active.value:
            _stop(step, f"the campaign is {campaign.status if campaign else 'gone'}", now)
        elif await channels.opted_out(session, tenant_id, step.customer_id, step.channel):
            _stop(step, f"the customer opted out of {step.channel}", now)
        else:
            zone = customer_zone(traits.get(step.customer_id) or {}, settings.zone)
            allowed = after_quiet_hours(now, zone, settings.quiet_start, settings.quiet_end)
            if allowed <= now and step.channel not in UNCAPPED_CHANNELS:
                allowed = await _cap_allows_at(session, tenant_id, step, caps, own_sent[step.customer_id], now)
            if allowed > now:
                step.due_at, step.updated_at = allowed, now
                wake_at.add(allowed)
                report.deferred += 1
                continue
            await _send(session, tenant_id, step, now)
            own_sent[step.customer_id].append((step.channel, now))
            if step.status == StepStatus.sent.value:
                report.sent += 1
            else:
                report.skipped += 1
            continue
        report.stopped += 1
    await session.flush()
    for moment in sorted(wake_at):
        enqueue(session, DISPATCH_DUE, tenant_id=tenant_id, not_before=moment)
    return report


def _stop(step: CampaignStepDue, reason: str, now: datetime) -> None:
    step.status, step.reason, step.updated_at = StepStatus.stopped.value, reason, now


async def _cap_allows_at(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    step: CampaignStepDue,
    caps: Caps,
    own_sent: list[tuple[str, datetime]],
    now: datetime,
) -> datetime:
    """`now` if the caps let the step go now, else when they will: when the oldest message that
    fills a cap leaves its window (from the campaigns' own sends), or a day later when messages
    from elsewhere fill it."""
    week = await channels.sent_counts(session, tenant_id, step.customer_id, since=now - WEEK)
    day = await channels.sent_counts(session, tenant_id, step.customer_id, since=now - DAY)
    week = {channel: count for channel, count in week.items() if channel not in UNCAPPED_CHANNELS}
    if cap_allows(caps, step.channel, week, day):
        return now
    frees: list[datetime] = []
    if sum(week.values()) >= caps.per_customer_per_week:
        counted = sorted(at for channel, at in own_sent if channel not in UNCAPPED_CHANNELS)
        excess = sum(week.values()) - caps.per_customer_per_week
        frees.append(counted[excess] + WEEK if excess < len(counted) else now + CAP_RECHECK)
    if day.get(step.channel, 0) >= caps.per_channel_per_day:
        counted = sorted(at for channel, at in own_sent if channel == step.channel and at >= now - DAY)
        excess = day[step.channel] - caps.per_channel_per_day
        frees.append(counted[excess] + DAY if excess < len(counted) else now + CAP_RECHECK)
    return max(max(frees), now + timedelta(minutes=1))


async def _send(session: AsyncSession, tenant_id: uuid.UUID, step: CampaignStepDue, now: datetime) -> None:
    """Hand the step to channels under its own idempotency key and mark it sent (or skipped with
    channels' reason, when the message is suppressed); a message that goes out touches the case."""
    outcome = await channels.schedule_message(
        session,
        tenant_id,
        customer_id=step.customer_id,
        case_id=step.case_id,
        channel=step.channel,
        template=step.template,
        idempotency_key=f"campaign-step:{step.id}",
        campaign_id=step.campaign_id,
        variables={"offer_id": str(step.offer_id)} if step.offer_id else None,
    )
    step.message_id, step.sent_at, step.updated_at = outcome.message_id, now, now
    if outcome.status == "suppressed":
        step.status, step.reason = StepStatus.skipped.value, outcome.reason
        return
    step.status = StepStatus.sent.value
    await cases.touch(session, tenant_id, step.case_id, now, actor=f"campaign:{step.campaign_id}")
