"""derive_cases, rule by rule: a pure function of a customer's events and now (no database)."""

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from churnsaver.backend.cases.derivation import (
    CustomerInputs,
    DerivedCase,
    ManualAction,
    TierChange,
    TimelineEntry,
    derive_cases,
)
from churnsaver.backend.cases.settings import CaseSettings
from churnsaver.backend.customers.timeline import STATE_KEY

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
SETTINGS = CaseSettings()
SUB = {"provider": "stripe", "id": "sub_1"}


def entry(kind: str, at: datetime, key: str, *, sub: dict[str, Any] | None = None, derived: bool = False, **props):
    """A timeline row; `sub` is what it says about sub_1 (status, mrr, ...)."""
    properties: dict[str, Any] = dict(props)
    if sub is not None or derived:
        state: dict[str, Any] = {"subscription": SUB | (sub or {})}
        if derived:
            state = {"derived_from": key.split(":")[0], "subscription": SUB}
        properties[STATE_KEY] = state
    return TimelineEntry(kind, at, "stripe", key, properties)


def started(at: datetime = T0 - timedelta(days=60), mrr: int = 2900) -> TimelineEntry:
    return entry("subscription_started", at, "evt_start", sub={"status": "active", "mrr": mrr, "currency": "USD"})


def failed(at: datetime, key: str = "evt_fail", **props) -> TimelineEntry:
    details = {"amount": 2900, "currency": "USD", "decline_class": "soft", "invoice_id": "in_1"} | props
    return entry("payment_failed", at, key, sub={"status": "past_due"}, **details)


def paid(at: datetime, key: str = "evt_paid", **props) -> TimelineEntry:
    return entry(
        "payment_succeeded", at, key, sub={"status": "active"}, **({"amount": 2900, "invoice_id": "in_1"} | props)
    )


def ended(at: datetime, key: str = "evt_end") -> TimelineEntry:
    return entry("subscription_canceled", at, key, sub={"status": "canceled"})


def derive(*entries: TimelineEntry, now: datetime, **inputs) -> list[DerivedCase]:
    return derive_cases(CustomerInputs(timeline=list(entries), **inputs), SETTINGS, now)


def only(cases: list[DerivedCase], kind: str) -> DerivedCase:
    found = [case for case in cases if case.kind == kind]
    assert len(found) == 1, found
    return found[0]


# PAYMENT_FAILED


def test_a_failed_payment_opens_a_case_with_the_amount_due_and_a_one_hour_sla() -> None:
    case = only(derive(started(), failed(T0, decline_class="hard", attempt_count=1), now=T0), "payment_failed")
    assert (case.status, case.opened_at, case.first_touch_due_at) == ("open", T0, T0 + timedelta(hours=1))
    assert (case.revenue_at_risk, case.currency, case.subscription_id) == (2900, "USD", "sub_1")
    assert case.details["decline_class"] == "hard" and case.details["attempts"] == 1
    assert case.window_ends_at == T0 + timedelta(days=30)
    assert [t.key for t in case.transitions] == ["opened"]
    assert case.transitions[0].actor == "event:stripe:evt_fail"


def test_a_later_failure_joins_the_open_case_and_keeps_its_details() -> None:
    later = failed(T0 + timedelta(days=3), "evt_fail2", decline_class="hard", attempt_count=2, amount=3100)
    case = only(derive(started(), failed(T0), later, now=T0 + timedelta(days=4)), "payment_failed")
    assert case.details["attempts"] == 2 and case.details["decline_class"] == "hard"
    assert case.revenue_at_risk == 3100
    assert [t.key for t in case.transitions] == ["opened", "joined:stripe:evt_fail2"]


def test_a_failure_of_an_invoice_already_paid_opens_nothing() -> None:
    # The success is older in event time: the failure is a stale trigger, whatever order they arrived in.
    assert derive(started(), paid(T0 - timedelta(hours=1)), failed(T0), now=T0 + timedelta(days=1)) == []


def test_a_failure_after_the_subscription_ended_opens_nothing() -> None:
    cases = derive(started(), ended(T0 - timedelta(days=1)), failed(T0), now=T0 + timedelta(days=1))
    assert [case.kind for case in cases] == ["canceled"]


def test_a_later_successful_payment_recovers_the_failure() -> None:
    case = only(
        derive(started(), failed(T0), paid(T0 + timedelta(days=2), invoice_id="in_2"), now=T0 + timedelta(days=3)),
        "payment_failed",
    )
    assert (case.status, case.resolved_at) == ("recovered", T0 + timedelta(days=2))
    assert case.transitions[-1].key == "status:recovered"
    assert case.transitions[-1].actor == "event:stripe:evt_paid"


def test_a_zero_amount_payment_does_not_recover() -> None:
    case = only(
        derive(started(), failed(T0), paid(T0 + timedelta(days=1), amount=0), now=T0 + timedelta(days=2)),
        "payment_failed",
    )
    assert case.status == "open"


