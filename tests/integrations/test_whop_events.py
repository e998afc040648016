"""Whop v1 envelopes and legacy v5 bodies become canonical events."""

from datetime import UTC, datetime, timedelta

import pytest

from churnsaver.backend.customers.events import DeclineClass, EventType
from churnsaver.backend.integrations.whop import events as whop
from tests.fixtures import billing_payloads as payloads

AT = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def only_event(payload: dict):
    assert whop.ignore_reason(payload) is None
    [event] = whop.normalize(payload)
    return event


def test_a_failed_payment_names_the_user_the_membership_and_a_soft_decline() -> None:
    payload = payloads.whop_payment_failed(
        user_id="user_Jane",
        membership_id="mem_Jane",
        at=AT,
        total=19.99,
        currency="usd",
        failure_message="Your card has insufficient funds.",
        email="jane@example.com",
        name="Jane Doe",
        phone="+15555550100",
    )
    event = only_event(payload)
    assert event.type == EventType.payment_failed
    assert event.occurred_at == AT
    assert event.source == "whop"
    assert event.dedupe_key == payload["id"]
    assert (event.customer.provider, event.customer.provider_id) == ("whop", "user_Jane")
    assert (event.customer.email, event.customer.name, event.customer.phone) == (
        "jane@example.com",
        "Jane Doe",
        "+15555550100",
    )
    assert event.subscription.external_id == "mem_Jane"
    assert event.subscription.status == "past_due"
    assert event.subscription.plan == "plan_Pro"
    assert event.subscription.mrr is None  # a failed payment does not set the price
    assert event.properties["amount"] == 1999
    assert event.properties["currency"] == "USD"
    assert event.properties["decline_code"] == "insufficient_funds"
    assert event.properties["decline_class"] == DeclineClass.soft


def test_a_stolen_card_is_a_hard_decline() -> None:
    event = only_event(payloads.whop_payment_failed(failure_message="Your card was reported stolen."))
    assert (event.properties["decline_code"], event.properties["decline_class"]) == ("stolen_card", "hard")


def test_a_recurring_payment_sets_the_subscriptions_mrr_in_minor_units() -> None:
    event = only_event(payloads.whop_payment_succeeded(total=29.0, currency="eur", plan_id="plan_Gold"))
    assert event.type == EventType.payment_succeeded
    assert (event.subscription.status, event.subscription.plan) == ("active", "plan_Gold")
    assert (event.subscription.mrr, event.subscription.currency) == (2900, "EUR")
    assert event.properties["amount"] == 2900


def test_a_one_time_payment_does_not_set_mrr() -> None:
    event = only_event(payloads.whop_payment_succeeded(billing_reason="one_time"))
    assert event.subscription.mrr is None


@pytest.mark.parametrize(
    ("total", "currency", "minor"),
    [(19.99, "usd", 1999), (0.1 + 0.2, "usd", 30), (1500, "jpy", 1500), (12.345, "kwd", 12345), (7, "USD", 700)],
)
def test_amounts_follow_the_currency_exponent(total: float, currency: str, minor: int) -> None:
    event = only_event(payloads.whop_payment_succeeded(total=total, currency=currency))
    assert event.properties["amount"] == minor


def test_a_pending_payment_is_recorded_with_the_membership_status() -> None:
    event = only_event(payloads.whop_payment_pending(membership_status="active"))
    assert event.type == whop.PAYMENT_PENDING
    assert event.subscription.status == "active"


def test_an_activated_membership_starts_a_subscription_with_its_period() -> None:
    renews = AT + timedelta(days=30)
    event = only_event(payloads.whop_membership_activated(at=AT, renewal_period_end=renews, status="trialing"))
    assert event.type == EventType.subscription_started
    assert event.subscription.status == "trialing"
    assert event.subscription.current_period_end == renews.replace(microsecond=123000)
    assert event.subscription.cancel_at_period_end is False
    assert event.properties["manage_url"].startswith("https://whop.com/orders/")


def test_a_deactivated_membership_is_canceled_with_its_reason() -> None:
    event = only_event(payloads.whop_membership_deactivated(status="expired", cancellation_reason="Too expensive"))
    assert event.type == EventType.subscription_canceled
    assert event.subscription.status == "expired"
    assert event.properties["cancellation_reason"] == "Too expensive"


def test_cancel_at_period_end_changed_reports_the_flag_for_apply_to_compare() -> None:
    event = only_event(payloads.whop_membership_cancel_at_period_end_changed(cancel_at_period_end=True))
    assert event.type == EventType.subscription_updated
    assert event.subscription.cancel_at_period_end is True


