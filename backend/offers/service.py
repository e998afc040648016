"""Offers for the API, the widget, campaigns and billing.

For people and integrators (auth subject, scope checked here): list, create, edit and archive
offers; read redemptions and this month's budgets; offer settings.

For the system (no subject: campaigns, the widget API and billing act for the end customer):
`eligible_offers` (what to show now, best first, each with why), `choose_for_message` (the offer a
campaign message carries), `quote` (one offer re-checked for an accept, the customer locked),
`reserve` (the money, atomically), `open_redemption` and `settle`. Nothing commits: the caller's
unit of work does. Default offers are created on first use.
"""

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases import service as cases
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import Conflict, DomainError, InvalidInput, NotFound, checked_name
from churnsaver.backend.core.money import currency_code
from churnsaver.backend.core.pagination import Page
from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.customers.repository import CustomerRepository, SubscriptionRepository
from churnsaver.backend.offers.catalog import DEFAULT_OFFERS, cost_of, texts_from, value_from, wording
from churnsaver.backend.offers.choice import Evidence, Situation, choose, ineligible_because
from churnsaver.backend.offers.models import (
    FREE_KINDS,
    Offer,
    OfferStatus,
    Redemption,
    RedemptionStatus,
)
from churnsaver.backend.offers.repository import (
    TENANT_SCOPE,
    ArmRepository,
    BudgetRepository,
    OfferRepository,
    RedemptionFilter,
    RedemptionRepository,
)
from churnsaver.backend.offers.settings import OfferSettings, load_settings, store_settings
from churnsaver.backend.risk.repository import RiskScoreRepository
from churnsaver.tenants.auth import AuthSubject

SURFACES = ("email", "sms", "in_app", "whop", "widget", "one_click", "api")
SOURCES = ("email", "widget", "one_click")
MAX_NAME = 200
ELIGIBILITY_KEYS = (
    "case_kinds",
    "tiers",
    "plans",
    "mrr_min",
    "mrr_max",
    "tenure_days_min",
    "cancel_reasons",
    "cooldown_days",
)
_rng = random.SystemRandom()


class OfferNotEligible(DomainError):
    code = "NOT_ELIGIBLE"


class OverBudget(DomainError):
    code = "OVER_BUDGET"


class AlreadyRedeemed(Conflict):
    pass


@dataclass(frozen=True, slots=True)
class OfferChoice:
    offer_id: uuid.UUID
    kind: str
    title: str
    description: str
    value: dict[str, Any]
    reason: str
    cost: int = 0
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """One offer re-checked for an accept: what it costs now, against which budgets."""

    offer: Offer
    customer: Customer
    subscription: Subscription | None
    case: RecoveryCase | None
    cost: int
    currency: str | None
    month: str
    segment: str


# The system's API.


async def eligible_offers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    case_id: uuid.UUID | None,
    cancel_reason: str | None,
    holdout: bool,
    locale: str | None,
    surface: str,
    record: bool = True,
) -> list[OfferChoice]:
    """The offers to show the customer now, best first, each with the reason it was chosen. None to
    a customer in a campaign's holdout. With `case_id` (and `record`), each shown offer is an
    `offer_shown` case event and the first counts as shown for the learning policy."""
    if surface not in SURFACES:
        raise InvalidInput(f"surface is one of {', '.join(SURFACES)}")
    if holdout:
        return []
    if record:  # a read-only look (record=False) never writes, not even the default offers
        await ensure_default_offers(session, tenant_id)
    settings = await load_settings(session, tenant_id)
    situation = await _situation(session, tenant_id, customer_id, case_id, cancel_reason)
    now = situation.now
    redemptions = RedemptionRepository(session, tenant_id)
    recent = await redemptions.of_customer_since(customer_id, now - timedelta(days=3650))
    in_flight = await redemptions.incentive_in_flight(customer_id)
    reserved = await _reserved(session, tenant_id, _month(now))
    candidates: list[tuple[Offer, int]] = []
    for offer in await OfferRepository(session, tenant_id).active():
        if ineligible_because(offer, situation, recent, in_flight, settings) is not None:
            continue
        cost = cost_of(offer.kind, offer.value, situation.mrr, situation.currency)
        if _uncovered(offer, cost, situation.currency, settings, reserved) is None:
            candidates.append((offer, cost))
    costs = {offer.id: cost for offer, cost in candidates}
    evidence = await _evidence(session, tenant_id, situation.segment, list(costs), settings)
    ordered, _learning = choose([offer for offer, _ in candidates], situation, settings, evidence, _rng)
    choices = []
    for offer, reason in ordered:
        title, description = wording(offer.kind, offer.value, offer.texts, locale)
        choices.append(
            OfferChoice(
                offer_id=offer.id,
                kind=offer.kind,
                title=title,
                description=description,
                value=dict(offer.value),
                reason=reason,
                cost=costs[offer.id],
                currency=situation.currency,
            )
        )
    if record and case_id is not None and choices:
        await ArmRepository(session, tenant_id).count_shown(choices[0].offer_id, situation.segment)
        for position, choice in enumerate(choices):
            data = {
                "offer_id": str(choice.offer_id),
                "kind": choice.kind,
                "reason": choice.reason,
                "surface": surface,
                "position": position,
            }
            await cases.offer_shown(session, tenant_id, case_id, now, f"offers:{surface}", data)
    return choices