def test_the_failure_is_lost_when_its_subscription_ends() -> None:
    cases = derive(started(), failed(T0), ended(T0 + timedelta(days=5)), now=T0 + timedelta(days=6))
    case = only(cases, "payment_failed")
    assert (case.status, case.resolution_reason) == ("lost", "the subscription ended")
    assert only(cases, "canceled").status == "open"


def test_the_failure_is_lost_when_its_window_closes() -> None:
    case = only(derive(started(), failed(T0), now=T0 + timedelta(days=31)), "payment_failed")
    assert (case.status, case.resolved_at) == ("lost", T0 + timedelta(days=30))
    assert case.transitions[-1].actor == "job:cases.sweep"


def test_a_payment_after_the_window_does_not_recover() -> None:
    case = only(
        derive(started(), failed(T0), paid(T0 + timedelta(days=40), invoice_id="in_2"), now=T0 + timedelta(days=41)),
        "payment_failed",
    )
    assert (case.status, case.resolved_at) == ("lost", T0 + timedelta(days=30))


# Verification


def test_a_recovery_is_verified_after_fourteen_days_of_paying() -> None:
    recovered_at = T0 + timedelta(days=1)
    events = (started(), failed(T0), paid(recovered_at, invoice_id="in_2"))
    assert only(derive(*events, now=recovered_at + timedelta(days=13)), "payment_failed").verified_at is None
    case = only(derive(*events, now=recovered_at + timedelta(days=14)), "payment_failed")
    assert (case.status, case.verified_at) == ("recovered", recovered_at + timedelta(days=14))
    assert case.transitions[-1].key == "verified"


def test_a_refund_during_verification_turns_the_recovery_lost() -> None:
    refund = entry("refund", T0 + timedelta(days=5), "evt_refund", sub={}, amount=2900)
    case = only(
        derive(
            started(), failed(T0), paid(T0 + timedelta(days=1), invoice_id="in_2"), refund, now=T0 + timedelta(days=30)
        ),
        "payment_failed",
    )
    assert (case.status, case.verified_at, case.resolution_reason) == ("lost", None, "a refund during verification")
    assert [t.key for t in case.transitions] == ["opened", "status:recovered", "status:lost"]


# The other kinds


def test_a_scheduled_cancellation_is_recovered_when_withdrawn() -> None:
    access_ends = T0 + timedelta(days=20)
    scheduled = entry(
        "cancel_scheduled", T0, "evt_u:cancel_scheduled", derived=True, current_period_end=access_ends.isoformat()
    )
    withdrawn = entry("cancel_unscheduled", T0 + timedelta(days=2), "evt_v:cancel_unscheduled", derived=True)
    open_case = only(derive(started(), scheduled, now=T0 + timedelta(days=1)), "cancellation_scheduled")
    assert open_case.details["access_ends_at"] == access_ends.isoformat()
    assert open_case.first_touch_due_at == T0 + timedelta(hours=1)
    case = only(derive(started(), scheduled, withdrawn, now=T0 + timedelta(days=3)), "cancellation_scheduled")
    assert (case.status, case.resolution_reason) == ("recovered", "the cancellation was withdrawn")


def test_a_scheduled_cancellation_is_lost_when_the_subscription_ends() -> None:
    scheduled = entry("cancel_scheduled", T0, "evt_u:cancel_scheduled", derived=True, current_period_end=None)
    case = only(
        derive(started(), scheduled, ended(T0 + timedelta(days=20)), now=T0 + timedelta(days=21)),
        "cancellation_scheduled",
    )
    assert case.status == "lost"


def test_a_canceled_customer_who_subscribes_again_is_recovered() -> None:
    again = entry("subscription_started", T0 + timedelta(days=10), "evt_again", sub={"status": "active"})
    case = only(derive(started(), ended(T0), again, now=T0 + timedelta(days=11)), "canceled")
    assert (case.status, case.revenue_at_risk, case.first_touch_due_at) == ("recovered", 2900, T0 + timedelta(hours=24))


def test_a_downgrade_is_recovered_when_the_mrr_returns() -> None:
    cheaper = entry("subscription_updated", T0, "evt_down", sub={"plan": "basic", "mrr": 900})
    downgrade = entry("plan_changed", T0, "evt_down:plan_changed", derived=True, mrr_delta=-2000, currency="USD")
    back = entry("subscription_updated", T0 + timedelta(days=5), "evt_up", sub={"plan": "pro", "mrr": 2900})
    case = only(derive(started(), cheaper, downgrade, now=T0 + timedelta(days=1)), "downgraded")
    assert (case.status, case.revenue_at_risk, case.details["mrr_before"]) == ("open", 2000, 2900)
    case = only(derive(started(), cheaper, downgrade, back, now=T0 + timedelta(days=6)), "downgraded")
    assert (case.status, case.resolution_reason) == ("recovered", "the MRR returned")


