"""Stripe events become canonical events."""

from datetime import UTC, datetime, timedelta

import pytest

from churnsaver.backend.customers.events import EventType
from churnsaver.backend.integrations.stripe import events as stripe
from tests.fixtures import billing_payloads as payloads

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def only_event(payload: dict):
    assert stripe.ignore_reason(payload) is None
    [event] = stripe.normalize(payload)
    return event


def test_a_failed_invoice_carries_the_decline_code_and_its_class() -> None:
    payload = payloads.stripe_invoice_payment_failed(
        customer_id="cus_A", subscription_id="sub_A", at=AT, amount_due=4900, decline_code="expired_card"
    )
    event = only_event(payload)
    assert event.type == EventType.payment_failed
    assert (event.occurred_at, event.source, event.dedupe_key) == (AT, "stripe", payload["id"])
    assert (event.customer.provider, event.customer.provider_id) == ("stripe", "cus_A")
    assert event.customer.email == "cus_A@example.com"
    assert (event.subscription.external_id, event.subscription.status) == ("sub_A", "past_due")
    assert event.properties | {"invoice_id": None} == {
        "invoice_id": None,
        "amount": 4900,
        "currency": "USD",
        "billing_reason": "subscription_cycle",
        "attempt_count": 1,
        "decline_code": "expired_card",
        "decline_class": "hard",
        "final_attempt": False,
    }


def test_the_first_invoice_failing_leaves_the_subscription_incomplete() -> None:
    event = only_event(payloads.stripe_invoice_payment_failed(billing_reason="subscription_create"))
    assert event.subscription.status == "incomplete"


def test_a_decline_code_is_found_wherever_the_invoice_carries_it() -> None:
    radar = payloads.stripe_invoice_payment_failed(decline_code=None)
    invoice = radar["data"]["object"]
    invoice["payment_intent"] = "pi_not_expanded"
    invoice["charge"] = {"id": "ch_1", "outcome": {"type": "blocked", "reason": "highest_risk_level"}}
    assert only_event(radar).properties["decline_class"] == "hard"

    finalization = payloads.stripe_invoice_payment_failed(decline_code=None)
    invoice = finalization["data"]["object"]
    invoice["payment_intent"] = None
    invoice["last_finalization_error"] = {"code": "card_declined", "decline_code": "insufficient_funds"}
    assert only_event(finalization).properties["decline_code"] == "insufficient_funds"

    nothing = payloads.stripe_invoice_payment_failed(decline_code=None)
    nothing["data"]["object"]["payment_intent"] = None
    event = only_event(nothing)
    assert "decline_code" not in event.properties
    assert event.properties["decline_class"] == "soft"


def test_a_paid_invoice_activates_its_subscription() -> None:
    event = only_event(payloads.stripe_invoice_paid(customer_id="cus_P", subscription_id="sub_P", amount_paid=990))
    assert event.type == EventType.payment_succeeded
    assert (event.subscription.external_id, event.subscription.status) == ("sub_P", "active")
    assert event.properties["amount"] == 990


def test_a_zero_invoice_says_nothing_about_the_status() -> None:
    event = only_event(payloads.stripe_invoice_paid(amount_paid=0, billing_reason="subscription_create"))
    assert event.subscription.status is None


def test_an_invoice_of_the_2025_api_finds_its_subscription_under_parent() -> None:
    payload = payloads.stripe_invoice_paid(subscription_id=None)
    payload["data"]["object"]["parent"] = {
        "type": "subscription_details",
        "subscription_details": {"subscription": "sub_Basil", "metadata": {}},
    }
    assert only_event(payload).subscription.external_id == "sub_Basil"


def test_a_new_subscription_has_its_plan_mrr_and_period() -> None:
    period_end = AT + timedelta(days=30)
    payload = payloads.stripe_subscription_event(
        "customer.subscription.created",
        customer_id="cus_S",
        subscription_id="sub_S",
        status="trialing",
        prices=[(payloads.stripe_price("price_Team", unit_amount=1500), 3)],
        current_period_end=period_end,
    )
    event = only_event(payload)
    assert event.type == EventType.subscription_started
    state = event.subscription
    assert (state.external_id, state.status, state.plan) == ("sub_S", "trialing", "price_Team")
    assert (state.mrr, state.currency) == (4500, "USD")
    assert state.current_period_end == period_end
    assert state.cancel_at_period_end is False


