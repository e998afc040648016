"""The choice policy: rules order by case kind, cancel reason and risk tier, and say so; with the
learning policy on, Thompson sampling orders by each arm's evidence in the segment, and a control
share stays on the rules; every choice's reason names the policy that made it."""

import random
import uuid
from datetime import timedelta

from sqlalchemy import update

from churnsaver.backend.billing import service as billing
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.offers.choice import Evidence, Situation, by_rules, choose, ineligible_because
from churnsaver.backend.offers.models import Offer, Redemption
from churnsaver.backend.offers.repository import ArmRepository, RedemptionRepository
from churnsaver.backend.offers.settings import OfferSettings
from tests.fixtures.offers import (
    cancellation_case,
    choices,
    create_offer,
    default_offer,
    offer_settings,
    paying_customer,
)

TENANT = uuid.uuid4()


def offer(kind: str, **fields) -> Offer:
    return Offer(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        kind=kind,
        name=kind,
        value=fields.pop("value", {}),
        eligibility=fields.pop("eligibility", {}),
        priority=fields.pop("priority", 0),
        created_at=utcnow(),
        **fields,
    )


def situation(*, kind: str | None = None, reason: str | None = None, tier: str | None = None, **sub) -> Situation:
    now = utcnow()
    customer = Customer(id=uuid.uuid4(), tenant_id=TENANT, external_id="c", created_at=now - timedelta(days=90))
    subscription = Subscription(
        status=sub.get("status", "active"),
        mrr=sub.get("mrr", 4000),
        currency="USD",
        cancel_at_period_end=sub.get("cancel_at_period_end", False),
        ended_at=None,
        plan="plan_Pro",
    )
    case = RecoveryCase(id=uuid.uuid4(), kind=kind, details=sub.get("details", {})) if kind else None
    return Situation(customer=customer, subscription=subscription, case=case, tier=tier, cancel_reason=reason, now=now)


def test_rules_put_the_fix_for_the_case_first_and_say_why() -> None:
    card, retry, discount = offer("UPDATE_PAYMENT"), offer("RETRY_PAYMENT"), offer("PERCENT_OFF")
    ordered = by_rules([discount, retry, card], situation(kind="payment_failed", details={"decline_class": "hard"}))
    assert [chosen.kind for chosen, _ in ordered] == ["UPDATE_PAYMENT", "RETRY_PAYMENT", "PERCENT_OFF"]
    assert ordered[0][1] == "rules: score 60 (UPDATE_PAYMENT fixes a payment_failed case)"
    soft = by_rules([card, retry], situation(kind="payment_failed", details={"decline_class": "soft"}))
    assert [chosen.kind for chosen, _ in soft] == ["RETRY_PAYMENT", "UPDATE_PAYMENT"]


def test_the_cancel_reason_and_a_high_risk_tier_favour_an_incentive_over_the_free_action() -> None:
    keep, pause, discount = offer("UNCANCEL"), offer("PAUSE", value={"cycles": 1}), offer("PERCENT_OFF")
    scheduled = situation(kind="cancellation_scheduled", cancel_at_period_end=True)
    assert by_rules([discount, keep], scheduled)[0][0].kind == "UNCANCEL"
    risky = situation(kind="cancellation_scheduled", cancel_at_period_end=True, tier="critical", reason="too_expensive")
    [(first, why), *_] = by_rules([keep, pause, discount], risky)
    assert first.kind == "PERCENT_OFF"
    assert "cancel reason too_expensive favours PERCENT_OFF" in why and "risk tier critical" in why
    not_using = by_rules([keep, pause, discount], situation(reason="not_using"))
    assert not_using[0][0].kind == "PAUSE"