async def choose_for_message(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    case_id: uuid.UUID,
    preferred: uuid.UUID,
    *,
    locale: str | None,
    surface: str,
) -> OfferChoice | None:
    """The offer a campaign message carries: the step's own if the customer may have it now, else
    the best eligible one, else none; recorded as shown on the case, with the reason."""
    choices = await eligible_offers(
        session,
        tenant_id,
        customer_id,
        case_id=case_id,
        cancel_reason=None,
        holdout=False,
        locale=locale,
        surface=surface,
        record=False,
    )
    chosen = next((choice for choice in choices if choice.offer_id == preferred), None)
    if chosen is not None:
        chosen = replace(chosen, reason=f"the campaign step's offer; {chosen.reason}")
    elif choices:
        chosen = replace(choices[0], reason=f"the campaign step's offer is not available now; {choices[0].reason}")
    if chosen is None:
        return None
    segment = (await _situation(session, tenant_id, customer_id, case_id, None)).segment
    await ArmRepository(session, tenant_id).count_shown(chosen.offer_id, segment)
    data = {"offer_id": str(chosen.offer_id), "kind": chosen.kind, "reason": chosen.reason, "surface": surface}
    await cases.offer_shown(session, tenant_id, case_id, utcnow(), f"offers:{surface}", data | {"position": 0})
    return chosen


async def quote(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer_id: uuid.UUID,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    *,
    holdout: bool,
    cancel_reason: str | None = None,
) -> Quote:
    """The offer re-checked for the customer now: NotFound (not the tenant's, or archived),
    OfferNotEligible, AlreadyRedeemed or OverBudget with the reason."""
    await ensure_default_offers(session, tenant_id)
    offer = await OfferRepository(session, tenant_id).get(offer_id)
    if offer is None or offer.status != OfferStatus.active.value:
        raise NotFound("offer")
    if holdout:
        raise OfferNotEligible("offers are not shown to customers in a campaign's holdout")
    settings = await load_settings(session, tenant_id)
    situation = await _situation(session, tenant_id, customer_id, case_id, cancel_reason, lock=True)
    redemptions = RedemptionRepository(session, tenant_id)
    recent = await redemptions.of_customer_since(customer_id, situation.now - timedelta(days=3650))
    why = ineligible_because(offer, situation, recent, await redemptions.incentive_in_flight(customer_id), settings)
    if why == "already redeemed by the customer":
        raise AlreadyRedeemed("the customer already redeemed this offer")
    if why is not None:
        raise OfferNotEligible(f"the offer is not available: {why}")
    month = _month(situation.now)
    cost = cost_of(offer.kind, offer.value, situation.mrr, situation.currency)
    reserved = await _reserved(session, tenant_id, month)
    if (uncovered := _uncovered(offer, cost, situation.currency, settings, reserved)) is not None:
        raise OverBudget(uncovered)
    return Quote(
        offer=offer,
        customer=situation.customer,
        subscription=situation.subscription,
        case=situation.case,
        cost=cost,
        currency=situation.currency,
        month=month,
        segment=situation.segment,
    )


