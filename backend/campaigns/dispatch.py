"""Sending due steps: claim them, check the stop conditions, move them out of quiet hours and
under the frequency caps, and hand each to channels with an idempotency key of its own.

A batch of due steps is claimed with FOR UPDATE SKIP LOCKED on PostgreSQL (two dispatchers take
different rows); on SQLite the transaction takes the write lock first, so dispatchers take turns.
A step is marked sent in the same transaction that stores its message through
`channels.schedule_messages` (the batch's messages together), its idempotency key
"campaign-step:<step id>": a duplicate job, a retry,
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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE
from churnsaver.backend.campaigns.models import CampaignStatus, CampaignStepDue, StepStatus
from churnsaver.backend.campaigns.playbooks import CHANNELS
from churnsaver.backend.campaigns.repository import CampaignRepository, StepRepository
from churnsaver.backend.campaigns.timing import Caps, after_quiet_hours, cap_allows_at, customer_zone
from churnsaver.backend.cases import service as cases
from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.channels import service as channels
from churnsaver.backend.channels.delivery import public_url
from churnsaver.backend.channels.models import REACHING, ChannelOptOut, Message
from churnsaver.backend.channels.repository import ConsentRepository, MessageRepository
from churnsaver.backend.core.bulk import is_one_of, start_bulk_transaction
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.offers import service as offers
from churnsaver.backend.offers.links import OFFER_LINK_LIFETIME, offer_token, offer_url
from churnsaver.jobs.outbox import enqueue

BATCH_STEPS = 500
# SQLite has one writer: a smaller batch holds the write lock a fraction of a second, so the send
# jobs and the relay waiting behind it never reach the busy timeout.
SQLITE_BATCH_STEPS = 50
UNCAPPED_CHANNELS = frozenset({"in_app"})
WEEK = timedelta(days=7)


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
    db: Database, tenant_id: uuid.UUID, now: datetime | None = None, *, limit: int | None = None
) -> DispatchReport:
    """Dispatch the tenant's steps due by `now`, a batch per transaction, until none is left."""
    limit = limit or (BATCH_STEPS if db.concurrent_writers > 1 else SQLITE_BATCH_STEPS)
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
                report.add(await dispatch_steps(session, tenant_id, steps, moment, db.settings))
        if len(steps) < limit:
            return report


async def dispatch_steps(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    steps: Sequence[CampaignStepDue],
    now: datetime,
    app_settings: Settings,
) -> DispatchReport:
    """Send, stop or defer each of `steps` (claimed, pending, due), in the caller's transaction.
    What the decisions read (cases, campaigns, customers, opt-outs, recent messages) is read once
    per batch, not per step; a step with an offer also asks offers which one the customer may
    have now (a few statements for that step)."""
    report = DispatchReport()
    case_rows = (
        CaseRepository(session, tenant_id)
        .select_readable()
        .where(is_one_of(session, RecoveryCase.id, sorted({step.case_id for step in steps}, key=str)))
    )
    cases_by_id = {case.id: case for case in (await session.execute(case_rows)).scalars()}
    campaigns = await CampaignRepository(session, tenant_id).of_ids({step.campaign_id for step in steps})
    customer_ids = sorted({step.customer_id for step in steps}, key=str)
    customers = CustomerRepository(session, tenant_id).select_readable(Customer.id, Customer.traits)
    traits = dict((await session.execute(customers.where(is_one_of(session, Customer.id, customer_ids)))).all())
    opted_out = await _opted_out(session, tenant_id, customer_ids, traits)
    recent = await _recent_messages(session, tenant_id, customer_ids, now - WEEK)
    settings = await channels.settings_for(session, tenant_id)
    caps = Caps(settings.cap_per_customer_per_week, settings.cap_per_channel_per_day)
    wake_at: set[datetime] = set()
    touches: dict[uuid.UUID, datetime] = {}
    sending: list[CampaignStepDue] = []
    for step in steps:
        campaign = campaigns.get(step.campaign_id)
        case = cases_by_id.get(step.case_id)
        if case is None or case.status != CaseStatus.open.value:
            _stop(step, f"the case is {case.status if case else 'gone'}", now)
        elif campaign is None or campaign.status != CampaignStatus.active.value:
            _stop(step, f"the campaign is {campaign.status if campaign else 'gone'}", now)
        elif (step.customer_id, step.channel) in opted_out:
            _stop(step, f"the customer opted out of {step.channel}", now)
        else:
            zone = customer_zone(traits.get(step.customer_id) or {}, settings.zone)
            allowed = after_quiet_hours(now, zone, settings.quiet_start, settings.quiet_end)
            if allowed <= now and step.channel not in UNCAPPED_CHANNELS:
                allowed = cap_allows_at(caps, step.channel, recent[step.customer_id], now)
            if allowed > now:
                step.due_at, step.updated_at = allowed, now
                wake_at.add(allowed)
                report.deferred += 1
                continue
            # Counted toward the caps of the batch's later steps now; scheduled below, together.
            recent[step.customer_id].append((step.channel, now))
            sending.append(step)
            continue
        report.stopped += 1
    await _send(
        session, tenant_id, sending, now, await _offer_variables(session, tenant_id, sending, traits, app_settings)
    )
    for step in sending:
        if step.status == StepStatus.sent.value:
            touches.setdefault(step.case_id, now)
            report.sent += 1
        else:
            report.skipped += 1
    await cases.touch_first(session, tenant_id, touches, actor="job:campaigns.dispatch_due")
    await session.flush()
    for moment in sorted(wake_at):
        enqueue(session, DISPATCH_DUE, tenant_id=tenant_id, not_before=moment)
    return report