def test_an_upgrade_opens_nothing() -> None:
    upgrade = entry("plan_changed", T0, "evt_up:plan_changed", derived=True, mrr_delta=2000, currency="USD")
    assert derive(started(), upgrade, now=T0 + timedelta(days=1)) == []


def steady_usage(last_day: date, days: int = 40) -> dict[date, int]:
    return {last_day - timedelta(days=n): 10 for n in range(days)}


def test_a_usage_drop_opens_at_the_start_of_the_next_day() -> None:
    # Active every day until Feb 20, then silent: on the day the last 7 days fall below 30% of
    # the previous 28 days' weekly rate (here: fewer than 2.1 active days of 7), a case opens.
    usage = steady_usage(date(2025, 2, 20))
    case = only(derive(started(), usage=usage, now=T0), "usage_drop")
    # Feb 21..25 silent: on Feb 25 the last 7 days (Feb 19..25) hold 2 active days < 2.1.
    assert case.trigger_key == "usage_drop:2025-02-25"
    assert case.opened_at == datetime(2025, 2, 26, tzinfo=UTC)
    assert case.details["baseline_active_days"] == 28


def test_usage_that_comes_back_recovers_the_drop() -> None:
    usage = steady_usage(date(2025, 2, 20)) | {date(2025, 2, 27) + timedelta(days=n): 10 for n in range(4)}
    case = only(derive(started(), usage=usage, now=T0 + timedelta(days=5)), "usage_drop")
    assert (case.status, case.resolution_reason) == ("recovered", "activity recovered")


def test_no_usage_drop_for_a_customer_who_does_not_pay_or_was_barely_active() -> None:
    assert derive(usage=steady_usage(date(2025, 2, 20)), now=T0) == []
    assert derive(started(), usage={date(2025, 2, 1) + timedelta(days=n): 3 for n in range(4)}, now=T0) == []


def test_a_tier_rising_into_high_opens_and_falling_recovers() -> None:
    up = TierChange("e1", T0, "medium", "high")
    higher = TierChange("e2", T0 + timedelta(days=1), "high", "critical")
    down = TierChange("e3", T0 + timedelta(days=3), "critical", "medium")
    case = only(derive(started(), tier_changes=[up, higher, down], now=T0 + timedelta(days=4)), "high_risk")
    assert (case.opened_at, case.revenue_at_risk, case.status) == (T0, 2900, "recovered")
    assert case.transitions[0].actor == "event:risk:e1"
    assert derive(started(), tier_changes=[TierChange("e1", T0, "low", "medium")], now=T0) == []


def test_manual_overrides_hold_until_reopened() -> None:
    events = (started(), failed(T0))
    dismissed = ManualAction("payment_failed", "stripe:evt_fail", "dismissed", T0 + timedelta(hours=2), "duplicate")
    case = only(
        derive(
            *events, paid(T0 + timedelta(days=1), invoice_id="in_2"), manual=[dismissed], now=T0 + timedelta(days=2)
        ),
        "payment_failed",
    )
    # The payment came after the dismissal: the person's decision holds.
    assert (case.status, case.resolution_reason, case.manual_status) == ("dismissed", "duplicate", "dismissed")
    reopened = ManualAction("payment_failed", "stripe:evt_fail", "reopened", T0 + timedelta(hours=5))
    case = only(
        derive(
            *events,
            paid(T0 + timedelta(days=1), invoice_id="in_2"),
            manual=[dismissed, reopened],
            now=T0 + timedelta(days=2),
        ),
        "payment_failed",
    )
    assert (case.status, case.manual_status) == ("recovered", None)


def test_the_same_events_in_any_order_derive_the_same_cases() -> None:
    events = [
        started(),
        failed(T0),
        failed(T0 + timedelta(days=2), "evt_fail2", invoice_id="in_2"),
        paid(T0 + timedelta(days=4), invoice_id="in_2"),
        entry("refund", T0 + timedelta(days=30), "evt_refund", sub={}),
        ended(T0 + timedelta(days=50)),
    ]
    expected = derive(*events, now=T0 + timedelta(days=90))
    assert [case.kind for case in expected] == ["payment_failed", "canceled"]
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(events)
        assert derive(*events, now=T0 + timedelta(days=90)) == expected


def test_a_refund_after_the_verification_period_does_not_count_even_before_it_is_verified() -> None:
    # `now` lies before the verification is due (an event dated ahead of the clock): the refund,
    # after the 14 days, is outside them all the same.
    recovered_at = T0 + timedelta(days=1)
    refund = entry("refund", recovered_at + timedelta(days=15), "evt_refund", sub={})
    case = only(
        derive(started(), failed(T0), paid(recovered_at, invoice_id="in_2"), refund, now=T0 + timedelta(days=2)),
        "payment_failed",
    )
    assert (case.status, case.verified_at) == ("recovered", None)
