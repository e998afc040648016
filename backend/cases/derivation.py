"""Which cases a customer has, and where each stands: a pure function of the customer's billing
truth, risk tier changes, daily usage, the manual overrides people made, and `now`.

`derive_cases` walks everything that happened to the customer in event-time order (timeline rows
by (occurred_at, dedupe key), tier changes by (as of, id), one usage check per complete UTC day,
manual overrides by when they were made) and, between them, the deadlines that fall due (an
attribution window closing, a recovery due for verification). Since it reads a set of events and
`now`, any arrival order, duplicates or batching of the same events give the same cases.

Rules (settings give the windows, SLAs and thresholds):
- PAYMENT_FAILED opens on a failed payment, unless at its own event time the same invoice had
  already been paid or its subscription had already ended. While one is open, later failures join
  it. RECOVERED by a later successful payment (amount > 0) of that subscription (of the customer,
  when the failure names none); LOST when the subscription ends or the window closes.
- CANCELLATION_SCHEDULED opens when cancel at period end is set. RECOVERED when it is withdrawn
  or the subscription renews after access ends; LOST when it ends. Its window runs at least
  until access ends.
- CANCELED opens when a subscription ends; RECOVERED when the customer runs a subscription again.
- DOWNGRADED opens on a plan change that lowers MRR; RECOVERED when that subscription's MRR is
  back to its old level; LOST when it ends.
- USAGE_DROP: on each complete day d while the customer pays, the last 7 days' active days or
  events fall below `usage_drop_ratio` of the previous 28 days' rate, for a customer with at
  least `usage_drop_min_active_days` active days in those 28; opened at the start of d + 1.
  RECOVERED on a later day whose last 7 days are back above that bar (against the opening's 28
  days); LOST when the customer churns.
- HIGH_RISK opens when the tier rises into `case_tiers`; RECOVERED when it falls out of them;
  LOST when the customer churns.
- Every kind: LOST when its window closes while open. A recovery is VERIFIED `verify_days` after
  it when the customer has not churned and had no refund, dispute or cancellation meanwhile; one
  of those turns it LOST.
- A manual override (dismissed, marked lost) holds the case where the person put it until it is
  reopened; reopening gives it a window from then.
Every transition carries a deterministic key ("opened", "joined:<trigger>", "status:<status>",
"verified"; a repeat gets ":<n>") and its cause ("event:<source>:<dedupe key>",
"event:risk:<tier event id>", "job:cases.sweep" for what time alone decides).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from churnsaver.backend.cases.models import CaseEventType, CaseKind, CaseStatus
from churnsaver.backend.cases.settings import CaseSettings
from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.subscription_state import ENDED_STATUSES, Fold
from churnsaver.backend.customers.timeline import STATE_KEY

SWEEP = "job:cases.sweep"
MANUAL_KEY_PREFIX = "manual:"
MAX_KEY = 255  # cases.trigger_key, case_events.key
NOT_PAYING = frozenset({"paused"})
USAGE_DAYS, BASELINE_DAYS = 7, 28
# What turns a recovery under verification LOST (besides a subscription ending).
VERIFICATION_BREAKERS = {
    EventType.refund.value: "a refund during verification",
    EventType.dispute.value: "a dispute during verification",
    EventType.cancel_scheduled.value: "a cancellation was scheduled during verification",
}

SubscriptionKey = tuple[str, str]  # (provider, external id)


def fitted_key(key: str) -> str:
    """`key` as stored: a digest when too long for its column."""
    if len(key) <= MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A billing row of the customer's timeline, as stored (properties keep STATE_KEY)."""

    type: str
    occurred_at: datetime
    source: str
    dedupe_key: str
    properties: dict[str, Any]

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.occurred_at, self.dedupe_key)

    @property
    def state(self) -> dict[str, Any]:
        state = self.properties.get(STATE_KEY)
        return state if isinstance(state, dict) else {}

    @property
    def derived(self) -> bool:
        return "derived_from" in self.state

    @property
    def subscription(self) -> SubscriptionKey | None:
        said = self.state.get("subscription")
        return (said["provider"], said["id"]) if isinstance(said, dict) else None

    @property
    def cause(self) -> str:
        return f"event:{self.source}:{self.dedupe_key}"


