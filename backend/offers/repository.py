"""Tenant-scoped reads and writes of offers, offer settings, monthly budgets, redemptions and arms."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.core.bulk import is_one_of
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_page
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.offers.models import (
    FREE_KINDS,
    BudgetMonth,
    Offer,
    OfferArm,
    OfferSettingsRow,
    OfferStatus,
    Redemption,
    RedemptionStatus,
)

OLDEST_FIRST = KeysetOrder(time_column="created_at")
NEWEST_FIRST = KeysetOrder(time_column="created_at", descending=True)
TENANT_SCOPE = "tenant"


class OfferRepository(TenantRepository[Offer]):
    model = Offer

    async def active(self) -> list[Offer]:
        statement = self.select_readable().where(Offer.status == OfferStatus.active.value)
        return list((await self.session.execute(statement.order_by(Offer.created_at, Offer.id))).scalars())

    async def keys(self) -> set[str]:
        statement = self.select_readable(Offer.key).where(Offer.key.is_not(None))
        return set((await self.session.execute(statement)).scalars())

    async def by_key(self, key: str) -> Offer | None:
        return (await self.session.execute(self.select_readable().where(Offer.key == key))).scalar_one_or_none()

    async def page(self, *, statuses: list[str] | None, first: int | None, after: str | None) -> Page[Offer]:
        statement = self.select_readable()
        if statuses is not None:
            statement = statement.where(Offer.status.in_(statuses))
        return await keyset_page(
            self.session, statement, Offer, first=first, after=after, with_total=False, order=OLDEST_FIRST
        )


class OfferSettingsRepository(TenantRepository[OfferSettingsRow]):
    model = OfferSettingsRow

    async def find(self) -> OfferSettingsRow | None:
        return (await self.session.execute(self.select_readable())).scalar_one_or_none()


class BudgetRepository(TenantRepository[BudgetMonth]):
    model = BudgetMonth

    async def ensure(self, scope: str, month: str, limit_amount: int, currency: str) -> None:
        """The month's row for `scope`, with today's limit (a changed limit applies from now on)."""
        values = {
            "tenant_id": self.tenant_id,
            "scope": scope,
            "month": month,
            "limit_amount": limit_amount,
            "currency": currency,
            "reserved": 0,
            "spent": 0,
            "updated_at": utcnow(),
        }
        statement = insert_for(self.session)(BudgetMonth).values(**values)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "scope", "month"],
                set_={"limit_amount": limit_amount, "currency": currency},
            )
        )

    async def reserve(self, scope: str, month: str, amount: int) -> bool:
        """Reserve `amount` if the month's limit covers it: one conditional UPDATE, so two accepts
        at once cannot both take the last of the budget."""
        statement = (
            self.update_owned()
            .where(
                BudgetMonth.scope == scope,
                BudgetMonth.month == month,
                BudgetMonth.reserved + amount <= BudgetMonth.limit_amount,
            )
            .values(reserved=BudgetMonth.reserved + amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def settle(self, scope: str, month: str, reserved: int, spent: int) -> None:
        """Turn a reservation into what billing applied (`spent`, 0 when it refused)."""
        statement = (
            self.update_owned()
            .where(BudgetMonth.scope == scope, BudgetMonth.month == month)
            .values(
                reserved=BudgetMonth.reserved - reserved + spent,
                spent=BudgetMonth.spent + spent,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)

    async def of_month(self, month: str) -> list[BudgetMonth]:
        statement = self.select_readable().where(BudgetMonth.month == month).order_by(BudgetMonth.scope)
        return list((await self.session.execute(statement)).scalars())


@dataclass(frozen=True, slots=True)
class RedemptionFilter:
    status: list[str] | None = None
    offer_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None


class RedemptionRepository(TenantRepository[Redemption]):
    model = Redemption

    async def by_key(self, idempotency_key: str) -> Redemption | None:
        statement = self.select_readable().where(Redemption.idempotency_key == idempotency_key)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def of_customer_since(self, customer_id: uuid.UUID, since: datetime) -> list[Redemption]:
        """The customer's redemptions since `since` that count: pending or applied."""
        statement = self.select_readable().where(
            Redemption.customer_id == customer_id,
            Redemption.status.in_([RedemptionStatus.PENDING.value, RedemptionStatus.APPLIED.value]),
            Redemption.created_at >= since,
        )
        return list((await self.session.execute(statement)).scalars())

    async def incentive_in_flight(self, customer_id: uuid.UUID) -> bool:
        statement = self.select_readable(Redemption.id).where(
            Redemption.customer_id == customer_id,
            Redemption.status == RedemptionStatus.PENDING.value,
            Redemption.kind.not_in([kind.value for kind in FREE_KINDS]),
        )
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def page(self, where: RedemptionFilter, *, first: int | None, after: str | None) -> Page[Redemption]:
        statement = self.select_readable()
        if where.status is not None:
            statement = statement.where(Redemption.status.in_(where.status))
        if where.offer_id is not None:
            statement = statement.where(Redemption.offer_id == where.offer_id)
        if where.customer_id is not None:
            statement = statement.where(Redemption.customer_id == where.customer_id)
        if where.case_id is not None:
            statement = statement.where(Redemption.case_id == where.case_id)
        return await keyset_page(
            self.session, statement, Redemption, first=first, after=after, with_total=False, order=NEWEST_FIRST
        )

    async def verified_rewards(self, segment: str, offer_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, float]:
        """Per offer, its reward in the segment: for each applied redemption whose case was
        recovered and verified (the recovery held), the net recovered revenue as a share of the
        revenue at risk (0 when the offer cost all of it)."""
        statement = (
            self.select_readable(Redemption.offer_id, Redemption.cost, RecoveryCase.revenue_at_risk)
            .join(RecoveryCase, RecoveryCase.id == Redemption.case_id)
            .where(
                self.owned(RecoveryCase),
                Redemption.segment == segment,
                Redemption.status == RedemptionStatus.APPLIED.value,
                is_one_of(self.session, Redemption.offer_id, list(offer_ids)),
                RecoveryCase.status == CaseStatus.recovered.value,
                RecoveryCase.verified_at.is_not(None),
            )
        )
        rewards: dict[uuid.UUID, float] = {}
        for offer_id, cost, at_risk in await self.session.execute(statement):
            share = max(0, at_risk - cost) / at_risk if at_risk else 0.0
            rewards[offer_id] = rewards.get(offer_id, 0.0) + share
        return rewards

    async def of_cases(self, case_ids: Collection[uuid.UUID]) -> list[Redemption]:
        statement = self.select_readable().where(is_one_of(self.session, Redemption.case_id, list(case_ids)))
        return list((await self.session.execute(statement.order_by(Redemption.created_at))).scalars())


class ArmRepository(TenantRepository[OfferArm]):
    model = OfferArm

    async def shown_in(self, segment: str, offer_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
        statement = self.select_readable(OfferArm.offer_id, OfferArm.shown).where(
            OfferArm.segment == segment, is_one_of(self.session, OfferArm.offer_id, list(offer_ids))
        )
        return dict((await self.session.execute(statement)).tuples().all())

    async def count_shown(self, offer_id: uuid.UUID, segment: str) -> None:
        values = {"tenant_id": self.tenant_id, "offer_id": offer_id, "segment": segment, "shown": 1}
        statement = insert_for(self.session)(OfferArm).values(**values, updated_at=utcnow())
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "offer_id", "segment"],
                set_={"shown": OfferArm.shown + 1, "updated_at": utcnow()},
            )
        )
