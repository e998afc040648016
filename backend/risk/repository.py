"""Tenant-scoped reads and writes of risk scores, score history, model versions and settings:
current scores, history pages, tiers, riskiest first, exports.

Tiers, the riskiest-first order and the distribution are about customers who can still churn:
a churned customer (`Customer.status`) is left out of them whatever score it last had, and
exports show it with its status and no score."""

import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, tuple_
from sqlalchemy.orm import defer

from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import KeysetOrder, Page, clamp_page_size
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.customers.models import Customer, CustomerStatus
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.risk.models import TIERS, RiskModel, RiskScore, RiskScoreHistory, RiskSettings

NEWEST_SCORE_FIRST = KeysetOrder(time_column="scored_at", descending=True)
UNSCORED = -1.0  # where a customer without a score sorts: after every score (scores are >= 0)
EXPORT_BATCH = 5000
CAN_CHURN = Customer.status != CustomerStatus.churned.value


@dataclass(frozen=True, slots=True)
class Distribution:
    counts: dict[str, int]  # per tier, every tier present; customers who can still churn
    unscored: int
    churned: int


class RiskScoreRepository(TenantRepository[RiskScore]):
    model = RiskScore

    async def by_customer(self, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, RiskScore]:
        statement = self.select_readable().where(RiskScore.customer_id.in_(customer_ids))
        return {row.customer_id: row for row in (await self.session.execute(statement)).scalars()}

    async def distribution(self) -> Distribution:
        customers = CustomerRepository(self.session, self.tenant_id).select_readable().subquery()
        scores = self.select_readable().subquery()
        can_churn = customers.c.status != CustomerStatus.churned.value
        tier = case((can_churn, scores.c.tier), else_=literal(CustomerStatus.churned.value))
        by_tier = (
            select(tier, func.count())
            .select_from(customers.outerjoin(scores, scores.c.customer_id == customers.c.id))
            .group_by(tier)
        )
        found: dict[str | None, int] = {key: count for key, count in await self.session.execute(by_tier)}
        return Distribution(
            counts={name: found.get(name, 0) for name in TIERS},
            unscored=found.get(None, 0),
            churned=found.get(CustomerStatus.churned.value, 0),
        )

    def in_tier(self, statement: Select[Customer], tier: str) -> Select[Customer]:
        """`statement` (customers) narrowed to those whose current score is in `tier`."""
        # Correlated on the customer only: `riskiest_first` joins risk_scores to the outer statement too.
        scored = (
            select(RiskScore.customer_id)
            .where(self.owned(), RiskScore.customer_id == Customer.id, RiskScore.tier == tier)
            .correlate(Customer)
        )
        return statement.where(CAN_CHURN, scored.exists())

    async def riskiest_first(
        self, statement: Select[Customer], *, first: int | None, after: str | None, with_total: bool = True
    ) -> Page[Customer]:
        """A keyset page of `statement` (customers) who can still churn, highest current score
        first, unscored last.

        Two statements whatever the page size: the page, and the count when asked for.
        """
        statement = statement.where(CAN_CHURN)
        size = clamp_page_size(first)
        key = func.coalesce(RiskScore.score, UNSCORED)
        page = statement.outerjoin(RiskScore, and_(self.owned(), RiskScore.customer_id == Customer.id)).add_columns(key)
        if after is not None:
            page = page.where(tuple_(key, Customer.id) < _decode_risk_cursor(after))
        results = (await self.session.execute(page.order_by(key.desc(), Customer.id.desc()).limit(size + 1))).all()
        total = await CustomerRepository(self.session, self.tenant_id).count(statement) if with_total else None
        shown = results[:size]
        return Page(
            rows=[customer for customer, _ in shown],
            cursors=[_encode_risk_cursor(score, customer.id) for customer, score in shown],
            has_next_page=len(results) > size,
            has_previous_page=after is not None,
            total_count=total,
        )

    async def export_rows(self) -> AsyncIterator[tuple[Any, ...]]:
        """(external id, score, tier, model version, reasons, status, churned at) of every scored
        customer who can still churn, riskiest first, then of every churned customer (no score,
        tier, model or reasons), most recently churned first; streamed in batches so an export of
        any size holds one batch in memory."""
        scores = self.select_readable().subquery()
        customers = CustomerRepository(self.session, self.tenant_id).select_readable().subquery()
        churned = customers.c.status == CustomerStatus.churned.value

        def unless_churned(column: Any) -> Any:
            return case((~churned, column))  # NULL for a churned customer, typed as `column`

        statement = (
            select(
                customers.c.external_id,
                unless_churned(scores.c.score),
                unless_churned(scores.c.tier),
                unless_churned(scores.c.model_version),
                unless_churned(scores.c.reasons),
                customers.c.status,
                customers.c.churned_at,
            )
            .select_from(customers.outerjoin(scores, scores.c.customer_id == customers.c.id))
            .where(churned | scores.c.customer_id.is_not(None))
            .order_by(
                churned,
                unless_churned(scores.c.score).desc(),
                customers.c.churned_at.desc().nulls_last(),
                customers.c.external_id,
            )
            .execution_options(yield_per=EXPORT_BATCH)
        )
        result = await self.session.stream(statement)
        async for partition in result.partitions():
            for row in partition:
                yield tuple(row)


