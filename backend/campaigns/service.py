"""Campaigns for the API and the CLI: list, read, create, edit, pause, resume and archive, and
what a case's enrollments and steps are.

Every function takes the auth subject and checks its scope here: reads need `read`, changes need
`write`. Nothing commits: the caller's unit of work does. Default playbooks are created on first
use, so a tenant's first list already shows them. A step's template must be one channels knows
for the step's channel (a built-in default or the tenant's own), and its offer one of the tenant's
active offers; anything else is InvalidInput.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.campaigns.enrollment import ensure_default_playbooks
from churnsaver.backend.campaigns.models import Campaign, CampaignEnrollment, CampaignStatus
from churnsaver.backend.campaigns.playbooks import (
    MAX_NAME,
    Variant,
    audience_from,
    case_kinds_from,
    holdout_share_from,
    variants_from,
)
from churnsaver.backend.campaigns.repository import (
    CampaignRepository,
    CampaignStats,
    EnrollmentRepository,
    campaign_stats,
)
from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.channels.default_templates import DEFAULTS
from churnsaver.backend.channels.repository import TemplateRepository
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import Conflict, InvalidInput, NotFound, checked_name
from churnsaver.backend.core.pagination import Page
from churnsaver.backend.offers import service as offers
from churnsaver.tenants.auth import AuthSubject

# Which status each action may start from, and where it leads.
TRANSITIONS = {
    "pause": ({CampaignStatus.active.value}, CampaignStatus.paused.value),
    "resume": ({CampaignStatus.paused.value}, CampaignStatus.active.value),
    "archive": ({CampaignStatus.active.value, CampaignStatus.paused.value}, CampaignStatus.archived.value),
}


async def list_campaigns(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    statuses: list[str] | None = None,
    first: int | None = None,
    after: str | None = None,
    with_total: bool = False,
) -> Page[Campaign]:
    subject.require_read()
    await ensure_default_playbooks(session, subject.tenant_id)
    return await CampaignRepository(session, subject.tenant_id).page(
        statuses=statuses, first=first, after=after, with_total=with_total
    )


async def get_campaign(session: AsyncSession, subject: AuthSubject, campaign_id: uuid.UUID) -> Campaign:
    subject.require_read()
    await ensure_default_playbooks(session, subject.tenant_id)
    return await _campaign(session, subject, campaign_id)


async def create_campaign(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    name: str,
    case_kinds: list[str],
    variants: list[dict[str, Any]],
    audience: dict[str, Any] | None = None,
    holdout_share: float = 0.10,
) -> Campaign:
    """A new active campaign; InvalidInput says what is wrong with its definition."""
    subject.require_write()
    checked = variants_from(variants)
    await _check_templates(session, subject.tenant_id, checked)
    await _check_offers(session, subject.tenant_id, checked)
    campaign = Campaign(
        tenant_id=subject.tenant_id,
        name=checked_name(name, what="a campaign name", maximum=MAX_NAME),
        case_kinds=case_kinds_from(case_kinds),
        audience=audience_from(audience),
        status=CampaignStatus.active.value,
        holdout_share=holdout_share_from(holdout_share),
        variants=[variant.stored() for variant in checked],
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def update_campaign(
    session: AsyncSession,
    subject: AuthSubject,
    campaign_id: uuid.UUID,
    *,
    name: str | None = None,
    case_kinds: list[str] | None = None,
    variants: list[dict[str, Any]] | None = None,
    audience: dict[str, Any] | None = None,
    holdout_share: float | None = None,
) -> Campaign:
    """Change what is given (None: unchanged). Cases already enrolled keep their variant and the
    steps they were given; cases enrolled from now on follow the new definition. Variant names
    already assigned must stay, so that an assignment never points at nothing."""
    subject.require_write()
    campaign = await _campaign(session, subject, campaign_id)
    if campaign.status == CampaignStatus.archived.value:
        raise Conflict("an archived campaign cannot be changed")
    if name is not None:
        campaign.name = checked_name(name, what="a campaign name", maximum=MAX_NAME)
    if case_kinds is not None:
        campaign.case_kinds = case_kinds_from(case_kinds)
    if audience is not None:
        campaign.audience = audience_from(audience)
    if holdout_share is not None:
        campaign.holdout_share = holdout_share_from(holdout_share)
    if variants is not None:
        checked = variants_from(variants)
        await _check_templates(session, subject.tenant_id, checked)
        await _check_offers(session, subject.tenant_id, checked)
        kept = {variant.name for variant in checked}
        removed = {variant["name"] for variant in campaign.variants} - kept
        if removed and await _assigned(session, subject.tenant_id, campaign.id, removed):
            raise Conflict(f"variant {sorted(removed)[0]!r} has cases assigned to it and must stay")
        campaign.variants = [variant.stored() for variant in checked]
    campaign.updated_at = utcnow()
    await session.flush()
    return campaign


async def change_status(session: AsyncSession, subject: AuthSubject, campaign_id: uuid.UUID, action: str) -> Campaign:
    """Pause, resume or archive: paused and archived campaigns enroll no case, and their due steps
    stop when they fall due (a stop condition); Conflict if the campaign's status does not allow it."""
    subject.require_write()
    sources, target = TRANSITIONS[action]
    campaign = await _campaign(session, subject, campaign_id)
    if campaign.status not in sources:
        raise Conflict(f"a campaign that is {campaign.status} cannot be {target}")
    campaign.status, campaign.updated_at = target, utcnow()
    await session.flush()
    return campaign


