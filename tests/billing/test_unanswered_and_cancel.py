"""When the provider never answers, the redemption stays PENDING (nothing accepted, the budget
still reserved) and the fallback job, queued with the redemption, asks again under the same key
and settles it once. Cancelling goes through the adapter; a customer in a campaign's holdout can
be offered and redeem nothing."""

import pytest
from sqlalchemy import select

from churnsaver.backend.billing import service as billing
from churnsaver.backend.billing.service import APPLY_REDEMPTION
from churnsaver.backend.campaigns import service as campaigns
from churnsaver.backend.core.db import Database
from churnsaver.backend.offers.service import OfferNotEligible
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.campaigns import enroll, enrollments, only_campaign
from tests.fixtures.cases import stored_cases
from tests.fixtures.offers import (
    billing_calls,
    budget_rows,
    cancellation_case,
    choices,
    connect,
    default_offer,
    paying_customer,
    redemptions,
)
from tests.fixtures.server import free_port

KEY = "whop_key_unanswered"


async def test_an_unanswered_accept_stays_pending_and_the_fallback_job_settles_it_once(
    settings, provider_db, tenant, whop_api
) -> None:
    whop_api.api_keys.add(KEY)
    await connect(provider_db, tenant.id, "WHOP", KEY)
    case = await cancellation_case(provider_db, tenant.id, "user_gone1")
    whop_api.add_membership("mem_user_gone1", cancel_at_period_end=True)
    discount = await default_offer(provider_db, tenant.id, "percent_30_x3")
    down = Database(settings.model_copy(update={"whop_api_url": f"http://127.0.0.1:{free_port()}"}))
    try:
        accept = {
            "tenant_id": tenant.id,
            "offer_id": discount.id,
            "customer_id": case.customer_id,
            "case_id": case.id,
            "source": "widget",
            "idempotency_key": "unanswered-1",
        }
        outcome = await billing.redeem(down, **accept)
        assert outcome.status == "PENDING"
        assert (await billing.redeem(down, **accept)).redemption_id == outcome.redemption_id
    finally:
        await down.dispose()
    [pending] = await redemptions(provider_db, tenant.id)
    assert (pending.status, pending.attempts) == ("PENDING", 1)
    # Three tries, none answered; the repeated accept returned the first's outcome without asking.
    assert [call.status_code for call in await billing_calls(provider_db, tenant.id)] == [None] * 3
    assert (await budget_rows(provider_db, tenant.id))[str(discount.id)].reserved == 3600
    async with provider_db.tenant_session(tenant.id) as session:
        jobs = (await session.execute(select(OutboxJob).where(OutboxJob.actor_name == APPLY_REDEMPTION))).scalars()
        fallback = [job for job in jobs if job.kwargs.get("redemption_id") == str(pending.id)]
    assert len(fallback) == 1 and fallback[0].not_before is not None

    settled = await billing.apply_redemption(provider_db, tenant.id, pending.id)
    again = await billing.apply_redemption(provider_db, tenant.id, pending.id)
    assert (settled.status, again.status) == ("APPLIED", "APPLIED")
    assert [action for action, _id, _body in whop_api.applied] == ["create_promo_code", "apply_promo_code", "update"]
    rows = await budget_rows(provider_db, tenant.id)
    assert (rows[str(discount.id)].reserved, rows[str(discount.id)].spent) == (3600, 3600)


async def test_cancelling_through_the_sandbox_schedules_the_cancel_and_opens_the_case(db, tenant) -> None:
    customer_id = await paying_customer(db, tenant.id, "user_cx1")
    outcome = await billing.cancel_subscription(
        db, tenant_id=tenant.id, customer_id=customer_id, reason="too_expensive", comment="Too much for me"
    )
    assert (outcome.canceled, outcome.provider) == (True, "SANDBOX")
    kinds = [(c.kind, c.status) for c in await stored_cases(db, tenant.id) if c.customer_id == customer_id]
    assert kinds == [("cancellation_scheduled", "open")]


async def test_cancelling_through_whop_asks_for_a_cancel_at_the_periods_end(provider_db, tenant, whop_api) -> None:
    whop_api.api_keys.add(KEY)
    await connect(provider_db, tenant.id, "WHOP", KEY)
    customer_id = await paying_customer(provider_db, tenant.id, "user_cx2")
    whop_api.add_membership("mem_user_cx2")
    outcome = await billing.cancel_subscription(
        provider_db, tenant_id=tenant.id, customer_id=customer_id, reason="not_using", comment=None
    )
    assert (outcome.canceled, outcome.provider) == (True, "WHOP")
    assert whop_api.applied == [("cancel", "mem_user_cx2", {"cancel_at_period_end": True, "reason": "not_using"})]


async def test_a_customer_held_out_of_a_campaign_is_offered_and_redeems_nothing(db, tenant) -> None:
    await only_campaign(
        db,
        tenant.id,
        kinds=["cancellation_scheduled"],
        steps=[{"delay": "P1D", "channel": "email", "template": "cancellation_offer"}],
        holdout_share=0.9,
    )
    cases = [await cancellation_case(db, tenant.id, f"user_hold{n}") for n in range(8)]
    await enroll(db, tenant.id)
    held = {e.customer_id for e in await enrollments(db, tenant.id) if e.holdout}
    assert held, "with a 90% holdout, eight cases put someone in it"
    case = next(c for c in cases if c.customer_id in held)
    async with db.tenant_session(tenant.id) as session:
        assert await campaigns.in_holdout(session, tenant.id, case.customer_id)
    assert await choices(db, tenant.id, case.customer_id, case_id=case.id, holdout=True) == []
    with pytest.raises(OfferNotEligible):
        await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=(await default_offer(db, tenant.id, "uncancel")).id,
            customer_id=case.customer_id,
            case_id=case.id,
            source="widget",
            idempotency_key="held-out",
        )
