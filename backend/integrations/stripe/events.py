"""Stripe events to canonical events.

An event is `{id, type, created, data: {object, previous_attributes?}}`: the event id is its
identity and `created` (unix seconds) its time. The customer is the object's `customer`, the
subscription the Stripe subscription. Stripe amounts are already in minor units.

Subscription state comes from the subscription object: status (an `active` subscription whose
payment collection is paused counts as `paused`), the plan (its price ids), the monthly
recurring revenue (each licensed item's price times quantity, normalised to a month; discounts and
metered usage are not counted), the period end and whether it cancels at period end. Invoices
report the status Stripe moves a subscription to by default: `active` once a non-zero invoice
is paid, `past_due` (or `incomplete`, for the first invoice) when a payment fails. Test-mode
events are processed like live ones: the merchant chose which endpoint secret to connect.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from churnsaver.backend.core.accepted_json import parse_unix_timestamp
from churnsaver.backend.core.money import currency_code
from churnsaver.backend.customers.declines import classify_decline
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, Source, SubscriptionState
from churnsaver.backend.integrations.facts import Facts

# Months per billing interval, to bring any price to a monthly amount.
MONTHS_PER_INTERVAL = {"day": Decimal(12) / 365, "week": Decimal(12) / 52, "month": Decimal(1), "year": Decimal(12)}
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
SUBSCRIPTION_TYPES = {
    "customer.subscription.created": EventType.subscription_started,
    "customer.subscription.updated": EventType.subscription_updated,
    "customer.subscription.deleted": EventType.subscription_canceled,
    "customer.subscription.paused": EventType.subscription_paused,
    "customer.subscription.resumed": EventType.subscription_resumed,
}

Builder = Callable[[str, dict[str, Any], dict[str, Any]], Facts]


def ignore_reason(event: dict[str, Any]) -> str | None:
    """Why the event is stored but not processed, or None when it is processed."""
    if event.get("type") not in BUILDERS:
        return f"Stripe event type {event.get('type')!r} is not processed"
    return None


def normalize(event: dict[str, Any]) -> list[CanonicalEvent]:
    """The canonical events of a handled Stripe event; ValueError says what is malformed."""
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise ValueError("id must be a non-empty string")
    occurred_at = _created(event)
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ValueError("data.object must be an object")
    previous = _object(data, "previous_attributes")
    facts = BUILDERS[event["type"]](event["type"], data["object"], previous)
    return [facts.event(occurred_at=occurred_at, source=Source.stripe, dedupe_key=event["id"])]


def check_times(event: dict[str, Any]) -> None:
    """Parse the timestamps `normalize` reads, as it reads them, for a handled event: a ValueError
    (UnacceptableInput, naming the field) for one it could not read, so that such an event is
    refused when it arrives rather than failed when it is processed."""
    _created(event)
    data = event.get("data")
    subscription = data.get("object") if isinstance(data, dict) else None
    if event.get("type") in SUBSCRIPTION_TYPES and isinstance(subscription, dict):
        _period_end(subscription, _items(subscription))
        _resumes_at(subscription)


def _created(event: dict[str, Any]) -> datetime:
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise ValueError("created must be a unix timestamp")
    return parse_unix_timestamp(created, "created")


def _invoice(kind: str, invoice: dict[str, Any], _previous: dict[str, Any]) -> Facts:
    failed = kind == "invoice.payment_failed"
    amount = invoice.get("amount_due" if failed else "amount_paid")
    properties: dict[str, Any] = {
        "invoice_id": invoice.get("id"),
        "amount": amount,
        "currency": currency_code(invoice["currency"]) if invoice.get("currency") else None,
        "billing_reason": invoice.get("billing_reason"),
        "attempt_count": invoice.get("attempt_count"),
    }
    status: str | None
    if failed:
        decline_code = _decline_code(invoice)
        next_attempt = invoice.get("next_payment_attempt")
        properties |= {
            "decline_code": decline_code,
            "decline_class": classify_decline(decline_code),
            # No next attempt: Stripe has given up retrying this invoice.
            "final_attempt": next_attempt is None,
        }
        status = "incomplete" if invoice.get("billing_reason") == "subscription_create" else "past_due"
    else:
        status = "active" if isinstance(amount, int) and amount > 0 else None
    subscription_id = _subscription_id(invoice)
    subscription = None if subscription_id is None else SubscriptionState(external_id=subscription_id, status=status)
    profile = {field: invoice.get(f"customer_{field}") for field in ("email", "name", "phone")}
    customer = _customer_ref(invoice, **profile)
    canonical_type = EventType.payment_failed if failed else EventType.payment_succeeded
    return Facts(canonical_type, customer, subscription, properties)


def _subscription(kind: str, subscription: dict[str, Any], previous: dict[str, Any]) -> Facts:
    status = subscription.get("status")
    if not isinstance(status, str) or not status:
        raise ValueError("a subscription needs a status")
    paused_collection = subscription.get("pause_collection") is not None
    if paused_collection and status == "active":
        status = "paused"
    items = _items(subscription)
    currency = subscription.get("currency") or next((_price(item).get("currency") for item in items), None)
    state = SubscriptionState(
        external_id=_required_id(subscription, "subscription"),
        status=status,
        plan="+".join(sorted({_price(item)["id"] for item in items if _price(item).get("id")})) or None,
        mrr=_monthly_amount(items),
        currency=currency_code(currency) if currency else None,
        current_period_end=_period_end(subscription, items),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end"))
        or (subscription.get("cancel_at") is not None and status not in ENDED_STATUSES),
    )
    canonical_type = SUBSCRIPTION_TYPES[kind]
    if kind == "customer.subscription.updated" and "pause_collection" in previous:
        # Pausing payment collection is an update to Stripe, and a pause or resume to a retention team.
        canonical_type = EventType.subscription_paused if paused_collection else EventType.subscription_resumed
    details = _object(subscription, "cancellation_details")
    pause = _object(subscription, "pause_collection")
    resumes_at = _resumes_at(subscription)
    properties = {
        "cancellation_reason": details.get("reason"),
        "cancellation_feedback": details.get("feedback"),
        "pause_behavior": pause.get("behavior"),
        "resumes_at": None if resumes_at is None else resumes_at.isoformat(),
    }
    return Facts(canonical_type, _customer_ref(subscription), state, properties)


def _customer_updated(_kind: str, customer: dict[str, Any], _previous: dict[str, Any]) -> Facts:
    ref = CustomerRef(
        provider=Source.stripe,
        provider_id=_required_id(customer, "customer"),
        email=_text(customer.get("email")),
        name=_text(customer.get("name")),
        phone=_text(customer.get("phone")),
    )
    return Facts(EventType.identify, ref, None, {})


BUILDERS: dict[str, Builder] = {
    "invoice.payment_failed": _invoice,
    "invoice.paid": _invoice,
    "customer.updated": _customer_updated,
    **dict.fromkeys(SUBSCRIPTION_TYPES, _subscription),
}


def _decline_code(invoice: dict[str, Any]) -> str | None:
    """The most specific decline reason the invoice carries (expanded objects only hold it)."""
    intent = _object(invoice, "payment_intent")
    error = _object(intent, "last_payment_error")
    charge = _object(invoice, "charge")
    outcome = _object(charge, "outcome")
    finalization = _object(invoice, "last_finalization_error")
    candidates = (
        error.get("decline_code"),
        outcome.get("reason"),
        finalization.get("decline_code"),
        error.get("code"),
        charge.get("failure_code"),
        finalization.get("code"),
    )
    return next((code for code in candidates if isinstance(code, str) and code), None)


def _customer_ref(record: dict[str, Any], **profile: Any) -> CustomerRef:
    customer = record.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    if not isinstance(customer_id, str) or not customer_id:
        raise ValueError("the event names no Stripe customer")
    return CustomerRef(
        provider=Source.stripe, provider_id=customer_id, **{key: _text(value) for key, value in profile.items()}
    )


def _subscription_id(invoice: dict[str, Any]) -> str | None:
    """`subscription` until API version 2025-03-31, `parent.subscription_details.subscription` since."""
    subscription = invoice.get("subscription")
    if subscription is None:
        parent = _object(invoice, "parent")
        details = _object(parent, "subscription_details")
        subscription = details.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return subscription if isinstance(subscription, str) and subscription else None


def _items(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    return [item for item in data or [] if isinstance(item, dict)]


def _price(item: dict[str, Any]) -> dict[str, Any]:
    price = item.get("price") or item.get("plan")
    return price if isinstance(price, dict) else {}


def _monthly_amount(items: list[dict[str, Any]]) -> int | None:
    """The items' monthly recurring revenue in minor units; None when a price has no unit amount."""
    if not items:
        return None
    total = Decimal(0)
    for item in items:
        price = _price(item)
        recurring = _object(price, "recurring")
        if recurring.get("usage_type") == "metered":
            continue  # billed on usage after the fact: nothing recurring to count ahead
        unit_amount = price.get("unit_amount_decimal", price.get("unit_amount"))
        interval = recurring.get("interval", price.get("interval"))
        if unit_amount is None or interval not in MONTHS_PER_INTERVAL:
            return None
        interval_count = recurring.get("interval_count", price.get("interval_count")) or 1
        quantity = item.get("quantity")
        quantity = 1 if quantity is None else quantity
        total += Decimal(str(unit_amount)) * quantity / (MONTHS_PER_INTERVAL[interval] * interval_count)
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _period_end(subscription: dict[str, Any], items: list[dict[str, Any]]) -> datetime | None:
    """Top-level until API version 2025-03-31, on each item since."""
    ends = [subscription.get("current_period_end"), *(item.get("current_period_end") for item in items)]
    timestamps = [end for end in ends if isinstance(end, int) and not isinstance(end, bool)]
    return parse_unix_timestamp(max(timestamps), "data.object.current_period_end") if timestamps else None


def _resumes_at(subscription: dict[str, Any]) -> datetime | None:
    resumes_at = _object(subscription, "pause_collection").get("resumes_at")
    if not isinstance(resumes_at, int) or isinstance(resumes_at, bool):
        return None
    return parse_unix_timestamp(resumes_at, "data.object.pause_collection.resumes_at")


def _object(record: dict[str, Any], key: str) -> dict[str, Any]:
    """`record[key]` when it is an object (an expanded one, for ids), else empty."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _required_id(record: dict[str, Any], what: str) -> str:
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError(f"the {what} has no id")
    return record["id"]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