class RiskScoreHistoryRepository(TenantRepository[RiskScoreHistory]):
    model = RiskScoreHistory

    async def pages_by_customer(
        self, customer_ids: list[uuid.UUID], *, first: int | None, after: str | None, with_total: bool = True
    ) -> dict[uuid.UUID, Page[RiskScoreHistory]]:
        """The same page of each customer's score history, newest first."""
        return await self.pages_by(
            RiskScoreHistory.customer_id,
            customer_ids,
            first=first,
            after=after,
            with_total=with_total,
            order=NEWEST_SCORE_FIRST,
        )


class RiskModelRepository(TenantRepository[RiskModel]):
    model = RiskModel

    async def active(self) -> RiskModel | None:
        """The trained version that scores, if any (a rules row never does)."""
        statement = self.select_readable().where(RiskModel.active.is_(True), RiskModel.kind != "rules")
        return (await self.session.execute(statement)).scalars().first()

    async def newest_first(self) -> list[RiskModel]:
        """Every version without its model bytes: listing versions never needs them."""
        statement = (
            self.select_readable()
            .options(defer(RiskModel.model_blob))
            .order_by(RiskModel.created_at.desc(), RiskModel.id.desc())
        )
        return list((await self.session.execute(statement)).scalars())

    async def claim(self, model_id: uuid.UUID, **values: Any) -> bool:
        """Queued -> `values` in one statement: of two copies of a job, one claims the run."""
        statement = (
            self.update_owned()
            .where(RiskModel.id == model_id, RiskModel.status == "queued")
            .values(**values)
            .returning(RiskModel.id)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).first() is not None

    async def locked(self, model_id: uuid.UUID) -> RiskModel | None:
        """The version, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
        statement = self.select_readable().where(RiskModel.id == model_id).with_for_update()
        return (await self.session.execute(statement.options(defer(RiskModel.model_blob)))).scalars().first()

    async def set_values(self, model_id: uuid.UUID, **values: Any) -> None:
        statement = self.update_owned().where(RiskModel.id == model_id).values(**values)
        await self.session.execute(statement.execution_options(synchronize_session=False))

    async def deactivate_others(self, model_id: uuid.UUID) -> None:
        statement = self.update_owned().where(RiskModel.active.is_(True), RiskModel.id != model_id)
        await self.session.execute(statement.values(active=False).execution_options(synchronize_session=False))


class RiskSettingsRepository(TenantRepository[RiskSettings]):
    model = RiskSettings

    async def find(self) -> RiskSettings | None:
        return (await self.session.execute(self.select_readable())).scalar_one_or_none()


def _encode_risk_cursor(score: float, customer_id: uuid.UUID) -> str:
    # repr() of a float reads back to the very same float: the next page starts exactly after it.
    return base64.urlsafe_b64encode(f"risk|{float(score)!r}|{customer_id}".encode()).decode().rstrip("=")


def _decode_risk_cursor(cursor: str) -> tuple[float, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, score, customer_id = raw.split("|")
        if kind != "risk":
            raise ValueError("not a risk cursor")
        return float(score), uuid.UUID(customer_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor") from None
