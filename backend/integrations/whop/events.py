"""Whop deliveries to canonical events.

Two wire formats arrive. v1 envelopes `{id, api_version, type, timestamp, company_id|account_id,
data}`: the envelope id is the event's identity and `timestamp` its time. Legacy v5 bodies
`{action, data}` carry neither, so the identity is a digest of the content (a retry resends the
same content) and the time is the newest of the data's own timestamps (unix seconds).

The customer is the Whop user (`user.id`), the subscription the membership. Amounts arrive in
major units and are stored in minor units. Whop's webhooks do not carry the plan's billing
interval, so a recurring payment's total is taken as the monthly recurring revenue.

Ignored, never processed: Whop dashboard test deliveries, recognised by `"test": true` on the
envelope or its data, or by the documentation's placeholder ids the dashboard samples use
(`msg_xxxxxxxxxxxxxxxxxxxxxxxx`, `user_xxxxxxxxxxxxx`); and every type not handled below.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from churnsaver.backend.core.accepted_json import parse_timestamp, parse_unix_timestamp
from churnsaver.backend.core.money import currency_code, to_minor_units
from churnsaver.backend.customers.declines import classify_decline, code_from_message
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, Source, SubscriptionState
from churnsaver.backend.integrations.facts import Facts

PAYMENT_PENDING = "payment_pending"  # no canonical type: an informational timeline entry
INVOICE_VOIDED = "invoice_voided"  # likewise: the merchant withdrew a bill, no money moved
RECURRING_BILLING_REASONS = frozenset(
    {"subscription", "subscription_create", "subscription_cycle", "subscription_update"}
)
# The timestamps of a v5 body's data that mark when something happened to it; the newest is the
# event's time. `expires_at` marks the change only when a membership goes invalid.
V5_TIME_FIELDS = ("updated_at", "canceled_at", "paid_at", "last_payment_attempt", "refunded_at", "created_at")
PLACEHOLDER_ID = re.compile(r"^[a-z]+_x{6,}$")


Builder = Callable[[str, dict[str, Any]], Facts]


def event_type(payload: dict[str, Any]) -> str:
    """The delivery's type: `type` in v1, `action` in v5."""
    kind = payload.get("type", payload.get("action"))
    return kind if isinstance(kind, str) else ""


def is_legacy(payload: dict[str, Any]) -> bool:
    return "type" not in payload and "action" in payload


def is_test_payload(payload: dict[str, Any]) -> bool:
    data = _dict(payload, "data")
    if payload.get("test") is True or data.get("test") is True:
        return True
    return _is_placeholder(payload.get("id")) or _is_placeholder(data.get("id"))


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and PLACEHOLDER_ID.match(value) is not None


def ignore_reason(payload: dict[str, Any]) -> str | None:
    """Why the delivery is stored but not processed, or None when it is processed."""
    if is_test_payload(payload):
        return "Whop dashboard test delivery"
    kind = event_type(payload)
    handled = V5_BUILDERS if is_legacy(payload) else V1_BUILDERS
    if kind not in handled:
        return f"Whop event type {kind!r} is not processed"
    return None


def check_times(payload: dict[str, Any]) -> None:
    """Parse the timestamps `normalize` reads, as it reads them, for a handled delivery: a
    ValueError (UnacceptableInput, naming the field) for one it could not read, so that such a
    delivery is refused when it arrives rather than failed when it is processed."""
    kind = event_type(payload)
    data = _dict(payload, "data")
    if is_legacy(payload):
        _v5_time(kind, data)
        builder = V5_BUILDERS[kind]
    else:
        _time(payload.get("timestamp"), "timestamp")
        builder = V1_BUILDERS[kind]
    if builder is _membership:
        _renewal_period_end(data)


def normalize(payload: dict[str, Any]) -> list[CanonicalEvent]:
    """The canonical events of a handled Whop delivery; ValueError says what is malformed."""
    kind = event_type(payload)
    data = _object(payload.get("data"), "data")
    if is_legacy(payload):
        build, occurred_at, dedupe_key = V5_BUILDERS[kind], _v5_time(kind, data), _v5_key(payload)
    else:
        build, occurred_at, dedupe_key = V1_BUILDERS[kind], _time(payload.get("timestamp"), "timestamp"), _id(payload)
    return [build(kind, data).event(occurred_at=occurred_at, source=Source.whop, dedupe_key=dedupe_key)]


