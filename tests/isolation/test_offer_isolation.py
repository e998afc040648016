"""Cross-tenant attempts on offers and billing below the API: every repository reads and writes
only the acting tenant's offers, redemptions, budgets, arms, billing connection and calls; the
dataloaders behind Case.offers and Case.redemptions answer nothing for another tenant's case; the
services treat another tenant's offer, case or customer as "not found", and what they hold stays."""

import pytest
from sqlalchemy import select

from churnsaver.backend.billing import service as billing
from churnsaver.backend.billing.models import BillingConnection
from churnsaver.backend.billing.repository import BillingCallRepository, BillingConnectionRepository
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.offers import service
from churnsaver.backend.offers.models import Redemption
from churnsaver.backend.offers.repository import (
    ArmRepository,
    BudgetRepository,
    OfferRepository,
    RedemptionFilter,
    RedemptionRepository,
)
from churnsaver.graphql.dataloaders import Loaders
from churnsaver.tenants.auth import Scope
from tests.fixtures.factories import scoped_subject
from tests.fixtures.offers import cancellation_case, connect, default_offer


@pytest.fixture
async def theirs(db, other_tenant):
    """Another tenant with a case, an accepted offer (budget spent, arm rewarded) and a billing connection."""
    case = await cancellation_case(db, other_tenant.id, "user_IsoTheirs")
    discount = await default_offer(db, other_tenant.id, "percent_30_x3")
    outcome = await billing.redeem(
        db,
        tenant_id=other_tenant.id,
        offer_id=discount.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="email",
        idempotency_key="iso-theirs",
    )
    assert outcome.status == "APPLIED"
    await connect(db, other_tenant.id, "SANDBOX", None)
    return case, discount, outcome.redemption_id


async def test_repositories_read_only_the_acting_tenants_rows(db, tenant, theirs) -> None:
    case, discount, redemption_id = theirs
    async with db.tenant_session(tenant.id) as session:
        assert await OfferRepository(session, tenant.id).get(discount.id) is None
        assert discount.id not in {offer.id for offer in await OfferRepository(session, tenant.id).active()}
        redemptions = RedemptionRepository(session, tenant.id)
        assert await redemptions.get(redemption_id) is None
        assert await redemptions.by_key("iso-theirs") is None
        assert await redemptions.of_cases([case.id]) == []
        assert (await redemptions.page(RedemptionFilter(case_id=case.id), first=10, after=None)).rows == []
        assert await redemptions.of_customer_since(case.customer_id, case.opened_at.replace(year=2000)) == []
        assert await BudgetRepository(session, tenant.id).of_month(discount.created_at.strftime("%Y-%m")) == []
        assert await ArmRepository(session, tenant.id).shown_in("cancellation_scheduled", [discount.id]) == {}
        assert await redemptions.verified_rewards("cancellation_scheduled", [discount.id]) == {}
        assert await BillingConnectionRepository(session, tenant.id).find() is None
        assert await BillingCallRepository(session, tenant.id).of_redemption(redemption_id) == []


async def test_a_budget_reservation_and_a_settle_never_touch_another_tenants_month(db, tenant, theirs) -> None:
    _case, discount, _redemption_id = theirs
    month = discount.created_at.strftime("%Y-%m")
    async with db.tenant_unit_of_work(tenant.id) as session:
        assert not await BudgetRepository(session, tenant.id).reserve(str(discount.id), month, 1)
        await BudgetRepository(session, tenant.id).settle(str(discount.id), month, 3600, 0)
    async with db.tenant_session(discount.tenant_id) as session:
        [row] = [r for r in await BudgetRepository(session, discount.tenant_id).of_month(month) if r.scope != "tenant"]
    assert (row.reserved, row.spent) == (3600, 3600)


async def test_settling_another_tenants_redemption_does_nothing(db, tenant, theirs) -> None:
    _case, _discount, redemption_id = theirs
    async with db.tenant_unit_of_work(tenant.id) as session:
        settled = await service.settle(
            session, tenant.id, redemption_id, applied=False, reason="x", answer={}, provider="SANDBOX", actor="t"
        )
    assert settled is None
    async with db.system_session() as session:
        row = await session.get(Redemption, redemption_id)
        assert row is not None and row.status == "APPLIED"


async def test_the_case_offer_loaders_answer_nothing_for_another_tenants_case(db, tenant, theirs) -> None:
    case, discount, redemption_id = theirs
    loaders = Loaders(db, tenant.id)
    assert await loaders.case_redemptions.load(case.id) == []
    assert await loaders.redemption.load(redemption_id) is None
    assert await loaders.offer.load(discount.id) is None


async def test_services_treat_another_tenants_ids_as_not_found(db, tenant, theirs) -> None:
    case, discount, _redemption_id = theirs
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_unit_of_work(tenant.id) as session:
        for change in (
            service.update_offer(session, subject, discount.id, name="Hijacked"),
            service.archive_offer(session, subject, discount.id),
            service.offers_for_case(session, subject, case.id, holdout=False),
        ):
            with pytest.raises(NotFound):
                await change
        assert (await service.list_redemptions(session, subject, RedemptionFilter(case_id=case.id))).rows == []
    with pytest.raises(NotFound):
        await billing.cancel_subscription(
            db, tenant_id=tenant.id, customer_id=case.customer_id, reason=None, comment=None
        )
    async with db.system_session() as session:
        connections = (await session.execute(select(BillingConnection.tenant_id))).scalars().all()
    assert tenant.id not in connections
    assert (await default_offer(db, discount.tenant_id, "percent_30_x3")).name == "30% off for 3 months"