async def reserve(session: AsyncSession, tenant_id: uuid.UUID, quote: Quote) -> None:
    """Reserve the quote's cost in the tenant's and the offer's budget for the month, or raise
    OverBudget (the caller rolls back, so a half reservation never stays)."""
    if quote.cost == 0:
        return
    settings = await load_settings(session, tenant_id)
    budgets = BudgetRepository(session, tenant_id)
    for scope, limit, currency in _budgets_of(quote.offer, settings):
        await budgets.ensure(scope, quote.month, limit, currency)
        if not await budgets.reserve(scope, quote.month, quote.cost):
            what = "the tenant's monthly offer budget" if scope == TENANT_SCOPE else "this offer's monthly budget"
            raise OverBudget(f"{what} cannot cover it")


def open_redemption(
    session: AsyncSession, tenant_id: uuid.UUID, quote: Quote, *, source: str, idempotency_key: str
) -> Redemption:
    """A PENDING redemption of the quote (flushed by the caller, which handles a taken key)."""
    if source not in SOURCES:
        raise InvalidInput(f"source is one of {', '.join(SOURCES)}")
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidInput("an idempotency key is 1 to 200 characters")
    redemption = Redemption(
        tenant_id=tenant_id,
        offer_id=quote.offer.id,
        customer_id=quote.customer.id,
        case_id=quote.case.id if quote.case else None,
        kind=quote.offer.kind,
        source=source,
        idempotency_key=idempotency_key,
        status=RedemptionStatus.PENDING.value,
        cost=quote.cost,
        currency=quote.currency,
        budget_month=quote.month,
        segment=quote.segment,
        provider_answer={},
    )
    session.add(redemption)
    return redemption