def _payment(kind: str, payment: dict[str, Any]) -> Facts:
    currency, amount = _money(payment, "total", "final_amount", "subtotal")
    succeeded = kind == "payment.succeeded"
    recurring = succeeded and payment.get("billing_reason") in RECURRING_BILLING_REASONS
    properties = {
        "payment_id": payment.get("id"),
        "amount": amount,
        "currency": currency,
        "billing_reason": payment.get("billing_reason"),
        "substatus": payment.get("substatus"),
        "product": _ref_id(payment.get("product")),
    }
    if kind == "payment.failed":
        message = _text(payment.get("failure_message"))
        decline_code = code_from_message(message)
        properties |= {
            "failure_message": message,
            "decline_code": decline_code,
            "decline_class": classify_decline(decline_code),
        }
    canonical_type = {"payment.succeeded": EventType.payment_succeeded, "payment.failed": EventType.payment_failed}
    subscription = _membership_state(
        payment.get("membership") or payment.get("membership_id"),
        plan=_ref_id(payment.get("plan")),
        mrr=amount if recurring else None,
        currency=currency if recurring else None,
    )
    return Facts(canonical_type.get(kind, PAYMENT_PENDING), _customer(payment), subscription, properties)


def _membership(kind: str, membership: dict[str, Any]) -> Facts:
    canonical_type = {
        "membership.activated": EventType.subscription_started,
        "membership.went_valid": EventType.subscription_started,
        "membership.deactivated": EventType.subscription_canceled,
        "membership.went_invalid": EventType.subscription_canceled,
    }.get(kind, EventType.subscription_updated)
    subscription = SubscriptionState(
        external_id=_id(membership),
        status=_text(membership.get("status")),
        plan=_ref_id(membership.get("plan")),
        current_period_end=_renewal_period_end(membership),
        cancel_at_period_end=_flag(membership.get("cancel_at_period_end")),
    )
    properties = {
        "product": _ref_id(membership.get("product")),
        "cancellation_reason": membership.get("cancellation_reason"),
        "manage_url": membership.get("manage_url"),
    }
    return Facts(canonical_type, _customer(membership), subscription, properties)


def _invoice(kind: str, invoice: dict[str, Any]) -> Facts:
    plan = _dict(invoice, "current_plan")
    currency_source = {"currency": invoice.get("currency") or plan.get("currency"), "total": _invoice_total(invoice)}
    currency, amount = _money(currency_source, "total")
    properties = {"invoice_id": invoice.get("id"), "amount": amount, "currency": currency, "plan": plan.get("id")}
    if kind in ("invoice.past_due", "invoice.marked_uncollectible"):
        decline_code = "invoice_past_due" if kind == "invoice.past_due" else "invoice_uncollectible"
        properties |= {"decline_code": decline_code, "decline_class": classify_decline(decline_code)}
    canonical_type = {
        "invoice.paid": EventType.payment_succeeded,
        "invoice.past_due": EventType.payment_failed,
        "invoice.marked_uncollectible": EventType.payment_failed,
    }.get(kind, INVOICE_VOIDED)
    # Whop invoices name a plan, not a membership: they inform the timeline, not a subscription.
    return Facts(canonical_type, _customer(invoice), None, properties)


def _refund_or_dispute(kind: str, record: dict[str, Any]) -> Facts:
    payment = _dict(record, "payment")
    currency, amount = _money(record, "amount")
    properties = {
        "payment_id": payment.get("id") or record.get("payment_id"),
        "amount": amount,
        "currency": currency,
        "status": record.get("status"),
    }
    if kind == "dispute.created":
        properties["reason"] = record.get("reason")
        properties["dispute_id"] = record.get("id")
        canonical_type = EventType.dispute
    else:
        properties["refund_id"] = record.get("id")
        canonical_type = EventType.refund
    customer = _customer(payment if _user(payment) else record)
    subscription = _membership_state(payment.get("membership") or record.get("membership"))
    return Facts(canonical_type, customer, subscription, properties)


