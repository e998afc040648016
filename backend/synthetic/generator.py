"""Synthetic customers of a subscription business, as events-API items, with the truth known.

The risk engine needs data whose answer is known: to test that features, training and scoring
find what was planted, and to give the demo tenant something realistic to show. Each customer is
simulated on its own random streams, seeded by the dataset's seed and the customer's index, so a
seed always gives the same data and a larger dataset extends a smaller one instead of reshuffling it.

What is planted, and what a model can learn from it:
- "usage_decay", voluntary churn: its hazard depends on traits (company size, signup channel,
  industry), plan, engagement, tenure and past downgrades; usage decays over 2 to 6 weeks before
  the cancellation, often with a downgrade on the way.
- "hard_decline", involuntary churn: a hard decline at a renewal that no new card recovers
  within the dunning window. Usage does not warn; the payment failure does.
- "price": price-sensitive customers (small, cheap plan, low engagement) leaving within weeks of
  the price increase that lands on their renewal.
- "random": churn without any warning, noise that no model can catch.
The other side has its noise too: quiet spells and decays that recover, customers that go quiet
for good but keep paying, soft declines that pass on retry, hard declines recovered with a new
card, pauses and resumes, upgrades and downgrades, weekly and yearly seasonality.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

PLAN_PRICES = {"starter": 2900, "pro": 7900, "business": 19900}  # monthly, minor units
PLAN_ORDER = ["starter", "pro", "business"]
# The prices after the increase, from the renewal after the dataset's price-increase date.
RAISED_PRICES = {"starter": 3500, "pro": 8900, "business": 19900}
CURRENCIES = [("USD", 0.8), ("EUR", 0.12), ("GBP", 0.08)]
SOFT_DECLINES = [
    "insufficient_funds",
    "processing_error",
    "try_again_later",
    "card_velocity_exceeded",
    "generic_decline",
    "issuer_not_available",
]
HARD_DECLINES = ["expired_card", "stolen_card", "lost_card", "do_not_honor", "account_closed", "fraudulent"]
USAGE_EVENTS = ("login", "feature_used", "report_exported", "seat_added")

COMPANY_SIZES = [
    ("1-10", 0.38, 1.5),
    ("11-50", 0.3, 1.1),
    ("51-200", 0.18, 0.8),
    ("201-1000", 0.1, 0.6),
    ("1000+", 0.04, 0.5),
]
SEATS_BY_SIZE = {"1-10": (1, 5), "11-50": (3, 15), "51-200": (8, 40), "201-1000": (20, 120), "1000+": (50, 400)}
INDUSTRIES = [
    ("software", 0.8),
    ("ecommerce", 1.0),
    ("agency", 1.25),
    ("education", 1.4),
    ("healthcare", 0.9),
    ("finance", 0.8),
    ("nonprofit", 1.3),
]
CHANNELS = [("organic", 1.0), ("paid_search", 1.5), ("referral", 0.6), ("partner", 0.7), ("outbound", 1.2)]
COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "BR", "IN", "CA", "AU", "NL", "ES"]
NAME_WORDS = ["Blue", "North", "Bright", "Iron", "Green", "Swift", "Silver", "Open", "Prime", "Clear"]
NAME_NOUNS = ["Harbor", "Labs", "Works", "Digital", "Analytics", "Studio", "Systems", "Supply", "Health", "Media"]

MONTHLY_VOLUNTARY_HAZARD = 0.017  # before the multipliers; calibrated for ~5% monthly churn overall
MONTHLY_RANDOM_HAZARD = 0.005
SOFT_DECLINE_RATE = 0.07  # per renewal
HARD_DECLINE_RATE = 0.02  # per renewal
HARD_DECLINE_RECOVERY = 0.35  # the customer updates the card in time
UPGRADE_RATE, DOWNGRADE_RATE, PAUSE_RATE = 0.02, 0.012, 0.008  # per month
WEEKDAY_LEVELS = (1.15, 1.2, 1.2, 1.1, 0.95, 0.3, 0.2)  # Monday first


class ChurnCause(StrEnum):
    usage_decay = "usage_decay"
    hard_decline = "hard_decline"
    price = "price"
    random = "random"


@dataclass(frozen=True, slots=True)
class CustomerTruth:
    customer_id: str
    signed_up_at: datetime
    churned_at: datetime | None  # when the subscription was canceled, None if not by the end
    cause: ChurnCause | None
    traits: dict[str, Any]


@dataclass(frozen=True)
class SyntheticDataset:
    seed: int
    start: datetime
    end: datetime
    price_increase_at: datetime
    items: list[dict[str, Any]]  # events-API items, in time order
    truth: dict[str, CustomerTruth]  # by customer id

    @property
    def churned(self) -> list[CustomerTruth]:
        return [truth for truth in self.truth.values() if truth.churned_at is not None]


@dataclass
class _Customer:
    """One customer's simulation: its random streams, state, and the items emitted so far."""

    index: int
    customer_id: str
    prefix: str
    seed: int
    rng: random.Random
    items: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, at: datetime, kind: str, event: str | None = None, **body: Any) -> None:
        item: dict[str, Any] = {
            "type": kind,
            "messageId": f"{self.prefix}-{self.seed}-{self.index}-{len(self.items)}",
            "customerId": self.customer_id,
            "timestamp": at.isoformat(timespec="seconds"),
        }
        if event is not None:
            item["event"] = event
        item.update(body)
        self.items.append(item)

    def emit_at(self, timestamp: str, usage_event: str) -> None:
        """A usage event at an ISO 8601 UTC `timestamp`: the hot path, without datetimes."""
        self.items.append(
            {
                "type": "track",
                "messageId": f"{self.prefix}-{self.seed}-{self.index}-{len(self.items)}",
                "customerId": self.customer_id,
                "timestamp": timestamp,
                "event": usage_event,
                "properties": {},
            }
        )