@pytest.mark.parametrize(
    ("interval", "count", "unit_amount", "mrr"),
    [("month", 1, 3000, 3000), ("year", 1, 12000, 1000), ("month", 3, 9000, 3000), ("week", 1, 700, 3033)],
)
def test_mrr_is_normalised_to_a_month(interval: str, count: int, unit_amount: int, mrr: int) -> None:
    price = payloads.stripe_price(unit_amount=unit_amount, interval=interval, count=count)
    event = only_event(payloads.stripe_subscription_event(prices=[(price, 1)]))
    assert event.subscription.mrr == mrr


def test_several_items_add_up_and_metered_ones_do_not_count() -> None:
    metered = payloads.stripe_price("price_Usage", unit_amount=5)
    metered["recurring"]["usage_type"] = "metered"
    prices = [(payloads.stripe_price("price_Base", unit_amount=2000), 1), (metered, 1)]
    event = only_event(payloads.stripe_subscription_event(prices=prices))
    assert (event.subscription.plan, event.subscription.mrr) == ("price_Base+price_Usage", 2000)


def test_an_update_reports_the_cancellation_for_apply_to_compare() -> None:
    event = only_event(payloads.stripe_subscription_event(cancel_at_period_end=True))
    assert event.type == EventType.subscription_updated
    assert event.subscription.cancel_at_period_end is True


def test_pausing_payment_collection_is_a_pause_and_clearing_it_a_resume() -> None:
    paused = payloads.stripe_subscription_event(
        pause_collection={"behavior": "void", "resumes_at": None}, previous_attributes={"pause_collection": None}
    )
    event = only_event(paused)
    assert (event.type, event.subscription.status) == (EventType.subscription_paused, "paused")
    assert event.properties["pause_behavior"] == "void"
    resumed = payloads.stripe_subscription_event(previous_attributes={"pause_collection": {"behavior": "void"}})
    event = only_event(resumed)
    assert (event.type, event.subscription.status) == (EventType.subscription_resumed, "active")


@pytest.mark.parametrize(
    ("event_type", "status", "canonical"),
    [
        ("customer.subscription.deleted", "canceled", EventType.subscription_canceled),
        ("customer.subscription.paused", "paused", EventType.subscription_paused),
        ("customer.subscription.resumed", "active", EventType.subscription_resumed),
    ],
)
def test_subscription_lifecycle_events(event_type: str, status: str, canonical: str) -> None:
    event = only_event(payloads.stripe_subscription_event(event_type, status=status))
    assert (event.type, event.subscription.status) == (canonical, status)


def test_a_deleted_subscription_keeps_why() -> None:
    event = only_event(payloads.stripe_subscription_event("customer.subscription.deleted", status="canceled"))
    assert event.properties["cancellation_reason"] == "cancellation_requested"


def test_customer_updated_identifies_the_customer() -> None:
    payload = payloads.stripe_customer_updated(customer_id="cus_C", email="c@example.com", name="C", phone="+1555")
    event = only_event(payload)
    assert event.type == EventType.identify
    assert (event.customer.provider_id, event.customer.email, event.customer.name, event.customer.phone) == (
        "cus_C",
        "c@example.com",
        "C",
        "+1555",
    )
    assert event.subscription is None


def test_other_types_are_ignored() -> None:
    assert "not processed" in stripe.ignore_reason(payloads.stripe_event("charge.refunded", {"id": "ch_1"}))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.pop("created"),
        lambda e: e["data"].pop("object"),
        lambda e: e["data"]["object"].pop("customer"),
        lambda e: e["data"]["object"].update(status=None),
    ],
)
def test_a_malformed_event_says_what_is_wrong(breakage) -> None:
    event = payloads.stripe_subscription_event()
    breakage(event)
    with pytest.raises(ValueError):
        stripe.normalize(event)
