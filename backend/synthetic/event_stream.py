"""An event-stream simulator whose churn hazard is a known function of hidden behaviour.

`generate` (generator.py) plants causes a model should find; this one plants a hazard: each
customer's daily probability of canceling is written down below, from hidden states that the
events only show indirectly, so a model can be checked against the truth (the hazard at a
cut-off ranks the customers as well as anything can, `EventStreamDataset.hazard_at`).

Hidden, per customer and day:
- engagement: a habit level, times (1 - decline); a decline episode (one start in 200 days)
  takes 2-6 weeks to reach its depth and recovers afterwards in half of them;
- value: the share of use that is the product's core action (`core_action`) rather than
  `login` alone; a drift episode (one start in 250 days) slides it towards 0.1 over 3 weeks;
- friction: a spell (one start in 250 days) of 10 days with support tickets most days.
The daily hazard of a voluntary cancellation is

    BASE_HAZARD * exp(3.0 * decline + 2.0 * value_lost + 0.5 * min(tickets in 14 days, 3)
                      + 0.8 * (tenure < 60 days) + 1.0 * (business plan and engagement < 0.4))

where value_lost is the relative fall of the value share from the customer's own level (0-1).
Renewals are monthly: a soft decline (7%) passes on retry within days; a hard decline (2.5%)
is fixed with a new card in half the cases, else the subscription ends 14 days later
(involuntary churn, announced by the failure). Events are events-API items, loadable with
`load_dataset`.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from churnsaver.backend.synthetic.generator import ChurnCause, CustomerTruth, SyntheticDataset

PLANS = (("starter", 2900, 0.5), ("pro", 7900, 0.35), ("business", 19900, 0.15))
EVENT_RATES = {"login": 0.55, "core_action": 0.9, "report_exported": 0.08}  # per day at engagement 1
BASE_HAZARD = 0.00025  # per day: about 0.75% a month for a customer with no risk at all
DECLINE_START, DRIFT_START, FRICTION_START = 1 / 200, 1 / 250, 1 / 250  # per day
FRICTION_DAYS, FRICTION_TICKETS = 10, 0.6  # tickets per day in a spell
SOFT_DECLINE_RATE, HARD_DECLINE_RATE, HARD_RECOVERY = 0.07, 0.025, 0.5
DUNNING_DAYS = 14
HISTORY_DAYS = 400  # the longest tenure a customer already has at the start
NONE, FALLING, HELD, RECOVERING = range(4)


@dataclass(frozen=True)
class EventStreamDataset:
    dataset: SyntheticDataset  # items and per-customer truth, as `generate` gives them
    days: list[datetime]  # the simulated days' midnights
    hazards: np.ndarray  # (customers, days): the true daily hazard of a voluntary cancellation
    customer_ids: list[str]

    def hazard_at(self, moment: datetime) -> dict[str, float]:
        """Each customer's true hazard on the day before `moment` (a midnight): the oracle ranking."""
        index = (moment.astimezone(UTC) - self.days[0]).days - 1
        return dict(zip(self.customer_ids, self.hazards[:, index].tolist(), strict=True))


