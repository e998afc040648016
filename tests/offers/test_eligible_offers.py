"""Eligibility and choice: what a customer is offered now, best first, each with its reason; nothing
to a customer in a holdout; an offer the budget cannot cover, or already redeemed, is not shown;
wording in the customer's locale; shown offers are case events."""

import pytest

from churnsaver.backend.billing import service as billing
from churnsaver.backend.cases.models import CaseEventType
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.offers.service import AlreadyRedeemed, OverBudget
from tests.fixtures.cases import stored_case_events
from tests.fixtures.offers import (
    cancellation_case,
    choices,
    default_offer,
    failed_payment_case,
    paying_customer,
    update_offer,
)


async def test_a_scheduled_cancellation_is_offered_uncancel_and_the_discount_with_reasons(db, tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_elig1", total=40.0)
    offered = await choices(db, tenant.id, case.customer_id, case_id=case.id, surface="email")
    assert [choice.kind for choice in offered] == ["UNCANCEL", "PERCENT_OFF"]
    uncancel, discount = offered
    assert "UNCANCEL fixes a cancellation_scheduled case" in uncancel.reason
    assert discount.cost == 3600  # 30% of 40.00 for 3 cycles
    assert (discount.title, discount.description) == ("30% off", "30% off your next 3 payments.")
    shown = [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]
    assert [(e.case_id, e.data["kind"], e.data["position"]) for e in shown] == [
        (case.id, "UNCANCEL", 0),
        (case.id, "PERCENT_OFF", 1),
    ]


async def test_a_failed_payment_leads_with_the_card_update_and_never_uncancel(db, tenant) -> None:
    case = await failed_payment_case(db, tenant.id, "user_elig2")
    offered = await choices(db, tenant.id, case.customer_id, case_id=case.id, surface="email")
    assert [choice.kind for choice in offered] == ["UPDATE_PAYMENT", "PERCENT_OFF"]


async def test_the_cancel_reason_picks_the_discount_in_the_customers_locale(db, tenant) -> None:
    customer_id = await paying_customer(db, tenant.id, "user_elig3")
    offered = await choices(db, tenant.id, customer_id, cancel_reason="too_expensive", locale="es-MX")
    [discount] = offered
    assert discount.kind == "PERCENT_OFF"
    assert "cancel reason too_expensive favours PERCENT_OFF" in discount.reason
    assert discount.title == "30% de descuento"


async def test_a_customer_in_a_holdout_is_offered_nothing(db, tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_elig4")
    assert await choices(db, tenant.id, case.customer_id, case_id=case.id, holdout=True) == []
    assert not [e for e in await stored_case_events(db, tenant.id) if e.type == CaseEventType.offer_shown.value]


async def test_an_offer_the_budget_cannot_cover_is_neither_shown_nor_redeemable(db, tenant) -> None:
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    await update_offer(db, tenant.id, discount.id, monthly_budget=3599)
    customer_id = await paying_customer(db, tenant.id, "user_elig5")
    assert await choices(db, tenant.id, customer_id, cancel_reason="too_expensive") == []
    with pytest.raises(OverBudget):
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=discount.id,
            customer_id=customer_id,
            case_id=None,
            source="widget",
            cancel_reason="too_expensive",
            idempotency_key="over-budget",
        )


async def test_a_redeemed_offer_is_not_offered_again_within_the_cooldown(db, tenant) -> None:
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    customer_id = await paying_customer(db, tenant.id, "user_elig6")
    first = await billing.redeem(
        db,
        tenant_id=tenant.id,
        offer_id=discount.id,
        customer_id=customer_id,
        case_id=None,
        source="widget",
        cancel_reason="too_expensive",
        idempotency_key="first",
    )
    assert first.status == "APPLIED"
    assert await choices(db, tenant.id, customer_id, cancel_reason="too_expensive") == []
    with pytest.raises(AlreadyRedeemed):
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=discount.id,
            customer_id=customer_id,
            case_id=None,
            source="widget",
            cancel_reason="too_expensive",
            idempotency_key="second",
        )


async def test_another_tenants_customer_case_and_offer_are_not_found(db, tenant, other_tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_elig7")
    theirs = await cancellation_case(db, other_tenant.id, "user_elig7")
    their_offer = await default_offer(db, other_tenant.id, "uncancel")
    with pytest.raises(NotFound):
        await choices(db, tenant.id, theirs.customer_id)
    with pytest.raises(NotFound):
        await choices(db, tenant.id, case.customer_id, case_id=theirs.id)
    with pytest.raises(NotFound):
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=their_offer.id,
            customer_id=case.customer_id,
            case_id=case.id,
            source="one_click",
            idempotency_key="foreign-offer",
        )
    with pytest.raises(NotFound):
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=(await default_offer(db, tenant.id, "uncancel")).id,
            customer_id=theirs.customer_id,
            case_id=theirs.id,
            source="one_click",
            idempotency_key="foreign-customer",
        )