def _stop(step: CampaignStepDue, reason: str, now: datetime) -> None:
    step.status, step.reason, step.updated_at = StepStatus.stopped.value, reason, now


async def _opted_out(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], traits: dict[uuid.UUID, Any]
) -> set[tuple[uuid.UUID, str]]:
    """(customer, channel) pairs the customers opted out of: what `channels.opted_out` answers for
    one pair (a recorded opt-out, or a `consent_<channel>` trait set to false), for a whole batch."""
    consent = ConsentRepository(session, tenant_id)
    statement = consent.select_readable(ChannelOptOut.customer_id, ChannelOptOut.channel).where(
        is_one_of(session, ChannelOptOut.customer_id, customer_ids)
    )
    pairs = {(customer_id, channel) for customer_id, channel in await session.execute(statement)}
    for customer_id, values in traits.items():
        for channel in CHANNELS:
            if (values or {}).get(f"consent_{channel}") is False:
                pairs.add((customer_id, channel))
    return pairs


async def _recent_messages(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID], since: datetime
) -> dict[uuid.UUID, list[tuple[str, datetime]]]:
    """Per customer, the (channel, time) of each message since `since` that counts toward caps: what
    `channels.sent_counts` counts (on its way or sent, no tests), with times, for a whole batch."""
    when = func.coalesce(Message.sent_at, Message.scheduled_for, Message.created_at)
    statement = (
        MessageRepository(session, tenant_id)
        .select_readable(Message.customer_id, Message.channel, when)
        .where(
            is_one_of(session, Message.customer_id, customer_ids),
            Message.status.in_([status.value for status in REACHING]),
            Message.test.is_(False),
            when >= since,
        )
    )
    recent: dict[uuid.UUID, list[tuple[str, datetime]]] = defaultdict(list)
    for customer_id, channel, at in await session.execute(statement):
        recent[customer_id].append((channel, at if at.tzinfo else at.replace(tzinfo=UTC)))
    return recent


async def _offer_variables(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    steps: list[CampaignStepDue],
    traits: dict[uuid.UUID, Any],
    settings: Settings,
) -> dict[uuid.UUID, dict[str, str]]:
    """Per step with an offer, the message's offer variables: the offer the customer may have now
    (the step's own, or the best eligible), its description in the customer's locale and its
    one-click link `PUBLIC_URL/o/{token}`. A step whose customer may have none gets no offer."""
    found: dict[uuid.UUID, dict[str, str]] = {}
    for step in steps:
        if step.offer_id is None:
            continue
        locale = (traits.get(step.customer_id) or {}).get("locale")
        choice = await offers.choose_for_message(
            session,
            tenant_id,
            step.customer_id,
            step.case_id,
            step.offer_id,
            locale=locale if isinstance(locale, str) else None,
            surface=step.channel,
        )
        if choice is None:
            continue
        token = offer_token(
            settings,
            tenant_id=tenant_id,
            customer_id=step.customer_id,
            case_id=step.case_id,
            offer_id=choice.offer_id,
            expires_at=utcnow() + OFFER_LINK_LIFETIME,
        )
        found[step.id] = {
            "offer_id": str(choice.offer_id),
            "offer_url": offer_url(public_url(settings), token),
            "offer_description": choice.description,
        }
    return found


async def _send(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    steps: list[CampaignStepDue],
    now: datetime,
    offer_variables: dict[uuid.UUID, dict[str, str]],
) -> None:
    """Hand the steps to channels, each under its own idempotency key, in one call, and mark them
    sent (or skipped with channels' reason, when the message is suppressed)."""
    requests = [
        channels.MessageRequest(
            customer_id=step.customer_id,
            case_id=step.case_id,
            channel=step.channel,
            template=step.template,
            idempotency_key=f"campaign-step:{step.id}",
            campaign_id=step.campaign_id,
            variables=offer_variables.get(step.id),
        )
        for step in steps
    ]
    for step, outcome in zip(steps, await channels.schedule_messages(session, tenant_id, requests), strict=True):
        step.message_id, step.sent_at, step.updated_at = outcome.message_id, now, now
        if outcome.status == "suppressed":
            step.status, step.reason = StepStatus.skipped.value, outcome.reason
        else:
            step.status = StepStatus.sent.value