async def settle(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    redemption_id: uuid.UUID,
    *,
    applied: bool,
    reason: str | None,
    answer: dict[str, Any],
    provider: str,
    hosted_url: str | None = None,
    actor: str,
) -> Redemption | None:
    """Settle a PENDING redemption as APPLIED or FAILED (the budget spent or released, a case event
    recorded); None when it was settled already (by a retry or the fallback job): never twice."""
    now = utcnow()
    status = RedemptionStatus.APPLIED if applied else RedemptionStatus.FAILED
    redemptions = RedemptionRepository(session, tenant_id)
    claim = (
        redemptions.update_owned()
        .where(Redemption.id == redemption_id, Redemption.status == RedemptionStatus.PENDING.value)
        .values(
            status=status.value,
            reason=reason,
            provider=provider,
            provider_answer=answer,
            hosted_url=hosted_url,
            settled_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not (await session.execute(claim)).rowcount:  # type: ignore[attr-defined]
        return None
    redemption = await redemptions.get_or_raise(redemption_id, what="redemption")
    await session.refresh(redemption)
    offer = await OfferRepository(session, tenant_id).get_or_raise(redemption.offer_id, what="offer")
    if redemption.cost:
        settings = await load_settings(session, tenant_id)
        budgets = BudgetRepository(session, tenant_id)
        for scope, _limit, _currency in _budgets_of(offer, settings):
            await budgets.settle(scope, redemption.budget_month, redemption.cost, redemption.cost if applied else 0)
    if redemption.case_id is not None:
        data = {
            "offer_id": str(offer.id),
            "kind": offer.kind,
            "redemption_id": str(redemption.id),
            "source": redemption.source,
            "provider": provider,
        }
        if applied:
            await cases.offer_accepted(session, tenant_id, redemption.case_id, now, actor, data)
        else:
            await cases.offer_failed(session, tenant_id, redemption.case_id, now, actor, data | {"reason": reason})
    return redemption


async def ensure_default_offers(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """The default offers the tenant does not have yet (each once: a unique key per tenant)."""
    existing = await OfferRepository(session, tenant_id).keys()
    missing = [default for default in DEFAULT_OFFERS if default.key not in existing]
    if not missing:
        return
    settings = await load_settings(session, tenant_id)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "key": default.key,
            "name": default.name,
            "kind": default.kind.value,
            "status": OfferStatus.active.value,
            "value": default.value,
            "eligibility": default.eligibility,
            "texts": {},
            "monthly_budget": default.monthly_budget,
            "currency": settings.currency,
            "priority": default.priority,
            # A microsecond apart: the defaults list in the order they are declared.
            "created_at": now + timedelta(microseconds=position),
            "updated_at": now,
        }
        for position, default in enumerate(missing)
    ]
    await session.execute(insert_for(session)(Offer).values(rows).on_conflict_do_nothing())


async def default_offer_id(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> uuid.UUID | None:
    await ensure_default_offers(session, tenant_id)
    offer = await OfferRepository(session, tenant_id).by_key(key)
    return offer.id if offer is not None and offer.status == OfferStatus.active.value else None


async def active_offer_ids(session: AsyncSession, tenant_id: uuid.UUID, offer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `offer_ids` are the tenant's active offers (another tenant's is simply absent)."""
    await ensure_default_offers(session, tenant_id)
    found = await OfferRepository(session, tenant_id).get_many(offer_ids)
    return {offer_id for offer_id, offer in found.items() if offer.status == OfferStatus.active.value}


async def get_offer_for(session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID) -> Offer | None:
    return await OfferRepository(session, tenant_id).get(offer_id)


def describe(offer: Offer, locale: str | None) -> tuple[str, str]:
    """The offer's (title, description) in the locale."""
    return wording(offer.kind, offer.value, offer.texts, locale)


async def redemption_by_key(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> Redemption | None:
    return await RedemptionRepository(session, tenant_id).by_key(key)


# The API for people and integrators.


async def list_offers(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    statuses: list[str] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Offer]:
    subject.require_read()
    await ensure_default_offers(session, subject.tenant_id)
    return await OfferRepository(session, subject.tenant_id).page(statuses=statuses, first=first, after=after)


async def create_offer(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    name: str,
    kind: str,
    value: dict[str, Any] | None = None,
    eligibility: dict[str, Any] | None = None,
    texts: dict[str, Any] | None = None,
    monthly_budget: int | None = None,
    currency: str | None = None,
    priority: int = 0,
) -> Offer:
    """A new active offer; InvalidInput says what is wrong with it."""
    subject.require_write()
    settings = await load_settings(session, subject.tenant_id)
    offer = Offer(
        tenant_id=subject.tenant_id,
        name=checked_name(name, what="an offer name", maximum=MAX_NAME),
        kind=kind,
        status=OfferStatus.active.value,
        value=value_from(kind, value),
        eligibility=eligibility_from(eligibility),
        texts=texts_from(texts),
        monthly_budget=_budget(monthly_budget),
        currency=_currency(currency or settings.currency),
        priority=_priority(priority),
    )
    session.add(offer)
    await session.flush()
    return offer


async def update_offer(
    session: AsyncSession,
    subject: AuthSubject,
    offer_id: uuid.UUID,
    *,
    name: str | None = None,
    value: dict[str, Any] | None = None,
    eligibility: dict[str, Any] | None = None,
    texts: dict[str, Any] | None = None,
    monthly_budget: int | None = None,
    clear_monthly_budget: bool = False,
    currency: str | None = None,
    priority: int | None = None,
) -> Offer:
    """Change what is given (None: unchanged); redemptions already made keep what they got."""
    subject.require_write()
    offer = await _offer(session, subject, offer_id)
    if offer.status == OfferStatus.archived.value:
        raise Conflict("an archived offer cannot be changed")
    if name is not None:
        offer.name = checked_name(name, what="an offer name", maximum=MAX_NAME)
    if value is not None:
        offer.value = value_from(offer.kind, value)
    if eligibility is not None:
        offer.eligibility = eligibility_from(eligibility)
    if texts is not None:
        offer.texts = texts_from(texts)
    if clear_monthly_budget:
        offer.monthly_budget = None
    elif monthly_budget is not None:
        offer.monthly_budget = _budget(monthly_budget)
    if currency is not None:
        offer.currency = _currency(currency)
    if priority is not None:
        offer.priority = _priority(priority)
    offer.updated_at = utcnow()
    await session.flush()
    return offer


async def archive_offer(session: AsyncSession, subject: AuthSubject, offer_id: uuid.UUID) -> Offer:
    """Archived offers are never shown or redeemed again; their redemptions stay."""
    subject.require_write()
    offer = await _offer(session, subject, offer_id)
    if offer.status != OfferStatus.archived.value:
        offer.status, offer.updated_at = OfferStatus.archived.value, utcnow()
        await session.flush()
    return offer


async def list_redemptions(
    session: AsyncSession,
    subject: AuthSubject,
    where: RedemptionFilter,
    *,
    first: int | None = None,
    after: str | None = None,
) -> Page[Redemption]:
    subject.require_read()
    return await RedemptionRepository(session, subject.tenant_id).page(where, first=first, after=after)


async def offers_for_case(
    session: AsyncSession, subject: AuthSubject, case_id: uuid.UUID, *, holdout: bool
) -> list[OfferChoice]:
    """What the case's customer would be offered now (nothing recorded: a person is looking)."""
    subject.require_read()
    case = await CaseRepository(session, subject.tenant_id).get(case_id)
    if case is None:
        raise NotFound("case")
    return await eligible_offers(
        session,
        subject.tenant_id,
        case.customer_id,
        case_id=case.id,
        cancel_reason=None,
        holdout=holdout,
        locale=None,
        surface="api",
        record=False,
    )


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "tenant" or an offer id
    offer: Offer | None
    month: str
    limit: int | None
    currency: str
    reserved: int
    spent: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.reserved)


async def budgets(session: AsyncSession, subject: AuthSubject, month: str | None = None) -> list[Budget]:
    """This month's budgets (or `month`'s, YYYY-MM): the tenant's and each active offer's."""
    subject.require_read()
    await ensure_default_offers(session, subject.tenant_id)
    month = month or _month(utcnow())
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        raise InvalidInput("month is YYYY-MM")
    settings = await load_settings(session, subject.tenant_id)
    rows = {row.scope: row for row in await BudgetRepository(session, subject.tenant_id).of_month(month)}
    found = []
    tenant_row = rows.get(TENANT_SCOPE)
    found.append(
        Budget(
            TENANT_SCOPE,
            None,
            month,
            settings.monthly_budget,
            settings.currency,
            tenant_row.reserved if tenant_row else 0,
            tenant_row.spent if tenant_row else 0,
        )
    )
    for offer in await OfferRepository(session, subject.tenant_id).active():
        if offer.kind in FREE_KINDS:
            continue
        row = rows.get(str(offer.id))
        found.append(
            Budget(
                str(offer.id),
                offer,
                month,
                offer.monthly_budget,
                offer.currency or settings.currency,
                row.reserved if row else 0,
                row.spent if row else 0,
            )
        )
    return found


async def get_settings(session: AsyncSession, subject: AuthSubject) -> OfferSettings:
    subject.require_read()
    return await load_settings(session, subject.tenant_id)


async def update_settings(
    session: AsyncSession, subject: AuthSubject, *, clear_monthly_budget: bool = False, **changes: Any
) -> OfferSettings:
    """Change the offer settings given (None: unchanged); `clear_monthly_budget` lifts the tenant's limit."""
    subject.require_write()
    settings = (await load_settings(session, subject.tenant_id)).updated(**changes)
    if clear_monthly_budget:
        settings = replace(settings, monthly_budget=None)
    await store_settings(session, subject.tenant_id, settings)
    return settings


def eligibility_from(raw: Any) -> dict[str, Any]:
    """Eligibility rules validated: lists of text, whole numbers for ranges and days."""
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - set(ELIGIBILITY_KEYS):
        raise InvalidInput(f"eligibility takes {', '.join(ELIGIBILITY_KEYS)}")
    rules: dict[str, Any] = {}
    for name in ("case_kinds", "tiers", "plans", "cancel_reasons"):
        values = raw.get(name)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
            raise InvalidInput(f"eligibility {name} is a list of text")
        rules[name] = values
    for name in ("mrr_min", "mrr_max", "tenure_days_min", "cooldown_days"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**12:
            raise InvalidInput(f"eligibility {name} is a whole number, 0 or more")
        rules[name] = value
    if rules.get("mrr_min", 0) > rules.get("mrr_max", rules.get("mrr_min", 0)):
        raise InvalidInput("eligibility mrr_min is above mrr_max")
    return rules


# Helpers.


async def _evidence(
    session: AsyncSession, tenant_id: uuid.UUID, segment: str, offer_ids: list[uuid.UUID], settings: OfferSettings
) -> dict[uuid.UUID, Evidence]:
    """The learning policy's evidence per offer in the segment (none read under the rules)."""
    if settings.policy != "thompson" or not offer_ids:
        return {}
    shown = await ArmRepository(session, tenant_id).shown_in(segment, offer_ids)
    rewards = await RedemptionRepository(session, tenant_id).verified_rewards(segment, offer_ids)
    return {offer_id: Evidence(shown.get(offer_id, 0), rewards.get(offer_id, 0.0)) for offer_id in offer_ids}


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


async def _situation(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    cancel_reason: str | None,
    *,
    lock: bool = False,
) -> Situation:
    customers = CustomerRepository(session, tenant_id)
    reading = customers.select_readable().where(Customer.id == customer_id)
    if lock:
        # PostgreSQL: one accept per customer at a time, so the second sees the first's redemption
        # (SQLite's accepts already take turns on the write lock; FOR UPDATE compiles to nothing there).
        reading = reading.with_for_update()
    customer = (await session.execute(reading)).scalar_one_or_none()
    if customer is None:
        raise NotFound("customer")
    case = None
    if case_id is not None:
        case = await CaseRepository(session, tenant_id).get(case_id)
        if case is None or case.customer_id != customer_id:
            raise NotFound("case")
    subscriptions = SubscriptionRepository(session, tenant_id)
    subscription = None
    if case is not None and case.subscription_id:
        statement = subscriptions.select_readable().where(
            Subscription.customer_id == customer_id, Subscription.external_id == case.subscription_id
        )
        subscription = (await session.execute(statement.limit(1))).scalar_one_or_none()
    if subscription is None:
        subscription = (await subscriptions.current_by_customer([customer_id])).get(customer_id)
    score = (await RiskScoreRepository(session, tenant_id).by_customer([customer_id])).get(customer_id)
    if cancel_reason is not None and (not isinstance(cancel_reason, str) or len(cancel_reason) > 100):
        raise InvalidInput("a cancel reason is at most 100 characters")
    return Situation(
        customer=customer,
        subscription=subscription,
        case=case,
        tier=score.tier if score is not None else None,
        cancel_reason=cancel_reason,
        now=utcnow(),
    )


def _budgets_of(offer: Offer, settings: OfferSettings) -> list[tuple[str, int, str]]:
    """(scope, limit, currency) of each budget the offer's cost counts against."""
    scopes = []
    if settings.monthly_budget is not None:
        scopes.append((TENANT_SCOPE, settings.monthly_budget, settings.currency))
    if offer.monthly_budget is not None:
        scopes.append((str(offer.id), offer.monthly_budget, offer.currency or settings.currency))
    return scopes


async def _reserved(session: AsyncSession, tenant_id: uuid.UUID, month: str) -> dict[str, int]:
    """Per budget scope, what is reserved this month (a scope without a row: nothing)."""
    return {row.scope: row.reserved for row in await BudgetRepository(session, tenant_id).of_month(month)}


def _uncovered(
    offer: Offer, cost: int, currency: str | None, settings: OfferSettings, reserved: dict[str, int]
) -> str | None:
    """Why the budgets cannot cover the offer now, or None if they can."""
    if cost == 0:
        return None
    for scope, limit, budget_currency in _budgets_of(offer, settings):
        what = "the tenant's monthly offer budget" if scope == TENANT_SCOPE else "this offer's monthly budget"
        if currency != budget_currency:
            return f"{what} is in {budget_currency}, the subscription in {currency}"
        if cost > limit - reserved.get(scope, 0):
            return f"{what} cannot cover it"
    return None


async def _offer(session: AsyncSession, subject: AuthSubject, offer_id: uuid.UUID) -> Offer:
    offer = await OfferRepository(session, subject.tenant_id).get(offer_id)
    if offer is None:
        raise NotFound("offer")
    return offer


def _budget(amount: int | None) -> int | None:
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**12):
        raise InvalidInput("a monthly budget is a whole number of minor units, 0 or more")
    return amount


def _currency(value: str) -> str:
    try:
        return currency_code(value)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def _priority(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -100 <= value <= 100:
        raise InvalidInput("priority is a whole number from -100 to 100")
    return value