def simulate(
    seed: int, customers: int, start: datetime, end: datetime, *, prefix: str = "evs", usage_scale: float = 1.0
) -> EventStreamDataset:
    """`customers` customers from `start` to `end` (aware midnights); the same seed, the same data.
    A third join during the period, the rest exist at `start` with their signup before it."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("start and end must be timezone-aware, start before end")
    rng = np.random.default_rng(seed)
    start = start.astimezone(UTC)
    days = (end.astimezone(UTC) - start).days
    n = customers
    joins = np.where(rng.random(n) < 1 / 3, rng.integers(0, max(1, days - 30), n), 0)
    signup_offset = np.where(joins > 0, joins, -rng.integers(1, HISTORY_DAYS, n))  # days from start
    plan = rng.choice(len(PLANS), n, p=[weight for _, _, weight in PLANS])
    habit = rng.lognormal(-0.1, 0.5, n)
    value_level = rng.beta(5, 3, n)

    decline = np.zeros(n)
    decline_target, decline_speed = np.zeros(n), np.zeros(n)
    phase = np.zeros(n, dtype=int)  # of the decline: NONE, FALLING, HELD (for good), RECOVERING
    value_lost = np.zeros(n)
    drifting = np.zeros(n, dtype=bool)
    friction_left = np.zeros(n, dtype=int)
    tickets = np.zeros((n, days), dtype=int)
    alive = np.ones(n, dtype=bool)
    churn_day = np.full(n, -1)
    cause: list[ChurnCause | None] = [None] * n
    dunning_until = np.full(n, -1)
    hazards = np.zeros((n, days))
    counts = {name: np.zeros((n, days), dtype=int) for name in EVENT_RATES}
    failures: dict[int, list[tuple[int, str]]] = defaultdict(list)  # per customer: (day, decline code)
    payments: dict[int, list[int]] = defaultdict(list)  # per customer: days of a successful payment

    for day in range(days):
        exists = alive & (signup_offset <= day)
        # Decline episodes: start, deepen at their speed to their depth, then hold or recover.
        starting = exists & (phase == NONE) & (rng.random(n) < DECLINE_START)
        decline_target[starting] = rng.uniform(0.6, 0.95, starting.sum())
        decline_speed[starting] = decline_target[starting] / rng.uniform(14, 42, starting.sum())
        phase[starting] = FALLING
        falling = phase == FALLING
        decline[falling] = np.minimum(decline_target[falling], decline[falling] + decline_speed[falling])
        reached = falling & (decline >= decline_target)
        phase[reached] = np.where(rng.random(reached.sum()) < 0.5, RECOVERING, HELD)
        recovering = phase == RECOVERING
        decline[recovering] = np.maximum(0.0, decline[recovering] - 1 / 14)
        phase[recovering & (decline == 0)] = NONE
        # Value drift and friction spells.
        drift_start = exists & ~drifting & (value_lost == 0) & (rng.random(n) < DRIFT_START)
        drifting |= drift_start
        value_lost[drifting] = np.minimum(1.0, value_lost[drifting] + 1 / 21)
        friction_start = exists & (friction_left == 0) & (rng.random(n) < FRICTION_START)
        friction_left[friction_start] = FRICTION_DAYS
        in_friction = friction_left > 0
        tickets[:, day] = exists * rng.poisson(np.where(in_friction, FRICTION_TICKETS, 0.01))
        friction_left[in_friction] -= 1

        engagement = habit * (1 - decline) * usage_scale
        value = np.clip(value_level * (1 - 0.85 * value_lost), 0.02, 1.0)
        for name, rate in EVENT_RATES.items():
            level = engagement * rate * (value if name == "core_action" else 1.0)
            counts[name][:, day] = exists * rng.poisson(level * _weekday(start + timedelta(days=day)))

        recent_tickets = tickets[:, max(0, day - 13) : day + 1].sum(axis=1)
        tenure = day - signup_offset
        margin = (
            3.0 * decline
            + 2.0 * value_lost
            + 0.5 * np.minimum(recent_tickets, 3)
            + 0.8 * (tenure < 60)
            + 1.0 * ((plan == 2) & (habit * (1 - decline) < 0.4))
        )
        hazards[:, day] = np.where(exists, BASE_HAZARD * np.exp(margin), 0.0)

        # Renewals on the signup's day of the month (every 30 days here).
        renewing = exists & (tenure > 0) & (tenure % 30 == 0)
        for index in np.flatnonzero(renewing).tolist():
            roll = rng.random()
            if roll < HARD_DECLINE_RATE:
                failures[index].append((day, "expired_card"))
                if rng.random() < HARD_RECOVERY:
                    payments[index].append(min(days - 1, day + int(rng.integers(1, 10))))
                else:
                    dunning_until[index] = day + DUNNING_DAYS
            elif roll < HARD_DECLINE_RATE + SOFT_DECLINE_RATE:
                failures[index].append((day, "insufficient_funds"))
                payments[index].append(min(days - 1, day + int(rng.integers(1, 4))))
            else:
                payments[index].append(day)

        leaving = exists & (rng.random(n) < hazards[:, day])
        dunned = exists & (dunning_until == day)
        for index in np.flatnonzero(leaving | dunned).tolist():
            churn_day[index] = day
            cause[index] = ChurnCause.hard_decline if dunned[index] else _voluntary_cause(decline[index])
        alive &= ~(leaving | dunned)

    items: list[dict[str, Any]] = []
    truth: dict[str, CustomerTruth] = {}
    ids = [f"{prefix}_{index:06d}" for index in range(n)]
    midnights = [start + timedelta(days=day) for day in range(days)]
    for index, customer_id in enumerate(ids):
        signed_up_at = start + timedelta(days=int(signup_offset[index]), hours=9)
        name, mrr, _ = PLANS[int(plan[index])]
        emit = _Emitter(items, customer_id, prefix, seed, index)
        subscription = {"subscriptionId": f"sub_{customer_id}"}
        emit(signed_up_at, "subscription.started", {**subscription, "plan": name, "mrr": mrr, "currency": "USD"})
        last = int(churn_day[index]) if churn_day[index] >= 0 else days
        for event, grid in (*counts.items(), ("support_ticket", tickets)):
            for day in np.flatnonzero(grid[index, :last]).tolist():
                for number in range(int(grid[index, day])):
                    emit(midnights[day] + timedelta(hours=10, minutes=7 * number), event, {})
        money = {"amount": mrr, "currency": "USD"}
        for day, code in failures.get(index, []):
            if day < last:
                emit(midnights[day] + timedelta(hours=6), "payment.failed", {**money, "decline_code": code})
        for day in payments.get(index, []):
            if day < last:
                emit(midnights[day] + timedelta(hours=7), "payment.succeeded", money)
        churned_at = None
        if churn_day[index] >= 0:
            churned_at = midnights[churn_day[index]] + timedelta(hours=20)
            reason = "payment_failed" if cause[index] is ChurnCause.hard_decline else "customer_request"
            emit(churned_at, "subscription.canceled", {**subscription, "reason": reason})
        truth[customer_id] = CustomerTruth(customer_id, signed_up_at, churned_at, cause[index], {})
    items.sort(key=lambda item: (item["timestamp"], item["messageId"]))
    dataset = SyntheticDataset(seed, start, end.astimezone(UTC), end.astimezone(UTC), items, truth)
    return EventStreamDataset(dataset, midnights, hazards, ids)


def _voluntary_cause(decline: float) -> ChurnCause:
    """A voluntary cancellation's cause as `generate` names them: usage decay when usage fell."""
    return ChurnCause.usage_decay if decline > 0.3 else ChurnCause.random


