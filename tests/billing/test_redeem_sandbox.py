"""Redeeming through the sandbox: one accept settles APPLIED, applies to our own subscription state
and the case recovers from it; a repeated key returns the first outcome without a second call."""

import asyncio

from sqlalchemy import select

from churnsaver.backend.billing import service as billing
from churnsaver.backend.billing.service import APPLY_REDEMPTION
from churnsaver.backend.cases.models import CaseEventType
from churnsaver.backend.offers.service import AlreadyRedeemed
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.cases import stored_case_events
from tests.fixtures.offers import billing_calls, budget_rows, cancellation_case, case_now, default_offer, redemptions


async def test_uncancel_through_the_sandbox_recovers_the_case_once(db, tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_sbx1")
    uncancel = await default_offer(db, tenant.id, "uncancel")
    outcome = await billing.redeem(
        db,
        tenant_id=tenant.id,
        offer_id=uncancel.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="one_click",
        idempotency_key="click-1",
    )
    assert (outcome.status, outcome.reason, outcome.offer.id) == ("APPLIED", None, uncancel.id)
    again = await billing.redeem(
        db,
        tenant_id=tenant.id,
        offer_id=uncancel.id,
        customer_id=case.customer_id,
        case_id=case.id,
        source="one_click",
        idempotency_key="click-1",
    )
    assert (again.status, again.redemption_id) == ("APPLIED", outcome.redemption_id)
    [redemption] = await redemptions(db, tenant.id)
    assert (redemption.status, redemption.provider, redemption.case_id) == ("APPLIED", "SANDBOX", case.id)
    [call] = await billing_calls(db, tenant.id)
    assert (call.provider, call.action, call.redemption_id) == ("SANDBOX", "uncancel", redemption.id)
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"
    types = [event.type for event in await stored_case_events(db, tenant.id) if event.case_id == case.id]
    assert types.count(CaseEventType.offer_accepted.value) == 1
    async with db.tenant_session(tenant.id) as session:
        fallback = (await session.execute(select(OutboxJob).where(OutboxJob.actor_name == APPLY_REDEMPTION))).all()
    assert fallback == []  # settled at once: the fallback job was taken back in the same transaction


async def test_ten_concurrent_accepts_under_one_key_are_one_redemption_and_one_call(db, tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_sbx2")
    discount = await default_offer(db, tenant.id, "percent_30_x3")

    async def accept():
        return await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=discount.id,
            customer_id=case.customer_id,
            case_id=case.id,
            source="widget",
            idempotency_key="double-click",
        )

    outcomes = await asyncio.gather(*(accept() for _ in range(10)))
    [redemption] = await redemptions(db, tenant.id)
    assert {outcome.redemption_id for outcome in outcomes} == {redemption.id}
    assert {outcome.status for outcome in outcomes} <= {"PENDING", "APPLIED"}
    assert redemption.status == "APPLIED"
    assert len(await billing_calls(db, tenant.id)) == 1
    rows = await budget_rows(db, tenant.id)
    assert (rows[str(discount.id)].reserved, rows[str(discount.id)].spent) == (3600, 3600)


async def test_concurrent_accepts_of_one_offer_under_different_keys_redeem_it_once(db, tenant) -> None:
    case = await cancellation_case(db, tenant.id, "user_sbx3")
    discount = await default_offer(db, tenant.id, "percent_30_x3")

    async def accept(n: int):
        try:
            return await billing.redeem(
                db,
                tenant_id=tenant.id,
                offer_id=discount.id,
                customer_id=case.customer_id,
                case_id=case.id,
                source="widget",
                idempotency_key=f"tab-{n}",
            )
        except AlreadyRedeemed as refused:
            return refused

    outcomes = await asyncio.gather(*(accept(n) for n in range(6)))
    assert sum(not isinstance(outcome, AlreadyRedeemed) for outcome in outcomes) == 1
    assert len(await redemptions(db, tenant.id)) == 1
    assert len(await billing_calls(db, tenant.id)) == 1