@dataclass(frozen=True, slots=True)
class TierChange:
    """A risk tier change (a `risk.tier_changed` domain event) at its score's as-of time."""

    id: str
    occurred_at: datetime
    from_tier: str | None
    to_tier: str


@dataclass(frozen=True, slots=True)
class ManualAction:
    """A person's override of one case: "dismissed", "lost" or "reopened", at `at`."""

    kind: str
    trigger_key: str
    action: str
    at: datetime
    reason: str | None = None

    @property
    def key(self) -> str:
        return f"{MANUAL_KEY_PREFIX}{self.action}:{self.at.isoformat()}"


@dataclass(frozen=True, slots=True)
class CustomerInputs:
    timeline: list[TimelineEntry] = field(default_factory=list)
    tier_changes: list[TierChange] = field(default_factory=list)
    usage: dict[date, int] = field(default_factory=dict)  # usage events per UTC day
    manual: list[ManualAction] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Transition:
    key: str
    type: str  # a CaseEventType
    occurred_at: datetime
    actor: str
    data: dict[str, Any]


@dataclass(slots=True)
class DerivedCase:
    kind: str
    trigger_key: str
    trigger_type: str
    trigger_occurred_at: datetime
    subscription_id: str | None
    opened_at: datetime
    window_ends_at: datetime
    first_touch_due_at: datetime
    revenue_at_risk: int
    currency: str | None
    details: dict[str, Any]
    status: str = CaseStatus.open.value
    resolved_at: datetime | None = None
    verified_at: datetime | None = None
    resolution_reason: str | None = None
    manual_status: str | None = None
    transitions: list[Transition] = field(default_factory=list)
    # Not stored: what the walk needs to resolve the case.
    subscriptions: set[SubscriptionKey] = field(default_factory=set)
    verify_due: datetime | None = None
    recovery_due: datetime | None = None  # USAGE_DROP: the start of the day after activity recovers

    @property
    def is_open(self) -> bool:
        return self.status == CaseStatus.open.value