def test_eligibility_checks_each_rule_and_what_the_kind_needs() -> None:
    settings = OfferSettings()
    now = situation(kind="cancellation_scheduled")
    assert ineligible_because(offer("UNCANCEL"), now, [], False, settings) == "no cancellation is scheduled"
    assert ineligible_because(offer("RESUME"), now, [], False, settings) == "the subscription is not paused"
    rich_only = offer("PERCENT_OFF", eligibility={"mrr_min": 5000})
    assert ineligible_because(rich_only, now, [], False, settings) == "MRR below the offer's range"
    veterans = offer("PERCENT_OFF", eligibility={"tenure_days_min": 365})
    assert ineligible_because(veterans, now, [], False, settings) == "the customer is too new for it"
    tiered = offer("PERCENT_OFF", eligibility={"tiers": ["critical"]})
    assert ineligible_because(tiered, now, [], False, settings) == "not for this risk tier"
    discount = offer("PERCENT_OFF")
    assert ineligible_because(discount, now, [], True, settings) == "another incentive is in flight"
    recent = [Redemption(offer_id=discount.id, created_at=now.now - timedelta(days=179))]
    assert ineligible_because(discount, now, recent, False, settings) == "already redeemed by the customer"
    long_ago = [Redemption(offer_id=discount.id, created_at=now.now - timedelta(days=181))]
    assert ineligible_because(discount, now, long_ago, False, settings) is None


def test_thompson_sampling_follows_the_evidence_and_keeps_a_control_share() -> None:
    winner, loser = offer("PERCENT_OFF"), offer("FREE_DAYS", value={"days": 7})
    arms = {winner.id: Evidence(shown=200, reward=150.0), loser.id: Evidence(shown=200, reward=10.0)}
    learning = OfferSettings(policy="thompson", control_share=0.25)
    now = situation(kind="usage_drop")
    rng = random.Random(22)
    control, learned_winner = 0, 0
    for _ in range(400):
        ordered, learned = choose([loser, winner], now, learning, arms, rng)
        if not learned:
            control += 1
            assert ordered[0][1].startswith("control share: rules:")
        else:
            assert ordered[0][1].startswith("thompson sampling in segment usage_drop: drew ")
            learned_winner += ordered[0][0].id == winner.id
    assert 60 <= control <= 140  # a quarter of 400, give or take
    assert learned_winner == 400 - control  # Beta(151, 51) always outdraws Beta(11, 191)
    ruled, learned = choose([loser, winner], now, OfferSettings(), arms, rng)
    assert not learned and ruled[0][1].startswith("rules:")


async def test_the_learning_policy_names_itself_in_every_reason(db, tenant) -> None:
    await offer_settings(db, tenant.id, policy="thompson", control_share=0.0)
    await create_offer(db, tenant.id, name="A week free", kind="FREE_DAYS", value={"days": 7})
    customer_id = await paying_customer(db, tenant.id, "user_ts1")
    offered = await choices(db, tenant.id, customer_id, cancel_reason="too_expensive")
    assert offered and all(choice.reason.startswith("thompson sampling in segment cancel_flow") for choice in offered)


async def test_the_policy_learns_from_shown_offers_and_verified_recoveries_only(db, tenant) -> None:
    uncancel = await default_offer(db, tenant.id, "uncancel")
    discount = await default_offer(db, tenant.id, "percent_30_x3")
    kept = await cancellation_case(db, tenant.id, "user_learn1")
    unverified = await cancellation_case(db, tenant.id, "user_learn2")
    for case in (kept, unverified):
        await choices(db, tenant.id, case.customer_id, case_id=case.id, surface="email")
    for case, offer in ((kept, uncancel), (unverified, discount)):
        outcome = await billing.redeem(
            db,
            tenant_id=tenant.id,
            offer_id=offer.id,
            customer_id=case.customer_id,
            case_id=case.id,
            source="email",
            idempotency_key=f"learn-{case.id}",
        )
        assert outcome.status == "APPLIED"
    async with db.tenant_unit_of_work(tenant.id) as session:
        await session.execute(update(RecoveryCase).where(RecoveryCase.id == kept.id).values(verified_at=utcnow()))
    async with db.tenant_session(tenant.id) as session:
        segment, offers = "cancellation_scheduled", [uncancel.id, discount.id]
        shown = await ArmRepository(session, tenant.id).shown_in(segment, offers)
        rewards = await RedemptionRepository(session, tenant.id).verified_rewards(segment, offers)
    assert shown == {uncancel.id: 2}  # shown first to both customers
    # The free action kept all the revenue at risk; the discount's recovery is not verified yet.
    assert rewards == {uncancel.id: 1.0}
