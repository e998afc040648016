"""Redemptions applied on Whop through whop-sdk against a local server speaking Whop's API: the
key is checked and stored encrypted; one accept is one applied change however often it is
repeated; a refusal is FAILED with Whop's reason and nothing accepted; a 503 is retried under the
same Idempotency-Key; the case recovers only when Whop's webhook confirms."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from churnsaver.backend.billing import service as billing
from churnsaver.backend.billing.models import BillingConnection
from churnsaver.backend.cases.models import CaseEventType
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile, stored_case_events
from tests.fixtures.offers import (
    billing_calls,
    budget_rows,
    cancellation_case,
    case_now,
    connect,
    create_offer,
    default_offer,
    failed_payment_case,
    redemptions,
)
from tests.fixtures.providers import WHOP_ACCOUNT

KEY = "whop_live_key_for_tests"


async def whop_tenant(provider_db, tenant_id, whop_api) -> None:
    whop_api.api_keys.add(KEY)
    await connect(provider_db, tenant_id, "WHOP", KEY)


async def redeem(db, case, offer, key: str = "accept-1"):
    return await billing.redeem(
        db,
        tenant_id=case.tenant_id,
        offer_id=offer.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="one_click",
        idempotency_key=key,
    )


async def test_connecting_whop_checks_the_key_and_never_stores_it_readable(provider_db, tenant, whop_api) -> None:
    with pytest.raises(InvalidInput, match="WHOP refused the key"):
        await connect(provider_db, tenant.id, "WHOP", "wrong-key")
    await whop_tenant(provider_db, tenant.id, whop_api)
    async with provider_db.tenant_session(tenant.id) as session:
        statement = select(BillingConnection).where(BillingConnection.tenant_id == tenant.id)
        [row] = (await session.execute(statement)).scalars().all()
    assert (row.provider, row.account, row.key_hint) == ("WHOP", WHOP_ACCOUNT, KEY[-4:])
    assert row.api_key_encrypted is not None and KEY.encode() not in row.api_key_encrypted


async def test_one_accept_is_one_whop_change_and_the_webhook_recovers_the_case(provider_db, tenant, whop_api) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    case = await cancellation_case(provider_db, tenant.id, "user_wh1")
    whop_api.add_membership("mem_user_wh1", cancel_at_period_end=True)
    uncancel = await default_offer(provider_db, tenant.id, "uncancel")
    first = await redeem(provider_db, case, uncancel)
    again = await redeem(provider_db, case, uncancel)
    assert (first.status, again.status, again.redemption_id) == ("APPLIED", "APPLIED", first.redemption_id)
    assert [(call[1], call[2]) for call in whop_api.applied] == [("mem_user_wh1", {"cancel_at_period_end": False})]
    assert whop_api.memberships["mem_user_wh1"]["cancel_at_period_end"] is False
    # Accepted is not recovered: billing truth comes from Whop's webhook.
    assert (await case_now(provider_db, tenant.id, case.id)).status == "open"
    await apply_and_reconcile(
        provider_db,
        tenant.id,
        payloads.whop_membership_cancel_at_period_end_changed(
            user_id="user_wh1", membership_id="mem_user_wh1", at=utcnow(), cancel_at_period_end=False
        ),
    )
    assert (await case_now(provider_db, tenant.id, case.id)).status == "recovered"


async def test_a_refused_discount_is_failed_with_whops_reason_and_releases_the_budget(
    provider_db, tenant, whop_api
) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    case = await cancellation_case(provider_db, tenant.id, "user_refuse1")
    whop_api.add_membership("mem_user_refuse1", cancel_at_period_end=True)
    discount = await default_offer(provider_db, tenant.id, "percent_30_x3")
    outcome = await redeem(provider_db, case, discount)
    assert outcome.status == "FAILED"
    assert "This membership cannot be changed" in (outcome.reason or "")
    [redemption] = await redemptions(provider_db, tenant.id)
    assert (redemption.status, redemption.provider) == ("FAILED", "WHOP")
    rows = await budget_rows(provider_db, tenant.id)
    assert (rows[str(discount.id)].reserved, rows[str(discount.id)].spent) == (0, 0)
    types = [e.type for e in await stored_case_events(provider_db, tenant.id) if e.case_id == case.id]
    assert CaseEventType.offer_failed.value in types and CaseEventType.offer_accepted.value not in types
    assert (await case_now(provider_db, tenant.id, case.id)).status == "open"
    assert [call[0] for call in whop_api.applied] == ["create_promo_code"]  # never applied to the membership


async def test_a_discount_is_a_one_use_promo_code_applied_and_the_cancel_withdrawn(
    provider_db, tenant, whop_api
) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    case = await cancellation_case(provider_db, tenant.id, "user_wh2")
    whop_api.add_membership("mem_user_wh2", cancel_at_period_end=True)
    discount = await default_offer(provider_db, tenant.id, "percent_30_x3")
    outcome = await redeem(provider_db, case, discount)
    assert outcome.status == "APPLIED"
    [code] = whop_api.promo_codes.values()
    assert (code["amount_off"], code["promo_type"], code["stock"], code["uses"]) == (30.0, "percentage", 1, 1)
    assert whop_api.memberships["mem_user_wh2"]["promo_code"]["code"] == code["code"]
    assert whop_api.memberships["mem_user_wh2"]["cancel_at_period_end"] is False
    rows = await budget_rows(provider_db, tenant.id)
    assert (rows[str(discount.id)].reserved, rows[str(discount.id)].spent) == (3600, 3600)


async def test_a_503_is_retried_under_the_same_key_and_applied_once(provider_db, tenant, whop_api) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    case = await cancellation_case(provider_db, tenant.id, "user_flaky1")
    whop_api.add_membership("mem_user_flaky1", cancel_at_period_end=True)
    outcome = await redeem(provider_db, case, await default_offer(provider_db, tenant.id, "uncancel"))
    assert outcome.status == "APPLIED"
    assert [call.status_code for call in await billing_calls(provider_db, tenant.id)] == [503, 200]
    assert len(whop_api.applied) == 1


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("FREE_DAYS", {"days": 14}, [("extend", {"days": 14})]),
        ("PAUSE", {"cycles": 1}, [("pause", {"until": "a time 30 days on"})]),
    ],
)
async def test_free_days_and_a_pause_are_one_membership_call_each(
    provider_db, tenant, whop_api, kind, value, expected
) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    user = f"user_{kind.lower()}"
    case = await cancellation_case(provider_db, tenant.id, user)
    whop_api.add_membership(f"mem_{user}", cancel_at_period_end=True)
    offer = await create_offer(provider_db, tenant.id, name=kind, kind=kind, value=value)
    assert (await redeem(provider_db, case, offer)).status == "APPLIED"
    calls = [(action, body) for action, _membership, body in whop_api.applied]
    if kind == "PAUSE":
        resumes = datetime.fromisoformat(calls[0][1]["until"])
        assert timedelta(days=29) < resumes - utcnow() <= timedelta(days=30)
        calls[0] = ("pause", {"until": "a time 30 days on"})
    # An incentive also withdraws the scheduled cancel; a pause leaves it as the customer chose.
    uncancel = [] if kind == "PAUSE" else [("update", {"cancel_at_period_end": False})]
    assert calls == expected + uncancel


async def test_a_failed_payments_card_update_and_retry_on_whop(provider_db, tenant, whop_api) -> None:
    await whop_tenant(provider_db, tenant.id, whop_api)
    case = await failed_payment_case(provider_db, tenant.id, "user_wh3")
    whop_api.add_membership("mem_user_wh3")
    card = await redeem(provider_db, case, await default_offer(provider_db, tenant.id, "update_payment"))
    assert (card.status, card.hosted_url) == ("APPLIED", "https://whop.com/orders/mem_user_wh3/manage")
    retry = await create_offer(
        provider_db, tenant.id, name="Retry", kind="RETRY_PAYMENT", eligibility={"case_kinds": ["payment_failed"]}
    )
    assert (await redeem(provider_db, case, retry, key="retry-1")).status == "APPLIED"
    assert whop_api.calls("retry_payment") == [("retry_payment", "pay_user_wh3", {})]