def _weekday(moment: datetime) -> float:
    return (1.1, 1.15, 1.15, 1.1, 1.0, 0.35, 0.25)[moment.weekday()]


class _Emitter:
    """Appends one customer's events-API items, each with a message id of its own."""

    def __init__(self, items: list[dict[str, Any]], customer_id: str, prefix: str, seed: int, index: int) -> None:
        self.items, self.customer_id = items, customer_id
        self.key = f"{prefix}-{seed}-{index}"
        self.count = 0

    def __call__(self, at: datetime, event: str, properties: dict[str, Any]) -> None:
        self.items.append(
            {
                "type": "track",
                "messageId": f"{self.key}-{self.count}",
                "customerId": self.customer_id,
                "timestamp": at.isoformat(timespec="seconds"),
                "event": event,
                "properties": properties,
            }
        )
        self.count += 1


def monthly_churn(dataset: EventStreamDataset) -> float:
    """Cancellations per customer-month of exposure in the simulated period."""
    exposure = churned = 0.0
    for truth in dataset.dataset.truth.values():
        first = max(truth.signed_up_at, dataset.dataset.start)
        last = truth.churned_at or dataset.dataset.end
        exposure += max(0.0, (last - first).total_seconds()) / 86400 / 30.44
        churned += truth.churned_at is not None
    return churned / exposure if exposure else math.nan
