"""Which offers a customer may get now (eligibility) and in what order (choice), with the reason.

Eligibility: the offer's case kinds, risk tiers, plans, MRR range, tenure and cancel reasons; what
its kind needs of the subscription (UNCANCEL a scheduled cancel, RESUME a pause, a discount a
running paid subscription); at most one redemption per customer and offer in the cooldown, and
one incentive in flight per customer. Holdout and budgets are checked by the service.

Choice: rules score each eligible offer by the case kind, the cancel reason and the risk tier
(the score's parts are its reason). A tenant may turn on Thompson sampling: per segment (the case
kind) each offer's Beta(1 + reward, 1 + shown - reward) is sampled and the highest leads (shown: how
often it was shown first; reward: its verified net recovered revenue, each recovery a 0..1 share
of the revenue at risk); a share
of choices (`control_share`) stays on the rules, so the policy is measured against them.
"""

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from churnsaver.backend.cases.models import CaseKind, RecoveryCase
from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.offers.models import FREE_KINDS, Offer, OfferKind, Redemption
from churnsaver.backend.offers.settings import OfferSettings

RUNNING = frozenset({"active", "trialing", "past_due"})
# Which kinds answer which exit-survey reason best.
REASON_KINDS: dict[str, tuple[OfferKind, ...]] = {
    "too_expensive": (OfferKind.PERCENT_OFF, OfferKind.AMOUNT_OFF, OfferKind.PLAN_SWITCH),
    "not_using": (OfferKind.PAUSE, OfferKind.FREE_DAYS),
    "temporary": (OfferKind.PAUSE,),
    "missing_features": (OfferKind.PLAN_SWITCH, OfferKind.FREE_DAYS),
    "switching": (OfferKind.PERCENT_OFF, OfferKind.AMOUNT_OFF),
    "technical_issues": (OfferKind.FREE_DAYS,),
}
# Base scores per case kind: the action that fixes the cause first, then incentives.
KIND_SCORES: dict[str, dict[OfferKind, int]] = {
    CaseKind.payment_failed.value: {OfferKind.UPDATE_PAYMENT: 60, OfferKind.RETRY_PAYMENT: 55},
    CaseKind.cancellation_scheduled.value: {OfferKind.UNCANCEL: 50},
    CaseKind.canceled.value: {OfferKind.RESUME: 50},
}
INCENTIVE_SCORE = 30
REASON_BONUS = 40
HIGH_RISK_BONUS = 15  # a customer likely to leave is worth an incentive over a free action


@dataclass(frozen=True, slots=True)
class Evidence:
    """An offer's trials and rewards in a segment, for the learning policy."""

    shown: int = 0
    reward: float = 0.0


@dataclass(frozen=True, slots=True)
class Situation:
    """What eligibility and choice read about the customer now."""

    customer: Customer
    subscription: Subscription | None
    case: RecoveryCase | None
    tier: str | None
    cancel_reason: str | None
    now: datetime

    @property
    def segment(self) -> str:
        if self.case is not None:
            return self.case.kind
        return "cancel_flow" if self.cancel_reason else "none"

    @property
    def mrr(self) -> int | None:
        return self.subscription.mrr if self.subscription is not None else None

    @property
    def currency(self) -> str | None:
        return self.subscription.currency if self.subscription is not None else None


def ineligible_because(
    offer: Offer,
    situation: Situation,
    recent: Sequence[Redemption],
    incentive_in_flight: bool,
    settings: OfferSettings,
) -> str | None:
    """Why `offer` may not go to the customer now, or None if it may."""
    rules = offer.eligibility or {}
    case, subscription = situation.case, situation.subscription
    if rules.get("case_kinds") and (case is None or case.kind not in rules["case_kinds"]):
        if case is not None or not situation.cancel_reason:
            return "not for this case kind"
        if CaseKind.cancellation_scheduled.value not in rules["case_kinds"]:
            return "not for a cancellation"
    if rules.get("tiers") and situation.tier not in rules["tiers"]:
        return "not for this risk tier"
    plan = subscription.plan if subscription is not None else None
    if rules.get("plans") and plan not in rules["plans"]:
        return "not for this plan"
    mrr = situation.mrr
    if "mrr_min" in rules and (mrr is None or mrr < rules["mrr_min"]):
        return "MRR below the offer's range"
    if "mrr_max" in rules and (mrr is None or mrr > rules["mrr_max"]):
        return "MRR above the offer's range"
    tenure = situation.now - situation.customer.created_at
    if "tenure_days_min" in rules and tenure < timedelta(days=rules["tenure_days_min"]):
        return "the customer is too new for it"
    if rules.get("cancel_reasons") and situation.cancel_reason not in rules["cancel_reasons"]:
        return "not for this cancel reason"
    cooldown = timedelta(days=rules.get("cooldown_days", settings.cooldown_days))
    if any(r.offer_id == offer.id and r.created_at >= situation.now - cooldown for r in recent):
        return "already redeemed by the customer"
    if offer.kind not in FREE_KINDS and incentive_in_flight:
        return "another incentive is in flight"
    return _kind_needs(offer.kind, situation)


