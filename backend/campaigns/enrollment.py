"""Cases entering campaigns: every active campaign whose case kinds and audience match a newly
opened case enrolls it once (unique case + campaign), with a variant or the holdout assigned from a
hash of campaign and customer. A held-out case is recorded and gets nothing; the others get one
`campaign_steps_due` row per step, with its due time, and a dispatch job queued for that time.

Enrolling is idempotent: a second run over the same case inserts nothing (the unique key), so the
consumer may hand over the same `case.changed` event more than once.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.campaigns.models import Campaign, CampaignEnrollment, CampaignStepDue, StepStatus
from churnsaver.backend.campaigns.playbooks import DEFAULT_PLAYBOOKS, StepCondition, Variant, variants_from
from churnsaver.backend.campaigns.repository import CampaignRepository
from churnsaver.backend.campaigns.timing import AudienceFacts, assign, in_audience, step_due
from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.core.bulk import is_one_of
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.customers.repository import CustomerRepository, SubscriptionRepository
from churnsaver.backend.offers import service as offers
from churnsaver.backend.risk.models import RiskScore
from churnsaver.backend.risk.repository import RiskScoreRepository
from churnsaver.jobs.outbox import enqueue

DISPATCH_DUE = "campaigns.dispatch_due"
NO_ACCESS_END = "no known end of access to send it before"


@dataclass(slots=True)
class EnrollReport:
    enrolled: int = 0
    held_out: int = 0
    steps: int = 0


async def ensure_default_playbooks(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Create the default playbooks the tenant does not have yet (each once: unique per tenant);
    their steps name the tenant's default offers, created first if need be."""
    present = await CampaignRepository(session, tenant_id).playbook_keys()
    missing = [playbook for playbook in DEFAULT_PLAYBOOKS if playbook.key not in present]
    if not missing:
        return
    keys = {step.offer_key for p in missing for v in p.variants for step in v.steps if step.offer_key}
    offer_ids = {key: await offers.default_offer_id(session, tenant_id, key) for key in sorted(keys)}
    now = utcnow()
    rows = [
        {
            "id": ordered_uuid(),
            "tenant_id": tenant_id,
            "name": playbook.name,
            "playbook": playbook.key,
            "case_kinds": playbook.case_kinds,
            "audience": playbook.audience,
            "status": "active",
            "holdout_share": 0.10,
            "variants": [_with_offers(variant, offer_ids) for variant in playbook.variants],
            "created_at": now,
            "updated_at": now,
        }
        for playbook in missing
    ]
    await session.execute(insert_for(session)(Campaign).values(rows).on_conflict_do_nothing())


def _with_offers(variant: Variant, offer_ids: dict[str, uuid.UUID | None]) -> dict[str, Any]:
    """A default variant as stored for one tenant: each step's default offer by its id there."""
    steps = [
        replace(step, offer_id=offer_ids.get(step.offer_key)) if step.offer_key else step for step in variant.steps
    ]
    return replace(variant, steps=steps).stored()


async def enroll_cases(
    session: AsyncSession, tenant_id: uuid.UUID, case_ids: list[uuid.UUID], now: datetime | None = None
) -> EnrollReport:
    """Enroll the open cases among `case_ids` in every matching active campaign, in the caller's
    transaction."""
    now = now or utcnow()
    report = EnrollReport()
    await ensure_default_playbooks(session, tenant_id)
    cases = CaseRepository(session, tenant_id)
    statement = cases.select_readable().where(
        is_one_of(session, RecoveryCase.id, case_ids), RecoveryCase.status == CaseStatus.open.value
    )
    open_cases = list((await session.execute(statement)).scalars())
    if not open_cases:
        return report
    facts = await _audience_facts(session, tenant_id, open_cases)
    campaigns = CampaignRepository(session, tenant_id)
    by_kind: dict[str, list[Campaign]] = {}
    enrollments: list[dict[str, Any]] = []
    plans: dict[uuid.UUID, tuple[RecoveryCase, Campaign, str | None]] = {}
    for case in open_cases:
        if case.kind not in by_kind:
            by_kind[case.kind] = await campaigns.active_for_kind(case.kind)
        for campaign in by_kind[case.kind]:
            if not in_audience(campaign.audience, facts[case.id]):
                continue
            assignment = assign(campaign.id, case.customer_id, campaign.holdout_share, variants_from(campaign.variants))
            row_id = ordered_uuid()
            enrollments.append(
                {
                    "id": row_id,
                    "tenant_id": tenant_id,
                    "campaign_id": campaign.id,
                    "case_id": case.id,
                    "customer_id": case.customer_id,
                    "variant": assignment.variant,
                    "holdout": assignment.holdout,
                    "enrolled_at": now,
                }
            )
            plans[row_id] = (case, campaign, assignment.variant)
    if not enrollments:
        return report
    table = CampaignEnrollment.__table__
    statement = insert_for(session)(table).on_conflict_do_nothing().returning(table.c.id)
    inserted = {row_id for (row_id,) in await (await session.connection()).execute(statement, enrollments)}
    steps: list[dict[str, Any]] = []
    for row_id in inserted:
        case, campaign, variant_name = plans[row_id]
        if variant_name is None:
            report.held_out += 1
            continue
        report.enrolled += 1
        steps += _step_rows(tenant_id, row_id, case, campaign, variant_name, now)
    if steps:
        await (await session.connection()).execute(insert(CampaignStepDue.__table__), steps)
        report.steps = len(steps)
        pending = {row["due_at"] for row in steps if row["status"] == StepStatus.pending.value}
        for due_at in sorted(pending):
            enqueue(session, DISPATCH_DUE, tenant_id=tenant_id, not_before=max(due_at, now))
    return report


