"""The risk engine's API, for GraphQL and the CLI: customers listed by risk, tiers, thresholds,
model versions, training and exports. Each function checks the subject's scope; none commits.

Risk may read customers (it sits above them), so listing customers by tier or riskiest first lives
here; the customers domain lists them by their own fields only.

Training and evaluation (pandas, CatBoost: seconds to import) are imported inside the functions
that need them, so a process that only serves reads never pays for them.
"""

from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pagination import Page, keyset_page
from churnsaver.backend.customers import service as customers
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import Distribution, RiskModelRepository, RiskScoreRepository
from churnsaver.backend.risk.settings import RiskConfig, Thresholds, load_config, set_thresholds
from churnsaver.backend.risk.tasks import enqueue_score_tenant, enqueue_training
from churnsaver.tenants.auth import AuthSubject


class CustomerOrder(StrEnum):
    created_asc = "created_asc"
    risk_desc = "risk_desc"  # highest current score first, unscored last


async def list_customers(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    filter: customers.CustomerFilter | None = None,
    tier: str | None = None,
    order: CustomerOrder = CustomerOrder.created_asc,
    first: int | None,
    after: str | None,
    with_total: bool = True,
) -> Page[Customer]:
    """A keyset page of the tenant's customers matching `filter` and, when given, whose current
    score is in `tier`. Risk orders and tiers hold only customers who can still churn."""
    statement = customers.customers_statement(session, subject, filter)
    scores = RiskScoreRepository(session, subject.tenant_id)
    if tier is not None:
        statement = scores.in_tier(statement, tier)
    if order is CustomerOrder.risk_desc:
        return await scores.riskiest_first(statement, first=first, after=after, with_total=with_total)
    return await keyset_page(session, statement, Customer, first=first, after=after, with_total=with_total)


async def risk_distribution(session: AsyncSession, subject: AuthSubject) -> Distribution:
    """How many customers who can still churn are in each tier now and how many are not scored
    yet; churned customers are counted apart."""
    subject.require_read()
    return await RiskScoreRepository(session, subject.tenant_id).distribution()


async def risk_thresholds(session: AsyncSession, subject: AuthSubject) -> RiskConfig:
    subject.require_read()
    return await load_config(session, subject.tenant_id)


async def set_risk_thresholds(session: AsyncSession, subject: AuthSubject, thresholds: Thresholds) -> RiskConfig:
    """Store the thresholds (InvalidInput unless 0 < medium < high < critical <= 1) and enqueue a
    scoring run: tiers are stored with the scores, so they change when the tenant is scored again."""
    subject.require_write()
    config = await set_thresholds(session, subject.tenant_id, thresholds)
    enqueue_score_tenant(session, subject.tenant_id)
    return config


async def list_risk_models(session: AsyncSession, subject: AuthSubject) -> list[RiskModel]:
    """The tenant's model versions, newest first, without their model bytes."""
    subject.require_read()
    return await RiskModelRepository(session, subject.tenant_id).newest_first()


async def queue_training(
    session: AsyncSession, subject: AuthSubject, *, as_of: datetime | None = None, force: bool = False
) -> RiskModel:
    """A queued version and its training job, in the caller's transaction."""
    from churnsaver.backend.risk.training import create_version

    row = await create_version(session, subject, as_of=as_of)
    enqueue_training(session, subject.tenant_id, row.id, force=force)
    return row


async def evaluate_active_model(
    session: AsyncSession, subject: AuthSubject, as_of: datetime | None = None
) -> dict[str, Any]:
    """The active version's metrics recomputed on the holdout of the rows as of `as_of` (now)."""
    from churnsaver.backend.risk.training import evaluate_active

    subject.require_read()
    return await evaluate_active(session, subject.tenant_id, as_of)


def export_scores(session: AsyncSession, subject: AuthSubject) -> AsyncIterator[tuple[Any, ...]]:
    """(external id, score, tier, model version, reasons, status, churned at): every scored customer
    who can still churn, riskiest first, then every churned customer without a score; streamed."""
    subject.require_read()
    return RiskScoreRepository(session, subject.tenant_id).export_rows()