def generate(
    seed: int,
    customers: int,
    start: datetime,
    end: datetime,
    *,
    new_customer_share: float = 0.35,
    usage_scale: float = 1.0,
    prefix: str = "syn",
) -> SyntheticDataset:
    """`customers` customers between `start` and `end` (aware datetimes); the same seed gives the
    same dataset. A share of them joins during the period, the rest exist at `start` (their
    history before it is not in the data, as in an export that starts at `start`)."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("start and end must be timezone-aware, start before end")
    if customers < 0 or seed < 0:
        raise ValueError("customers and seed must be non-negative")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    period = _Period(start, end, start + (end - start) * 0.55, _seasonality(start, (end - start).days + 3))
    items: list[dict[str, Any]] = []
    truth: dict[str, CustomerTruth] = {}
    for index in range(customers):
        simulation = _simulate(seed, index, prefix, period, new_customer_share, usage_scale)
        items += simulation.items
        truth[simulation.truth.customer_id] = simulation.truth
    items.sort(key=lambda item: (item["timestamp"], item["messageId"]))
    return SyntheticDataset(seed, start, end, period.price_increase_at, items, truth)


@dataclass(frozen=True)
class _Period:
    start: datetime
    end: datetime
    price_increase_at: datetime
    seasonality: np.ndarray  # usage level by day, from the day of `start`


@dataclass
class _Simulation:
    items: list[dict[str, Any]]
    truth: CustomerTruth


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([name for name, *_ in weighted], weights=[weight for _, weight, *_ in weighted])[0]


def _traits(rng: random.Random, index: int) -> tuple[dict[str, Any], float]:
    """The customer's traits as a CRM would send them (blanks, numbers as text), and the
    voluntary hazard multiplier they imply."""
    size = _pick(rng, [(name, weight) for name, weight, _ in COMPANY_SIZES])
    industry = rng.choice(INDUSTRIES)
    channel = rng.choice(CHANNELS)
    seats = rng.randint(*SEATS_BY_SIZE[size])
    multiplier = dict((name, m) for name, _, m in COMPANY_SIZES)[size] * industry[1] * channel[1]
    if size == "1-10" and channel[0] == "paid_search":
        multiplier *= 1.8  # bargain hunters from ads: an interaction a linear model cannot see
    name = f"{rng.choice(NAME_WORDS)} {rng.choice(NAME_NOUNS)} {index}"
    traits: dict[str, Any] = {
        "name": name,
        "email": f"billing{index}@{name.split()[0].lower()}{name.split()[1].lower()}.example.com",
        "company_size": size if rng.random() > 0.06 else "",
        "industry": industry[0] if rng.random() > 0.08 else None,
        "country": rng.choice(COUNTRIES),
        # Numbers as text, the way many CRMs send them.
        "seats": seats if rng.random() > 0.2 else str(seats),
        "signup_channel": channel[0] if rng.random() > 0.1 else "",
    }
    if rng.random() > 0.3:
        traits["nps"] = max(0, min(10, round(rng.gauss(8.5 - 1.6 * multiplier, 1.8))))
    return {key: value for key, value in traits.items() if value is not None}, multiplier


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1)


def _simulate(
    seed: int,
    index: int,
    prefix: str,
    period: _Period,
    new_customer_share: float,
    usage_scale: float,
) -> _Simulation:
    start, end, price_increase_at = period.start, period.end, period.price_increase_at
    rng = random.Random(f"{seed}/{index}")
    customer = _Customer(index, f"{prefix}_{index:06d}", prefix, seed, rng)
    traits, trait_hazard = _traits(rng, index)
    span = (end - start).total_seconds()
    if rng.random() < new_customer_share:
        signed_up_at = start + timedelta(seconds=rng.uniform(0, span * 0.92))
    else:
        signed_up_at = start - timedelta(days=rng.uniform(1, 720))
    # Renewals on a day every month has.
    signed_up_at = signed_up_at.replace(day=min(signed_up_at.day, 28), microsecond=0)
    engagement = math.exp(rng.gauss(0, 0.55))
    plan = _pick(rng, [("starter", 0.5), ("pro", 0.35), ("business", 0.15)])
    currency = _pick(rng, CURRENCIES)
    prices = dict(PLAN_PRICES)
    subscription = {"subscriptionId": f"sub_{customer.customer_id}"}
    price_sensitive = plan != "business" and trait_hazard >= 1.0 and engagement < 1.1

    customer.emit(signed_up_at, "identify", traits=traits)
    customer.emit(
        signed_up_at,
        "track",
        "subscription.started",
        properties={**subscription, "plan": plan, "mrr": prices[plan], "currency": currency},
    )

    churned_at: datetime | None = None
    cause: ChurnCause | None = None
    downgraded = False
    pauses: list[tuple[datetime, datetime]] = []
    paused_until = signed_up_at

    def change_plan(at: datetime, new_plan: str) -> None:
        nonlocal plan
        plan = new_plan
        customer.emit(
            at,
            "track",
            "subscription.plan_changed",
            properties={**subscription, "plan": plan, "mrr": prices[plan], "currency": currency},
        )

    month = 0
    while churned_at is None:
        period_start = _add_months(signed_up_at, month)
        period_end = _add_months(signed_up_at, month + 1)
        month += 1
        if period_start >= end:
            break
        if period_end <= start or period_start < paused_until:
            continue
        candidates: list[tuple[datetime, ChurnCause]] = []
        if month > 1 and period_start >= start:
            if period_start >= price_increase_at and prices[plan] != RAISED_PRICES[plan]:
                prices = dict(RAISED_PRICES)
                change_plan(period_start - timedelta(minutes=5), plan)
                if rng.random() < (0.3 if price_sensitive else 0.03):
                    candidates.append((period_start + timedelta(days=rng.uniform(2, 40)), ChurnCause.price))
            failed_for_good = _renewal(customer, period_start, prices[plan], currency)
            if failed_for_good is not None:
                candidates.append((failed_for_good, ChurnCause.hard_decline))
        tenure_days = (period_start - signed_up_at).days
        tenure_factor = 1.7 if tenure_days < 90 else 0.75 if tenure_days > 365 else 1.0
        plan_factor = {"starter": 1.3, "pro": 1.0, "business": 0.7}[plan]
        hazard = MONTHLY_VOLUNTARY_HAZARD * trait_hazard * tenure_factor * plan_factor
        hazard *= min(4.0, engagement**-1.3) * (2.5 if downgraded else 1.0)
        if rng.random() < hazard:
            candidates.append((period_start + timedelta(days=rng.uniform(0, 30)), ChurnCause.usage_decay))
        if rng.random() < MONTHLY_RANDOM_HAZARD:
            candidates.append((period_start + timedelta(days=rng.uniform(0, 30)), ChurnCause.random))
        candidates = [(at, why) for at, why in candidates if start <= at < end]
        if candidates:
            churned_at, cause = min(candidates)
            churned_at = churned_at.replace(microsecond=0)
            # A quarter of those who leave step down a plan on the way out.
            downgraded_at = churned_at - timedelta(days=rng.uniform(5, 14))
            steps_down = cause is ChurnCause.usage_decay and rng.random() < 0.25 and plan != "starter"
            if steps_down and downgraded_at > max(start, signed_up_at):
                change_plan(downgraded_at, PLAN_ORDER[PLAN_ORDER.index(plan) - 1])
            customer.emit(
                churned_at,
                "track",
                "subscription.canceled",
                properties={
                    **subscription,
                    "reason": "payment_failed" if cause is ChurnCause.hard_decline else "customer_request",
                },
            )
            break
        moment = period_start + timedelta(days=rng.uniform(1, 27))
        if moment < start or moment >= end:
            continue
        roll = rng.random()
        if roll < UPGRADE_RATE and plan != "business":
            change_plan(moment, PLAN_ORDER[PLAN_ORDER.index(plan) + 1])
        elif roll < UPGRADE_RATE + DOWNGRADE_RATE and plan != "starter":
            change_plan(moment, PLAN_ORDER[PLAN_ORDER.index(plan) - 1])
            downgraded = True
        elif roll < UPGRADE_RATE + DOWNGRADE_RATE + PAUSE_RATE:
            resumed_at = moment + timedelta(days=rng.uniform(20, 60))
            customer.emit(moment, "track", "subscription.paused", properties=subscription)
            if resumed_at < end:
                customer.emit(resumed_at, "track", "subscription.resumed", properties=subscription)
            pauses.append((moment, resumed_at))
            # Billing stops while paused: the next renewals are skipped.
            paused_until = resumed_at

    first_day = max(start, signed_up_at)
    last_moment = churned_at or end
    shape = _usage_shape(rng, first_day, last_moment, pauses, churned_at, cause)
    usage_rng = np.random.default_rng([seed, index])
    first_season = (first_day.date() - start.date()).days
    season = period.seasonality[first_season : first_season + len(shape)]
    _emit_usage(customer, usage_rng, first_day, last_moment, shape * season, engagement * usage_scale)
    # What would happen after the cancellation or the end (a retry, a resume) is not in the data.
    last_stamp = last_moment.isoformat(timespec="seconds")
    items = [item for item in customer.items if item["timestamp"] <= last_stamp]
    if churned_at is None:
        items = [item for item in items if item["timestamp"] < last_stamp]
    truth = CustomerTruth(customer.customer_id, signed_up_at, churned_at, cause, traits)
    return _Simulation(items, truth)


def _renewal(customer: _Customer, at: datetime, amount: int, currency: str) -> datetime | None:
    """The payments of a renewal; the end of the dunning window when a hard decline is not
    recovered (the subscription is canceled then), else None."""
    rng = customer.rng
    money = {"amount": amount, "currency": currency}
    roll = rng.random()
    if roll < HARD_DECLINE_RATE:
        customer.emit(at, "track", "payment.failed", properties={**money, "decline_code": rng.choice(HARD_DECLINES)})
        if rng.random() < HARD_DECLINE_RECOVERY:
            customer.emit(at + timedelta(days=rng.uniform(1, 7)), "track", "payment.succeeded", properties=money)
            return None
        return at + timedelta(days=rng.uniform(8, 15))
    if roll < HARD_DECLINE_RATE + SOFT_DECLINE_RATE:
        retry = at
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            customer.emit(
                retry, "track", "payment.failed", properties={**money, "decline_code": rng.choice(SOFT_DECLINES)}
            )
            retry += timedelta(days=rng.uniform(1, 3))
        customer.emit(retry, "track", "payment.succeeded", properties=money)
        return None
    customer.emit(at, "track", "payment.succeeded", properties=money)
    return None


def _usage_shape(
    rng: random.Random,
    first: datetime,
    last: datetime,
    pauses: list[tuple[datetime, datetime]],
    churned_at: datetime | None,
    cause: ChurnCause | None,
) -> np.ndarray:
    """Per day from `first` to `last`, the customer's own usage factor: decays before churn,
    quiet spells, recoveries and pauses; seasonality and the daily draws come later."""
    days = max(0, (last - first).days + 1)
    shape = np.ones(days)
    if days == 0:
        return shape

    def day_of(moment: datetime) -> int:
        return (moment - first).days

    def decay(end_day: int, length: int, floor: float) -> None:
        """From 1 down to `floor` over `length` days to `end_day`, falling fastest at first:
        interest goes before the habit does."""
        begin = max(0, end_day - length)
        progress = np.linspace(0.0, 1.0, end_day - begin + 1) ** 0.6
        ramp = 1.0 - (1.0 - floor) * progress
        shape[begin : end_day + 1] *= ramp[: len(shape[begin : end_day + 1])]

    if churned_at is not None and cause is ChurnCause.usage_decay:
        decay(day_of(churned_at), rng.randint(14, 42), rng.uniform(0.03, 0.15))
    elif churned_at is not None and cause is ChurnCause.price:
        decay(day_of(churned_at), rng.randint(10, 28), rng.uniform(0.3, 0.6))
    noise = rng.random()
    if noise < 0.07 and days > 40:  # a quiet spell (holidays, a busy quarter), then back
        begin = rng.randint(0, days - 30)
        shape[begin : begin + rng.randint(10, 30)] *= 0.15
    elif noise < 0.13 and days > 70:  # a decay that recovers, as if saved
        bottom = rng.randint(40, days - 20)
        decay(bottom, rng.randint(14, 35), 0.25)
        recovery = rng.randint(7, 21)
        shape[bottom : bottom + recovery] *= np.linspace(0.25, 1.0, len(shape[bottom : bottom + recovery]))
    elif noise < 0.16 and churned_at is None and days > 30:  # quiet for good, still paying
        shape[days - rng.randint(14, min(days, 70)) :] *= 0.25
    for paused_at, resumed_at in pauses:
        shape[max(0, day_of(paused_at)) : max(0, day_of(resumed_at))] = 0.0
    return shape


def _seasonality(first: datetime, days: int) -> np.ndarray:
    dates = [first + timedelta(days=offset) for offset in range(days)]
    weekly = np.array([WEEKDAY_LEVELS[moment.weekday()] for moment in dates])
    day_of_year = np.array([moment.timetuple().tm_yday for moment in dates])
    yearly = 1 + 0.08 * np.cos(2 * np.pi * (day_of_year - 45) / 365.25)  # high in winter, low in August
    holidays = np.array([0.6 if (m.month, m.day) >= (12, 22) or (m.month, m.day) <= (1, 2) else 1.0 for m in dates])
    return weekly * yearly * holidays


def _emit_usage(
    customer: _Customer, rng: np.random.Generator, first: datetime, last: datetime, shape: np.ndarray, level: float
) -> None:
    """Usage events by day from `first` to before `last`, at `level` times the day's `shape`."""
    days = len(shape)
    if days == 0:
        return
    # Engagement drifts slowly on its own, a random walk on its logarithm.
    drift = np.exp(np.clip(np.cumsum(rng.normal(0, 0.03, days)), -0.5, 0.5))
    rate = level * shape * drift
    active = rng.random(days) < 1 - np.exp(-0.5 * rate)
    counts = {
        "login": active.astype(int),
        "feature_used": active * rng.poisson(0.45 * rate),
        "report_exported": active * rng.poisson(0.1 * rate),
        "seat_added": active * (rng.random(days) < 0.003),
    }
    names = np.concatenate([np.full(int(per_day.sum()), name) for name, per_day in counts.items()])
    day_numbers = np.concatenate([np.repeat(np.arange(days), per_day) for per_day in counts.values()])
    seconds = day_numbers * 86400 + rng.integers(7 * 3600, 22 * 3600, len(day_numbers))
    midnight = np.datetime64(first.replace(hour=0, minute=0, second=0, tzinfo=None), "s")
    stamps = midnight + seconds.astype("timedelta64[s]")
    window = (stamps >= np.datetime64(first.replace(tzinfo=None), "s")) & (
        stamps < np.datetime64(last.replace(tzinfo=None), "s")
    )
    for name, stamp in zip(names[window], np.datetime_as_string(stamps[window], unit="s"), strict=True):
        customer.emit_at(f"{stamp}+00:00", str(name))
