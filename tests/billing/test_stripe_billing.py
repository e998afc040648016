"""Redemptions applied on Stripe through the `stripe` package against a local server speaking
Stripe's API: `cancel_at_period_end=false`, a one-use coupon as the discount, a billing-portal
session for a card update, paying the open invoice, and a refusal FAILED with Stripe's reason."""

from datetime import timedelta

import pytest

from churnsaver.backend.billing import service as billing
from churnsaver.backend.billing.repository import BillingConnectionRepository
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.offers.models import RedemptionStatus
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile
from tests.fixtures.offers import (
    connect,
    create_offer,
    default_offer,
    open_case_of,
    redemptions,
    stripe_cancellation_case,
)
from tests.fixtures.providers import STRIPE_ACCOUNT

KEY = "sk_test_churnsaver"


async def stripe_tenant(provider_db, tenant_id, stripe_api) -> None:
    stripe_api.api_keys.add(KEY)
    await connect(provider_db, tenant_id, "STRIPE", KEY)


async def redeem(db, case, offer, key: str = "accept-1", **extra):
    return await billing.redeem(
        db,
        tenant_id=case.tenant_id,
        offer_id=offer.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="widget",
        idempotency_key=key,
        **extra,
    )


async def test_a_wrong_stripe_key_is_refused_by_the_check_call(provider_db, tenant, stripe_api) -> None:
    with pytest.raises(InvalidInput, match="Invalid API Key"):
        await connect(provider_db, tenant.id, "STRIPE", "sk_test_wrong")
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    async with provider_db.tenant_session(tenant.id) as session:
        connection = await BillingConnectionRepository(session, tenant.id).find()
    assert connection is not None and connection.account == STRIPE_ACCOUNT


async def test_uncancel_sets_cancel_at_period_end_false_once(provider_db, tenant, stripe_api) -> None:
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    case = await stripe_cancellation_case(provider_db, tenant.id, "St1")
    stripe_api.add_subscription("sub_St1", "cus_St1", cancel_at_period_end=True)
    uncancel = await default_offer(provider_db, tenant.id, "uncancel")
    assert (await redeem(provider_db, case, uncancel)).status == "APPLIED"
    assert (await redeem(provider_db, case, uncancel)).status == "APPLIED"
    assert stripe_api.calls("update_subscription") == [
        ("update_subscription", "sub_St1", {"cancel_at_period_end": "false"})
    ]


async def test_a_discount_is_a_one_use_coupon_on_the_subscription(provider_db, tenant, stripe_api) -> None:
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    case = await stripe_cancellation_case(provider_db, tenant.id, "St2")
    stripe_api.add_subscription("sub_St2", "cus_St2", cancel_at_period_end=True)
    outcome = await redeem(provider_db, case, await default_offer(provider_db, tenant.id, "percent_30_x3"))
    assert outcome.status == "APPLIED"
    [(_, coupon_id, coupon)] = stripe_api.calls("create_coupon")
    assert (coupon["percent_off"], coupon["duration_in_months"], coupon["max_redemptions"]) == ("30", "3", "1")
    subscription = stripe_api.subscriptions["sub_St2"]
    assert (subscription["discounts"], subscription["cancel_at_period_end"]) == ([coupon_id], False)


async def test_a_card_update_is_stripes_billing_portal_and_a_retry_pays_the_open_invoice(
    provider_db, tenant, stripe_api
) -> None:
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    failed = payloads.stripe_invoice_payment_failed(
        customer_id="cus_St3", subscription_id="sub_St3", at=utcnow() - timedelta(minutes=5), amount_due=4000
    )
    result = await apply_and_reconcile(provider_db, tenant.id, failed)
    [customer_id] = result.changed_customers
    case = await open_case_of(provider_db, tenant.id, customer_id, "payment_failed")
    card = await default_offer(provider_db, tenant.id, "update_payment")
    outcome = await redeem(provider_db, case, card, return_url="https://merchant.example/account")
    assert outcome.status == "APPLIED"
    assert outcome.hosted_url is not None and outcome.hosted_url.startswith("https://billing.stripe.com/p/session/")
    [(_, customer, params)] = stripe_api.calls("billing_portal_session")
    assert (customer, params["return_url"]) == ("cus_St3", "https://merchant.example/account")
    retry = await create_offer(
        provider_db, tenant.id, name="Retry", kind="RETRY_PAYMENT", eligibility={"case_kinds": ["payment_failed"]}
    )
    assert (await redeem(provider_db, case, retry, key="retry-1")).status == "APPLIED"
    [(_, invoice, _params)] = stripe_api.calls("pay_invoice")
    assert invoice == case.details["invoice_id"]


async def test_a_refused_subscription_change_is_failed_with_stripes_reason(provider_db, tenant, stripe_api) -> None:
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    case = await stripe_cancellation_case(provider_db, tenant.id, "refuseSt4")
    stripe_api.add_subscription("sub_refuseSt4", "cus_refuseSt4", cancel_at_period_end=True)
    outcome = await redeem(provider_db, case, await default_offer(provider_db, tenant.id, "uncancel"))
    assert outcome.status == RedemptionStatus.FAILED.value
    assert "This subscription cannot be changed" in (outcome.reason or "")
    [redemption] = await redemptions(provider_db, tenant.id)
    assert redemption.status == "FAILED"


@pytest.mark.parametrize(
    ("kind", "value", "changed"),
    [
        ("PAUSE", {"cycles": 2}, "pause_collection"),
        ("FREE_DAYS", {"days": 14}, "trial_end"),
        ("PLAN_SWITCH", {"plan": "price_Basic", "plan_name": "Basic"}, "items"),
    ],
)
async def test_a_pause_free_days_and_a_plan_switch_change_the_subscription_once(
    provider_db, tenant, stripe_api, kind, value, changed
) -> None:
    await stripe_tenant(provider_db, tenant.id, stripe_api)
    name = f"St{kind.title().replace('_', '')}"
    case = await stripe_cancellation_case(provider_db, tenant.id, name)
    stripe_api.add_subscription(f"sub_{name}", f"cus_{name}", cancel_at_period_end=True)
    offer = await create_offer(provider_db, tenant.id, name=kind, kind=kind, value=value)
    assert (await redeem(provider_db, case, offer)).status == "APPLIED"
    assert (await redeem(provider_db, case, offer)).status == "APPLIED"
    [(_, _id, params)] = stripe_api.calls("update_subscription")
    assert changed in params
    subscription = stripe_api.subscriptions[f"sub_{name}"]
    if kind == "PLAN_SWITCH":
        assert subscription["items"]["data"][0]["price"] == {"id": "price_Basic"}
    if kind == "PAUSE":
        assert subscription["pause_collection"]["behavior"] == "void"
        assert subscription["cancel_at_period_end"] is True  # a pause leaves the customer's cancel alone
    else:
        assert subscription["cancel_at_period_end"] is False