def derive_cases(inputs: CustomerInputs, settings: CaseSettings, now: datetime) -> list[DerivedCase]:
    """The customer's cases as of `now`, in the order they opened."""
    walk = _Walk(settings, _UsageCounts(inputs.usage), now)
    happenings: list[tuple[tuple[datetime, int, str, str], Any]] = []
    happenings += [((entry.occurred_at, 0, entry.dedupe_key, entry.source), entry) for entry in inputs.timeline]
    happenings += [((change.occurred_at, 1, change.id, ""), change) for change in inputs.tier_changes]
    drops = walk.usage.drop_days(_usage_days(inputs, now), settings)
    happenings += [((_day_start(day + timedelta(days=1)), 2, day.isoformat(), ""), day) for day in drops]
    happenings += [((action.at, 3, action.key, ""), action) for action in inputs.manual]
    for (at, *_), happening in sorted(happenings, key=lambda item: item[0]):
        # What falls due after `now` has not happened yet, whatever events are dated later (clock skew).
        walk.deadlines_before(min(at, now), inclusive=at > now)
        if isinstance(happening, TimelineEntry):
            walk.on_entry(happening)
        elif isinstance(happening, TierChange):
            walk.on_tier_change(happening)
        elif isinstance(happening, ManualAction):
            walk.on_manual(happening)
        else:
            walk.on_usage_day(happening)
    walk.deadlines_before(now, inclusive=True)
    return walk.cases


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _usage_days(inputs: CustomerInputs, now: datetime) -> list[date]:
    """The complete days on which a drop could open or a drop case recover: from a week after the
    first active day to the day the 28-day baseline is empty again (or yesterday)."""
    active = [day for day, count in inputs.usage.items() if count > 0]
    if not active:
        return []
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    first = min(active) + timedelta(days=USAGE_DAYS)
    last = min(yesterday, max(active) + timedelta(days=USAGE_DAYS + BASELINE_DAYS - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class _UsageCounts:
    """Active days and events over day ranges, by prefix sums."""

    def __init__(self, usage: dict[date, int]) -> None:
        active = {day: count for day, count in usage.items() if count > 0}
        self.start = min(active) - timedelta(days=USAGE_DAYS + BASELINE_DAYS) if active else date(2000, 1, 1)
        span = (max(active) - self.start).days + 2 if active else 1
        days, events = [0] * (span + 1), [0] * (span + 1)
        for offset in range(span):
            count = active.get(self.start + timedelta(days=offset), 0)
            days[offset + 1] = days[offset] + (count > 0)
            events[offset + 1] = events[offset] + count
        self.days, self.events = days, events

        self.start_ordinal = self.start.toordinal()

    def last_week(self, day: date) -> tuple[int, int]:
        return self.between(day - timedelta(days=USAGE_DAYS - 1), day)

    def baseline(self, day: date) -> tuple[int, int]:
        """The 28 days before the last week of `day`."""
        return self.between(day - timedelta(days=USAGE_DAYS + BASELINE_DAYS - 1), day - timedelta(days=USAGE_DAYS))

    def drop_days(self, days: list[date], settings: CaseSettings) -> list[date]:
        """The days among `days` on which a drop holds (whether a case opens also depends on the
        customer paying then, and on no drop case being open)."""
        ratio, least = settings.usage_drop_ratio, settings.usage_drop_min_active_days
        found = []
        for day in days:
            base = self.baseline(day)
            if base[0] >= least and _below(self.last_week(day), base, ratio):
                found.append(day)
        return found

    def recovery_day(self, after: date, until: date, base: tuple[int, int], ratio: float) -> date | None:
        """The first day in (after, until] whose last week is back above the drop's bar."""
        day = after + timedelta(days=1)
        while day <= until:
            if not _below(self.last_week(day), base, ratio):
                return day
            day += timedelta(days=1)
        return None

    def between(self, first: date, last: date) -> tuple[int, int]:
        """(active days, events) in [first, last]."""
        end = len(self.days) - 1
        high = max(0, min(last.toordinal() - self.start_ordinal + 1, end))
        low = max(0, min(first.toordinal() - self.start_ordinal, end))
        return self.days[high] - self.days[low], self.events[high] - self.events[low]


class _Walk:
    def __init__(self, settings: CaseSettings, usage: _UsageCounts, now: datetime) -> None:
        self.settings = settings
        self.usage = usage
        self.last_complete_day = now.astimezone(UTC).date() - timedelta(days=1)
        self.cases: list[DerivedCase] = []
        self.folds: dict[SubscriptionKey, Fold] = {}
        self.paid_invoices: set[str] = set()

    # What the customer's subscriptions say now.

    def running(self) -> list[Fold]:
        return [fold for fold in self.folds.values() if fold.status is not None and fold.status not in ENDED_STATUSES]

    def paying(self) -> bool:
        return any(fold.status not in NOT_PAYING and (fold.mrr or 0) > 0 for fold in self.running())

    def churned(self) -> bool:
        return bool(self.folds) and all(fold.status in ENDED_STATUSES for fold in self.folds.values())

    def mrr(self) -> tuple[int, str | None]:
        running = [fold for fold in self.running() if fold.mrr]
        currency = running[0].currency if running else None
        return sum(fold.mrr or 0 for fold in running if fold.currency == currency), currency

    # Cases.

    def open_case(self, kind: str) -> DerivedCase | None:
        return next((case for case in reversed(self.cases) if case.kind == kind and case.is_open), None)

    def open_cases(self) -> list[DerivedCase]:
        return [case for case in self.cases if case.is_open]

    def in_verification(self) -> list[DerivedCase]:
        return [case for case in self.cases if case.verify_due is not None]

    def open(
        self,
        kind: CaseKind,
        trigger_key: str,
        trigger_type: str,
        at: datetime,
        cause: str,
        *,
        revenue: tuple[int, str | None],
        details: dict[str, Any],
        subscription: SubscriptionKey | None = None,
        window_at_least: datetime | None = None,
    ) -> DerivedCase:
        window_ends_at = at + self.settings.window(kind)
        if window_at_least is not None:
            window_ends_at = max(window_ends_at, window_at_least)
        case = DerivedCase(
            kind=kind.value,
            trigger_key=fitted_key(trigger_key),
            trigger_type=trigger_type,
            trigger_occurred_at=at,
            subscription_id=subscription[1] if subscription else None,
            opened_at=at,
            window_ends_at=window_ends_at,
            first_touch_due_at=at + self.settings.sla(kind),
            revenue_at_risk=max(0, revenue[0]),
            currency=revenue[1],
            details=details,
            subscriptions={subscription} if subscription else set(),
        )
        case.transitions.append(Transition("opened", CaseEventType.opened.value, at, cause, {"trigger": trigger_type}))
        self.cases.append(case)
        return case

    def join(self, case: DerivedCase, trigger_key: str, at: datetime, cause: str, data: dict[str, Any]) -> None:
        key = fitted_key(f"joined:{trigger_key}")
        case.transitions.append(Transition(key, CaseEventType.joined.value, at, cause, data))

    def resolve(self, case: DerivedCase, status: CaseStatus, at: datetime, cause: str, reason: str) -> None:
        before = case.status
        case.status, case.resolved_at, case.resolution_reason = status.value, at, reason
        case.verify_due = at + self.settings.verify_after if status is CaseStatus.recovered else None
        case.recovery_due = None
        data = {"from": before, "to": status.value, "reason": reason}
        case.transitions.append(
            Transition(_repeat_key(case, f"status:{status.value}"), "status_changed", at, cause, data)
        )

    def deadlines_before(self, moment: datetime, *, inclusive: bool) -> None:
        """Close the windows and verify the recoveries that fell due before `moment`, in time order."""

        def due(at: datetime | None) -> bool:
            return at is not None and (at <= moment if inclusive else at < moment)

        while self.cases:
            pending = [(case.window_ends_at, 0, i) for i, case in enumerate(self.cases) if case.is_open]
            pending += [(case.verify_due, 1, i) for i, case in enumerate(self.cases) if case.verify_due is not None]
            pending += [(case.recovery_due, 2, i) for i, case in enumerate(self.cases) if case.recovery_due is not None]
            pending = [item for item in pending if due(item[0])]
            if not pending:
                return
            at, what, index = min(pending)
            case = self.cases[index]
            if what == 0:
                self.resolve(case, CaseStatus.lost, at, SWEEP, "the attribution window closed")
            elif what == 2:
                self.resolve(case, CaseStatus.recovered, at, SWEEP, "activity recovered")
            elif self.churned():
                self.resolve(case, CaseStatus.lost, at, SWEEP, "the customer churned before verification")
            else:
                case.verify_due, case.verified_at = None, at
                case.transitions.append(Transition("verified", CaseEventType.verified.value, at, SWEEP, {}))

    # Happenings.

    def on_entry(self, entry: TimelineEntry) -> None:
        subscription = entry.subscription
        before = self.folds.get(subscription) if subscription else None
        after = before
        if subscription and not entry.derived:
            after = self.folds[subscription] = (before or Fold()).then(entry.state["subscription"])
        ended = subscription is not None and _ended(after) and not _ended(before)
        runs_again = subscription is not None and _runs(after) and not _runs(before)
        self._break_verifications(entry, ended)
        if entry.type == EventType.payment_failed and not entry.derived:
            self._payment_failed(entry, before)
        if entry.type == EventType.payment_succeeded:
            self._payment_succeeded(entry)
        if entry.type == EventType.cancel_scheduled:
            self._cancel_scheduled(entry)
        if entry.type == EventType.cancel_unscheduled:
            for case in self._open_of(CaseKind.cancellation_scheduled, subscription):
                self.resolve(
                    case, CaseStatus.recovered, entry.occurred_at, entry.cause, "the cancellation was withdrawn"
                )
        if entry.type == EventType.plan_changed:
            self._plan_changed(entry)
        if subscription is not None and after is not None and after.mrr is not None:
            for case in self._open_of(CaseKind.downgraded, subscription):
                if after.mrr >= case.details.get("mrr_before", after.mrr + 1):
                    self.resolve(case, CaseStatus.recovered, entry.occurred_at, entry.cause, "the MRR returned")
        if runs_again and (canceled := self.open_case(CaseKind.canceled.value)) is not None:
            self.resolve(
                canceled, CaseStatus.recovered, entry.occurred_at, entry.cause, "the customer subscribed again"
            )
        if ended and subscription is not None:
            self._subscription_ended(entry, subscription, before)

    def _open_of(self, kind: CaseKind, subscription: SubscriptionKey | None) -> list[DerivedCase]:
        """Open cases of `kind` about `subscription` (or about no subscription in particular)."""
        case = self.open_case(kind.value)
        if case is None:
            return []
        return [case] if not case.subscriptions or subscription in case.subscriptions else []

    def _break_verifications(self, entry: TimelineEntry, ended: bool) -> None:
        reason = "a subscription ended during verification" if ended else VERIFICATION_BREAKERS.get(entry.type)
        if reason is None:
            return
        for case in self.in_verification():
            if case.verify_due is not None and entry.occurred_at <= case.verify_due:
                self.resolve(case, CaseStatus.lost, entry.occurred_at, entry.cause, reason)

    def _payment_failed(self, entry: TimelineEntry, before: Fold | None) -> None:
        properties = entry.properties
        invoice = properties.get("invoice_id")
        if (invoice is not None and invoice in self.paid_invoices) or _ended(before):
            return  # the trigger is older than the state it contradicts
        attempt = {
            name: properties[name]
            for name in ("decline_class", "amount", "currency", "attempt_count", "next_payment_attempt")
            if properties.get(name) is not None
        }
        case = self.open_case(CaseKind.payment_failed.value)
        if case is not None:
            self.join(case, f"{entry.source}:{entry.dedupe_key}", entry.occurred_at, entry.cause, attempt)
            if entry.subscription:
                case.subscriptions.add(entry.subscription)
            case.details = {**case.details, **attempt, "attempts": case.details.get("attempts", 1) + 1}
            if isinstance(attempt.get("amount"), int):
                case.revenue_at_risk, case.currency = max(0, attempt["amount"]), attempt.get("currency", case.currency)
            return
        amount = properties.get("amount")
        fold = self.folds.get(entry.subscription) if entry.subscription else None
        if isinstance(amount, int) and not isinstance(amount, bool):
            revenue: tuple[int, str | None] = (amount, properties.get("currency"))
        elif fold is not None and fold.mrr:
            revenue = (fold.mrr, fold.currency)
        else:
            revenue = self.mrr()
        details = {**attempt, "attempts": 1}
        if invoice is not None:
            details["invoice_id"] = invoice
        self.open(
            CaseKind.payment_failed,
            f"{entry.source}:{entry.dedupe_key}",
            entry.type,
            entry.occurred_at,
            entry.cause,
            revenue=revenue,
            details=details,
            subscription=entry.subscription,
        )

    def _payment_succeeded(self, entry: TimelineEntry) -> None:
        amount = entry.properties.get("amount")
        invoice = entry.properties.get("invoice_id")
        if invoice is not None:
            self.paid_invoices.add(invoice)
        if isinstance(amount, int | float) and amount <= 0:
            return
        case = self.open_case(CaseKind.payment_failed.value)
        if case is not None and (
            not case.subscriptions
            or entry.subscription in case.subscriptions
            or (invoice is not None and invoice == case.details.get("invoice_id"))
        ):
            self.resolve(case, CaseStatus.recovered, entry.occurred_at, entry.cause, "a later payment succeeded")
        for case in self._open_of(CaseKind.cancellation_scheduled, entry.subscription):
            access_ends = case.details.get("access_ends_at")
            if entry.subscription and access_ends and entry.occurred_at >= datetime.fromisoformat(access_ends):
                self.resolve(case, CaseStatus.recovered, entry.occurred_at, entry.cause, "the subscription renewed")

    def _cancel_scheduled(self, entry: TimelineEntry) -> None:
        access_ends = entry.properties.get("current_period_end")
        fold = self.folds.get(entry.subscription) if entry.subscription else None
        case = self.open_case(CaseKind.cancellation_scheduled.value)
        if case is not None:
            self.join(
                case,
                f"{entry.source}:{entry.dedupe_key}",
                entry.occurred_at,
                entry.cause,
                {"access_ends_at": access_ends},
            )
            if entry.subscription:
                case.subscriptions.add(entry.subscription)
            return
        ends = datetime.fromisoformat(access_ends) if isinstance(access_ends, str) else None
        self.open(
            CaseKind.cancellation_scheduled,
            f"{entry.source}:{entry.dedupe_key}",
            entry.type,
            entry.occurred_at,
            entry.cause,
            revenue=(fold.mrr, fold.currency) if fold is not None and fold.mrr else self.mrr(),
            details={"access_ends_at": access_ends},
            subscription=entry.subscription,
            window_at_least=ends,
        )

    def _plan_changed(self, entry: TimelineEntry) -> None:
        delta = entry.properties.get("mrr_delta")
        if not isinstance(delta, int) or delta >= 0 or entry.subscription is None:
            return
        if (case := self.open_case(CaseKind.downgraded.value)) is not None:
            self.join(case, f"{entry.source}:{entry.dedupe_key}", entry.occurred_at, entry.cause, {"mrr_delta": delta})
            return
        fold = self.folds.get(entry.subscription)
        details: dict[str, Any] = {
            "from_plan": entry.properties.get("from_plan"),
            "to_plan": entry.properties.get("to_plan"),
            "mrr_delta": delta,
        }
        if fold is not None and fold.mrr is not None:
            details["mrr_before"] = fold.mrr - delta
        self.open(
            CaseKind.downgraded,
            f"{entry.source}:{entry.dedupe_key}",
            entry.type,
            entry.occurred_at,
            entry.cause,
            revenue=(-delta, entry.properties.get("currency")),
            details=details,
            subscription=entry.subscription,
        )

    def _subscription_ended(self, entry: TimelineEntry, subscription: SubscriptionKey, before: Fold | None) -> None:
        at, cause = entry.occurred_at, entry.cause
        for kind in (CaseKind.payment_failed, CaseKind.cancellation_scheduled, CaseKind.downgraded):
            case = self.open_case(kind.value)
            if case is not None and subscription in case.subscriptions:
                self.resolve(case, CaseStatus.lost, at, cause, "the subscription ended")
        if self.churned():
            for case in self.open_cases():
                if case.kind != CaseKind.canceled.value:
                    self.resolve(case, CaseStatus.lost, at, cause, "the customer churned")
        case = self.open_case(CaseKind.canceled.value)
        if case is not None:
            self.join(case, f"{entry.source}:{entry.dedupe_key}", at, cause, {"subscription": subscription[1]})
            case.subscriptions.add(subscription)
            return
        revenue = (before.mrr, before.currency) if before is not None and before.mrr else (0, None)
        self.open(
            CaseKind.canceled,
            f"{entry.source}:{entry.dedupe_key}",
            entry.type,
            at,
            cause,
            revenue=revenue,
            details={"status": self.folds[subscription].status},
            subscription=subscription,
        )

    def on_tier_change(self, change: TierChange) -> None:
        tiers = self.settings.case_tiers
        cause = f"event:risk:{change.id}"
        case = self.open_case(CaseKind.high_risk.value)
        if change.to_tier in tiers and change.from_tier not in tiers and not self.churned():
            data = {"from": change.from_tier, "to": change.to_tier}
            if case is not None:
                self.join(case, change.id, change.occurred_at, cause, data)
                return
            self.open(
                CaseKind.high_risk,
                change.id,
                "risk.tier_changed",
                change.occurred_at,
                cause,
                revenue=self.mrr(),
                details=data,
            )
        elif change.to_tier not in tiers and case is not None:
            self.resolve(
                case, CaseStatus.recovered, change.occurred_at, cause, f"the risk tier fell to {change.to_tier}"
            )

    def on_usage_day(self, day: date) -> None:
        """A day on which usage dropped: a case opens if the customer pays and none is open. When
        its activity recovers is known now (complete days only): a deadline like the window's."""
        if self.open_case(CaseKind.usage_drop.value) is not None or not self.paying():
            return
        last, base = self.usage.last_week(day), self.usage.baseline(day)
        details = {
            "day": day.isoformat(),
            "active_days_7d": last[0],
            "events_7d": last[1],
            "baseline_active_days": base[0],
            "baseline_events": base[1],
        }
        at = _day_start(day + timedelta(days=1))
        case = self.open(
            CaseKind.usage_drop,
            f"usage_drop:{day.isoformat()}",
            "usage_drop",
            at,
            SWEEP,
            revenue=self.mrr(),
            details=details,
        )
        self._expect_recovery(case, day)

    def _expect_recovery(self, case: DerivedCase, after: date) -> None:
        until = min(self.last_complete_day, case.window_ends_at.astimezone(UTC).date())
        base = (case.details["baseline_active_days"], case.details["baseline_events"])
        day = self.usage.recovery_day(after, until, base, self.settings.usage_drop_ratio)
        case.recovery_due = None if day is None else _day_start(day + timedelta(days=1))

    def on_manual(self, action: ManualAction) -> None:
        case = next((c for c in self.cases if (c.kind, c.trigger_key) == (action.kind, action.trigger_key)), None)
        if case is None:
            return  # its trigger no longer holds: reconciliation dismisses the stored case
        if action.action == "reopened":
            other = self.open_case(case.kind)
            if other is not None and other is not case:
                self.resolve(other, CaseStatus.dismissed, action.at, "manual", "superseded by a reopened case")
            case.status, case.resolved_at, case.verified_at = CaseStatus.open.value, None, None
            case.resolution_reason, case.manual_status, case.verify_due = None, None, None
            case.window_ends_at = max(case.window_ends_at, action.at + self.settings.window(case.kind))
            if case.kind == CaseKind.usage_drop.value:
                self._expect_recovery(case, action.at.astimezone(UTC).date() - timedelta(days=1))
            return
        status = CaseStatus.dismissed if action.action == "dismissed" else CaseStatus.lost
        case.status, case.resolved_at, case.verify_due, case.recovery_due = status.value, action.at, None, None
        case.resolution_reason = action.reason or ("dismissed" if status is CaseStatus.dismissed else "marked lost")
        case.manual_status = status.value


def _below(last: tuple[int, int], base: tuple[int, int], ratio: float) -> bool:
    """The last 7 days under `ratio` of the 28-day baseline's weekly rate, in active days or events."""
    scale = ratio * USAGE_DAYS / BASELINE_DAYS
    return last[0] < scale * base[0] or last[1] < scale * base[1]


def _ended(fold: Fold | None) -> bool:
    return fold is not None and fold.status in ENDED_STATUSES


def _runs(fold: Fold | None) -> bool:
    return fold is not None and fold.status is not None and fold.status not in ENDED_STATUSES


def _repeat_key(case: DerivedCase, key: str) -> str:
    """`key`, or `key:<n>` for its n-th use on the case (a status reached again after a reopen)."""
    used = sum(1 for transition in case.transitions if transition.key == key or transition.key.startswith(key + ":"))
    return key if used == 0 else f"{key}:{used + 1}"
