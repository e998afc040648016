"""Tenant-scoped reads and writes of campaigns, enrollments and due steps."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.campaigns.models import (
    Campaign,
    CampaignEnrollment,
    CampaignStatus,
    CampaignStepDue,
    StepStatus,
)
from churnsaver.backend.core.bulk import is_one_of
from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_page
from churnsaver.backend.core.repository import TenantRepository

OLDEST_FIRST = KeysetOrder(time_column="created_at")


class CampaignRepository(TenantRepository[Campaign]):
    model = Campaign

    async def active_for_kind(self, kind: str) -> list[Campaign]:
        statement = self.select_readable().where(Campaign.status == CampaignStatus.active.value)
        campaigns = (await self.session.execute(statement.order_by(Campaign.created_at, Campaign.id))).scalars()
        return [campaign for campaign in campaigns if kind in campaign.case_kinds]

    async def playbook_keys(self) -> set[str]:
        statement = self.select_readable(Campaign.playbook).where(Campaign.playbook.is_not(None))
        return set((await self.session.execute(statement)).scalars())

    async def page(
        self, *, statuses: list[str] | None, first: int | None, after: str | None, with_total: bool
    ) -> Page[Campaign]:
        statement = self.select_readable()
        if statuses is not None:
            statement = statement.where(Campaign.status.in_(statuses))
        return await keyset_page(
            self.session, statement, Campaign, first=first, after=after, with_total=with_total, order=OLDEST_FIRST
        )

    async def of_ids(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Campaign]:
        statement = self.select_readable().where(is_one_of(self.session, Campaign.id, list(ids)))
        return {campaign.id: campaign for campaign in (await self.session.execute(statement)).scalars()}


class EnrollmentRepository(TenantRepository[CampaignEnrollment]):
    model = CampaignEnrollment

    async def of_case(self, case_id: uuid.UUID) -> list[CampaignEnrollment]:
        statement = self.select_readable().where(CampaignEnrollment.case_id == case_id)
        return list((await self.session.execute(statement.order_by(CampaignEnrollment.enrolled_at))).scalars())


class StepRepository(TenantRepository[CampaignStepDue]):
    model = CampaignStepDue

    def select_due(self, now: datetime, limit: int) -> Select[CampaignStepDue]:
        """Pending steps due by `now`, oldest first; locked, skipping rows another dispatcher holds
        (PostgreSQL; SQLite has one writer at a time and compiles the lock to nothing)."""
        statement = self.select_readable().where(
            CampaignStepDue.status == StepStatus.pending.value, CampaignStepDue.due_at <= now
        )
        return (
            statement.order_by(CampaignStepDue.due_at, CampaignStepDue.step_index, CampaignStepDue.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def any_due(self, now: datetime) -> bool:
        statement = self.select_readable(CampaignStepDue.id).where(
            CampaignStepDue.status == StepStatus.pending.value, CampaignStepDue.due_at <= now
        )
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def of_case(self, case_id: uuid.UUID) -> list[CampaignStepDue]:
        statement = self.select_readable().where(CampaignStepDue.case_id == case_id)
        statement = statement.order_by(CampaignStepDue.due_at, CampaignStepDue.step_index)
        return list((await self.session.execute(statement)).scalars())

    async def sent_since(self, customer_ids: Collection[uuid.UUID], since: datetime) -> list[CampaignStepDue]:
        """The customers' steps sent since `since`, across the tenant's campaigns: what caps count."""
        statement = self.select_readable().where(
            is_one_of(self.session, CampaignStepDue.customer_id, list(customer_ids)),
            CampaignStepDue.status == StepStatus.sent.value,
            CampaignStepDue.sent_at >= since,
        )
        return list((await self.session.execute(statement)).scalars())


@dataclass(frozen=True, slots=True)
class CampaignStats:
    enrolled: int  # cases given a variant
    held_out: int
    steps_by_status: dict[str, int]


async def campaign_stats(
    session: AsyncSession, tenant_id: uuid.UUID, campaign_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CampaignStats]:
    """Per campaign, its enrollments and its steps by status: two grouped statements for any number."""
    enrolled: dict[uuid.UUID, dict[bool, int]] = {campaign_id: {} for campaign_id in campaign_ids}
    counting = (
        EnrollmentRepository(session, tenant_id)
        .select_readable(CampaignEnrollment.campaign_id, CampaignEnrollment.holdout, func.count())
        .where(is_one_of(session, CampaignEnrollment.campaign_id, campaign_ids))
        .group_by(CampaignEnrollment.campaign_id, CampaignEnrollment.holdout)
    )
    for campaign_id, holdout, count in await session.execute(counting):
        enrolled[campaign_id][bool(holdout)] = count
    steps: dict[uuid.UUID, dict[str, int]] = {campaign_id: {} for campaign_id in campaign_ids}
    step_counts = (
        StepRepository(session, tenant_id)
        .select_readable(CampaignStepDue.campaign_id, CampaignStepDue.status, func.count())
        .where(is_one_of(session, CampaignStepDue.campaign_id, campaign_ids))
        .group_by(CampaignStepDue.campaign_id, CampaignStepDue.status)
    )
    for campaign_id, status, count in await session.execute(step_counts):
        steps[campaign_id][status] = count
    return {
        campaign_id: CampaignStats(
            enrolled=enrolled[campaign_id].get(False, 0),
            held_out=enrolled[campaign_id].get(True, 0),
            steps_by_status=steps[campaign_id],
        )
        for campaign_id in campaign_ids
    }