@pytest.mark.parametrize(
    ("event_type", "canonical", "decline_class"),
    [
        ("invoice.paid", EventType.payment_succeeded, None),
        ("invoice.past_due", EventType.payment_failed, "soft"),
        ("invoice.marked_uncollectible", EventType.payment_failed, "hard"),
        ("invoice.voided", whop.INVOICE_VOIDED, None),
    ],
)
def test_invoices_are_payments_on_the_timeline(event_type: str, canonical: str, decline_class: str | None) -> None:
    event = only_event(payloads.whop_invoice(event_type, user_id="user_Inv", total=120.5, currency="gbp"))
    assert event.type == canonical
    assert event.customer.provider_id == "user_Inv"
    assert (event.properties["amount"], event.properties["currency"]) == (12050, "GBP")
    assert event.properties.get("decline_class") == decline_class
    assert event.subscription is None


def test_a_refund_is_about_the_user_and_membership_of_its_payment() -> None:
    event = only_event(payloads.whop_refund_created(user_id="user_R", membership_id="mem_R", amount=5.5))
    assert event.type == EventType.refund
    assert (event.customer.provider_id, event.subscription.external_id) == ("user_R", "mem_R")
    assert event.properties["amount"] == 550


def test_a_dispute_keeps_its_reason() -> None:
    event = only_event(payloads.whop_dispute_created(user_id="user_D", reason="product_not_received"))
    assert event.type == EventType.dispute
    assert event.customer.provider_id == "user_D"
    assert event.properties["reason"] == "product_not_received"


def test_an_account_id_envelope_is_read_like_a_company_one() -> None:
    payload = payloads.whop_payment_succeeded()
    payload["account_id"] = payload.pop("company_id")
    assert only_event(payload).type == EventType.payment_succeeded


def test_legacy_v5_membership_uses_the_datas_own_time_and_a_content_key() -> None:
    body = payloads.whop_v5_membership("membership.went_invalid", user_id="user_Old", membership_id="mem_Old", at=AT)
    event = only_event(body)
    assert event.type == EventType.subscription_canceled
    assert event.occurred_at == AT.replace(microsecond=0)
    assert (event.customer.provider_id, event.customer.email) == ("user_Old", "user_Old@example.com")
    assert (event.subscription.external_id, event.subscription.status) == ("mem_Old", "expired")
    assert event.dedupe_key.startswith("whop-v5:")
    # The key is the content's: the same body resent gives the same key, any change another.
    assert only_event({**body}).dedupe_key == event.dedupe_key
    changed = payloads.whop_v5_membership("membership.went_invalid", user_id="user_Old", at=AT + timedelta(seconds=1))
    assert only_event(changed).dedupe_key != event.dedupe_key


def test_legacy_v5_payment_reads_ids_given_as_strings() -> None:
    body = payloads.whop_v5_payment("payment.failed", user_id="user_L", membership_id="mem_L", final_amount=15, at=AT)
    event = only_event(body)
    assert event.type == EventType.payment_failed
    assert event.occurred_at == AT.replace(microsecond=0)
    assert (event.customer.provider_id, event.customer.email) == ("user_L", "user_L@example.com")
    assert event.subscription.external_id == "mem_L"
    assert event.properties["amount"] == 1500
    assert event.properties["decline_code"] == "generic_decline"


def test_dashboard_test_deliveries_and_unknown_types_are_ignored() -> None:
    assert whop.ignore_reason(payloads.whop_test_delivery()) == "Whop dashboard test delivery"
    placeholder_only = {**payloads.whop_test_delivery()}
    del placeholder_only["test"]
    assert whop.ignore_reason(placeholder_only) == "Whop dashboard test delivery"
    unknown = payloads.whop_envelope("course.lesson_completed", {"id": "lsn_1"})
    assert "not processed" in whop.ignore_reason(unknown)
    assert "not processed" in whop.ignore_reason({"action": "membership.metadata_updated", "data": {}})


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p["data"].pop("user"),
        lambda p: p.update(timestamp="yesterday"),
        lambda p: p["data"].update(currency="dollars"),
        lambda p: p["data"].update(total="a lot"),
        lambda p: p.update(data=[]),
    ],
)
def test_a_malformed_delivery_says_what_is_wrong(breakage) -> None:
    payload = payloads.whop_payment_failed()
    breakage(payload)
    with pytest.raises(ValueError):
        whop.normalize(payload)
