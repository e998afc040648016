"""Risk reads for the API that span domains: customers listed by risk, and the tenant's model versions.

Risk may read customers (it sits above them), so listing customers by tier or riskiest first lives
here; the customers domain lists them by their own fields only.
"""

import uuid
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pagination import Page, keyset_page
from churnsaver.backend.customers import service as customers
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.risk.model_store import RiskModelRepository
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.queries import in_tier, riskiest_first


class CustomerOrder(StrEnum):
    created_asc = "created_asc"
    risk_desc = "risk_desc"  # highest current score first, unscored last


async def list_customers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    filter: customers.CustomerFilter | None = None,
    tier: str | None = None,
    order: CustomerOrder = CustomerOrder.created_asc,
    first: int | None,
    after: str | None,
    with_total: bool = True,
) -> Page[Customer]:
    """A keyset page of the tenant's customers matching `filter` and, when given, whose current
    score is in `tier`."""
    statement = customers.customers_statement(session, tenant_id, filter)
    if tier is not None:
        statement = in_tier(statement, tenant_id, tier)
    if order is CustomerOrder.risk_desc:
        return await riskiest_first(session, tenant_id, statement, first=first, after=after, with_total=with_total)
    return await keyset_page(session, statement, Customer, first=first, after=after, with_total=with_total)


async def list_models(session: AsyncSession, tenant_id: uuid.UUID) -> list[RiskModel]:
    """The tenant's model versions, newest first, without their model bytes."""
    return await RiskModelRepository(session, tenant_id).newest_first()
