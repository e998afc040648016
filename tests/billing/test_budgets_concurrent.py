"""Budgets hold under load: 50 customers accept the same discount at once; the offer's monthly
budget covers 10, so exactly 10 are applied, the rest are refused as over budget, and the money
reserved and spent is exactly the budget, on both backends."""

import asyncio

from churnsaver.backend.billing import service as billing
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.offers.service import OverBudget
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile
from tests.fixtures.offers import budget_rows, default_offer, redemptions, update_offer

CUSTOMERS = 50
COST = 3600  # 30% of 40.00 for 3 cycles


async def test_fifty_concurrent_accepts_never_overspend_the_budget(db, tenant) -> None:
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    await update_offer(db, tenant.id, discount.id, monthly_budget=10 * COST)
    at = utcnow().replace(microsecond=0)
    deliveries = [
        payloads.whop_payment_succeeded(user_id=f"user_load{n}", membership_id=f"mem_load{n}", at=at, total=40.0)
        for n in range(CUSTOMERS)
    ]
    customer_ids = list((await apply_and_reconcile(db, tenant.id, *deliveries)).changed_customers)
    assert len(customer_ids) == CUSTOMERS

    async def accept(customer_id):
        try:
            return await billing.redeem(
                db,
                tenant_id=tenant.id,
                offer_id=discount.id,
                customer_id=customer_id,
                case_id=None,
                source="widget",
                cancel_reason="too_expensive",
                idempotency_key=f"load-{customer_id}",
            )
        except OverBudget as refused:
            return refused

    results = await asyncio.gather(*(accept(customer_id) for customer_id in customer_ids))
    applied = [result for result in results if not isinstance(result, OverBudget)]
    assert [result.status for result in applied] == ["APPLIED"] * 10
    assert sum(isinstance(result, OverBudget) for result in results) == CUSTOMERS - 10
    assert len(await redemptions(db, tenant.id)) == 10
    rows = await budget_rows(db, tenant.id)
    assert (rows[str(discount.id)].reserved, rows[str(discount.id)].spent) == (10 * COST, 10 * COST)
    assert (rows["tenant"].reserved, rows["tenant"].spent) == (10 * COST, 10 * COST)