V1_BUILDERS: dict[str, Builder] = {
    "payment.succeeded": _payment,
    "payment.failed": _payment,
    "payment.pending": _payment,
    "membership.activated": _membership,
    "membership.deactivated": _membership,
    "membership.cancel_at_period_end_changed": _membership,
    "invoice.paid": _invoice,
    "invoice.past_due": _invoice,
    "invoice.marked_uncollectible": _invoice,
    "invoice.voided": _invoice,
    "refund.created": _refund_or_dispute,
    "dispute.created": _refund_or_dispute,
}
V5_BUILDERS: dict[str, Builder] = {
    "membership.went_valid": _membership,
    "membership.went_invalid": _membership,
    "membership.cancel_at_period_end_changed": _membership,
    "payment.succeeded": _payment,
    "payment.failed": _payment,
    "payment.pending": _payment,
    "refund.created": _refund_or_dispute,
    "dispute.created": _refund_or_dispute,
}


def _membership_state(membership: object, **fields: Any) -> SubscriptionState | None:
    """The state a payment, refund or dispute reports of its membership (v1: an object, v5: an id)."""
    membership_id = _ref_id(membership)
    if membership_id is None:
        return None
    status = membership.get("status") if isinstance(membership, dict) else None
    return SubscriptionState(external_id=membership_id, status=_text(status), **fields)


def _user(data: dict[str, Any]) -> dict[str, Any]:
    user = data.get("user", data.get("user_id"))
    if isinstance(user, str):
        return {"id": user}
    return user if isinstance(user, dict) else {}


def _customer(data: dict[str, Any]) -> CustomerRef:
    user = _user(data)
    if not isinstance(user.get("id"), str) or not user["id"]:
        raise ValueError("the delivery names no Whop user (data.user.id)")
    member = _dict(data, "member")
    mailing = _dict(data, "mailing_address")
    return CustomerRef(
        provider=Source.whop,
        provider_id=user["id"],
        email=_text(user.get("email") or data.get("email") or data.get("user_email") or data.get("email_address")),
        name=_text(user.get("name") or data.get("customer_name")),
        phone=_text(member.get("phone") or mailing.get("phone")),
    )


def _money(data: dict[str, Any], *amount_fields: str) -> tuple[str | None, int | None]:
    """(currency, amount in minor units) from the first amount field present."""
    if not data.get("currency"):
        return None, None
    currency = currency_code(data["currency"])
    amount = next((data[field] for field in amount_fields if data.get(field) is not None), None)
    return currency, None if amount is None else to_minor_units(amount, currency)


def _invoice_total(invoice: dict[str, Any]) -> float | None:
    if invoice.get("total") is not None:
        return invoice["total"]
    items = [item for item in invoice.get("line_items") or [] if isinstance(item, dict) and "total" in item]
    return sum(item["total"] for item in items) if items else None


def _v5_time(kind: str, data: dict[str, Any]) -> datetime:
    fields = (*V5_TIME_FIELDS, "expires_at") if kind == "membership.went_invalid" else V5_TIME_FIELDS
    times = [_time(data[field], f"data.{field}") for field in fields if data.get(field) is not None]
    if not times:
        raise ValueError(f"a v5 {kind} body needs one of the timestamps {', '.join(fields)}")
    return max(times)


def _v5_key(payload: dict[str, Any]) -> str:
    if isinstance(payload.get("id"), str) and payload["id"]:
        return payload["id"]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "whop-v5:" + hashlib.sha256(canonical.encode()).hexdigest()


def _time(value: object, label: str) -> datetime:
    """An ISO 8601 string (v1) or unix seconds (v5), as aware UTC within years 1 to 9999."""
    if isinstance(value, str):
        return parse_timestamp(value, label, naive_is_utc=True)
    return parse_unix_timestamp(value, label)


def _renewal_period_end(membership: dict[str, Any]) -> datetime | None:
    value = membership.get("renewal_period_end")
    return None if value is None else _time(value, "data.renewal_period_end")


def _dict(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _object(value: object, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{label} must be an object")
    return value


def _id(record: dict[str, Any]) -> str:
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError("id must be a non-empty string")
    return record["id"]


def _ref_id(value: object) -> str | None:
    """An id given as a string (v5) or as an object with an id (v1)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