def _step_rows(
    tenant_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    case: RecoveryCase,
    campaign: Campaign,
    variant_name: str,
    now: datetime,
) -> list[dict[str, Any]]:
    variant = next(variant for variant in variants_from(campaign.variants) if variant.name == variant_name)
    rows = []
    for index, step in enumerate(variant.steps):
        # The attribution window's end stands in for the end of access when the trigger did not say.
        due = step_due(step, case.opened_at, case.details, case.window_ends_at)
        skipped = due is None and step.condition == StepCondition.before_access_ends.value
        rows.append(
            {
                "id": ordered_uuid(),
                "tenant_id": tenant_id,
                "enrollment_id": enrollment_id,
                "campaign_id": campaign.id,
                "case_id": case.id,
                "customer_id": case.customer_id,
                "step_index": index,
                "channel": step.channel,
                "template": step.template,
                "offer_id": step.offer_id,
                "condition": step.condition,
                "due_at": due or now,
                "status": StepStatus.skipped.value if skipped else StepStatus.pending.value,
                "reason": NO_ACCESS_END if skipped else None,
                "message_id": None,
                "sent_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


async def _audience_facts(
    session: AsyncSession, tenant_id: uuid.UUID, cases: list[RecoveryCase]
) -> dict[uuid.UUID, AudienceFacts]:
    """Per case, what an audience filter looks at: the customer's tier, plans, MRR (of running
    subscriptions, or the case's revenue at risk), the decline class and the country trait."""
    customer_ids = sorted({case.customer_id for case in cases}, key=str)
    tiers = dict(
        (
            await session.execute(
                RiskScoreRepository(session, tenant_id)
                .select_readable(RiskScore.customer_id, RiskScore.tier)
                .where(is_one_of(session, RiskScore.customer_id, customer_ids))
            )
        ).all()
    )
    countries = {
        customer_id: traits.get("country")
        for customer_id, traits in await session.execute(
            CustomerRepository(session, tenant_id)
            .select_readable(Customer.id, Customer.traits)
            .where(is_one_of(session, Customer.id, customer_ids))
        )
    }
    plans: dict[uuid.UUID, set[str]] = defaultdict(set)
    mrr: dict[uuid.UUID, int] = defaultdict(int)
    subscriptions = (
        SubscriptionRepository(session, tenant_id)
        .select_readable(Subscription.customer_id, Subscription.plan, Subscription.mrr)
        .where(is_one_of(session, Subscription.customer_id, customer_ids), Subscription.ended_at.is_(None))
    )
    for customer_id, plan, amount in await session.execute(subscriptions):
        if plan:
            plans[customer_id].add(plan)
        mrr[customer_id] += amount or 0
    return {
        case.id: AudienceFacts(
            tier=tiers.get(case.customer_id),
            plans=frozenset(plans[case.customer_id]),
            mrr=mrr.get(case.customer_id) or case.revenue_at_risk or None,
            decline_class=case.details.get("decline_class"),
            country=countries.get(case.customer_id) if isinstance(countries.get(case.customer_id), str) else None,
        )
        for case in cases
    }