def _kind_needs(kind: str, situation: Situation) -> str | None:
    subscription, case = situation.subscription, situation.case
    if subscription is None:
        return "the customer has no subscription"
    status = subscription.status
    match kind:
        case OfferKind.UNCANCEL:
            if not subscription.cancel_at_period_end or subscription.ended_at is not None:
                return "no cancellation is scheduled"
        case OfferKind.RESUME:
            if status != "paused":
                return "the subscription is not paused"
        case OfferKind.UPDATE_PAYMENT | OfferKind.RETRY_PAYMENT:
            failing = status == "past_due" or (case is not None and case.kind == CaseKind.payment_failed.value)
            if not failing:
                return "no payment is failing"
        case _:
            if status not in RUNNING or subscription.ended_at is not None:
                return "the subscription is not running"
            if kind in (OfferKind.PERCENT_OFF, OfferKind.AMOUNT_OFF, OfferKind.FREE_DAYS) and not subscription.mrr:
                return "the subscription is free"
    return None


def rule_score(offer: Offer, situation: Situation) -> tuple[int, str]:
    """The rules' score of an eligible offer, and its parts in words."""
    kind = OfferKind(offer.kind)
    parts: list[str] = []
    segment_scores = KIND_SCORES.get(situation.segment, {})
    if kind in segment_scores:
        score = segment_scores[kind]
        parts.append(f"{kind.value} fixes a {situation.segment} case")
    elif kind in FREE_KINDS:
        score = 10
        parts.append(f"{kind.value} is free")
    else:
        score = INCENTIVE_SCORE
        parts.append("an incentive")
    soft = situation.case is not None and situation.case.details.get("decline_class") == "soft"
    if soft and kind is OfferKind.RETRY_PAYMENT:
        score += 10
        parts.append("a soft decline may pass on retry")
    preferred = REASON_KINDS.get(situation.cancel_reason or "", ())
    if kind in preferred:
        score += REASON_BONUS - preferred.index(kind)
        parts.append(f"cancel reason {situation.cancel_reason} favours {kind.value}")
    if situation.tier in ("critical", "high") and kind not in FREE_KINDS:
        score += HIGH_RISK_BONUS
        parts.append(f"risk tier {situation.tier}")
    if offer.priority:
        score += offer.priority
        parts.append(f"priority {offer.priority}")
    return score, ", ".join(parts)


def by_rules(offers: Sequence[Offer], situation: Situation) -> list[tuple[Offer, str]]:
    scored = [(offer, *rule_score(offer, situation)) for offer in offers]
    scored.sort(key=lambda item: (-item[1], item[0].created_at, str(item[0].id)))
    return [(offer, f"rules: score {score} ({why})") for offer, score, why in scored]


def choose(
    offers: Sequence[Offer],
    situation: Situation,
    settings: OfferSettings,
    evidence: dict[uuid.UUID, Evidence],
    rng: random.Random,
) -> tuple[list[tuple[Offer, str]], bool]:
    """The eligible offers best first with the reason for each, and whether the learning policy
    (not the rules) ordered them."""
    if settings.policy != "thompson" or not offers:
        return by_rules(offers, situation), False
    if rng.random() < settings.control_share:
        ruled = by_rules(offers, situation)
        return [(offer, f"control share: {reason}") for offer, reason in ruled], False
    samples = []
    for offer in offers:
        found = evidence.get(offer.id, Evidence())
        shown = found.shown
        reward = min(found.reward, float(shown))  # a recovery is credited to the offer shown; never above 1 a trial
        samples.append((rng.betavariate(1.0 + reward, 1.0 + shown - reward), offer, shown, reward))
    samples.sort(key=lambda item: -item[0])
    return [
        (
            offer,
            f"thompson sampling in segment {situation.segment}: drew {draw:.3f} (shown {shown}, reward {reward:.2f})",
        )
        for draw, offer, shown, reward in samples
    ], True