async def stats(
    session: AsyncSession, subject: AuthSubject, campaign_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CampaignStats]:
    """Per campaign: cases enrolled (given a variant), held out, and its steps by status."""
    subject.require_read()
    return await campaign_stats(session, subject.tenant_id, campaign_ids)


async def _campaign(session: AsyncSession, subject: AuthSubject, campaign_id: uuid.UUID) -> Campaign:
    campaign = await CampaignRepository(session, subject.tenant_id).get(campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    return campaign


async def _check_templates(session: AsyncSession, tenant_id: uuid.UUID, variants: list[Variant]) -> None:
    """InvalidInput unless every step's template is a built-in one or the tenant's own, for its channel."""
    own = {(template.key, template.channel) for template in await TemplateRepository(session, tenant_id).all()}
    built_in = {(key, channel) for key, channel, _locale in DEFAULTS}
    for variant in variants:
        for number, step in enumerate(variant.steps, start=1):
            if (step.template, step.channel) not in built_in | own:
                raise InvalidInput(
                    f"variant {variant.name!r} step {number}: no {step.channel} template {step.template!r}"
                )


async def _check_offers(session: AsyncSession, tenant_id: uuid.UUID, variants: list[Variant]) -> None:
    """InvalidInput unless every step's offer is one of the tenant's active offers."""
    wanted = {step.offer_id for variant in variants for step in variant.steps if step.offer_id is not None}
    if not wanted:
        return
    found = await offers.active_offer_ids(session, tenant_id, sorted(wanted, key=str))
    for variant in variants:
        for number, step in enumerate(variant.steps, start=1):
            if step.offer_id is not None and step.offer_id not in found:
                raise InvalidInput(f"variant {variant.name!r} step {number}: no active offer {step.offer_id}")


async def _assigned(session: AsyncSession, tenant_id: uuid.UUID, campaign_id: uuid.UUID, names: set[str]) -> bool:
    statement = (
        EnrollmentRepository(session, tenant_id)
        .select_readable(CampaignEnrollment.id)
        .where(CampaignEnrollment.campaign_id == campaign_id, CampaignEnrollment.variant.in_(sorted(names)))
    )
    return (await session.execute(statement.limit(1))).first() is not None


async def in_holdout(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
    """Whether one of the customer's open cases is held out of its campaign: such a customer is
    offered nothing anywhere (the widget asks this; campaigns never dispatch to a holdout)."""
    enrollments = EnrollmentRepository(session, tenant_id)
    statement = (
        enrollments.select_readable(CampaignEnrollment.id)
        .join(RecoveryCase, RecoveryCase.id == CampaignEnrollment.case_id)
        .where(
            enrollments.owned(RecoveryCase),
            CampaignEnrollment.customer_id == customer_id,
            CampaignEnrollment.holdout.is_(True),
            RecoveryCase.status == CaseStatus.open.value,
        )
    )
    return (await session.execute(statement.limit(1))).first() is not None
