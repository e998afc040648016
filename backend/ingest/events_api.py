"""The events API, `POST /v1/events`, and the normalizer of its items.

An integrator posts `{"batch": [item, ...]}`. An item is a `track` (a usage event, or one of the
reserved billing events that let systems without webhooks report subscriptions and payments) or
an `identify` (customer traits). The handler checks every item with the same `normalize_item`
that processing runs later, and against the edge's definition of acceptable JSON
(core/accepted_json.py), so whatever is acknowledged can be stored and processed; it stores the good
items in the inbox (idempotent on `messageId`), enqueues their processing in the same
transaction, and reports each bad item by index and reason.

Status codes: 401 without a key, 403 without the `write` scope, 415 for a non-JSON body, 400 for
malformed JSON, a body that is not `{"batch": [1..1000 items]}`, or a batch in which no item is
valid (nothing is stored then); otherwise 200 with `{"accepted", "duplicates", "rejected"}`.
"""

import json
import uuid
from datetime import datetime
from functools import partial
from typing import Any, Literal, overload

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from churnsaver.backend.core.accepted_json import UnacceptableInput, check_json_value, loads_unchecked, parse_timestamp
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.unit_of_work import UnitOfWork
from churnsaver.backend.customers.apply import check_event
from churnsaver.backend.customers.declines import classify_decline
from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, Source, SubscriptionState
from churnsaver.backend.ingest.inbox import Delivery, store_deliveries
from churnsaver.jobs.outbox import enqueue
from churnsaver.tenants.auth import AuthSubject, Scope

logger = structlog.get_logger(__name__)

MAX_BATCH_ITEMS = 1000
# 1,000 items of a few KiB each, with room to spare; the webhook limit (256 KiB) is per delivery.
MAX_BODY_BYTES = 5 * 1024 * 1024
PROCESS_JOB = "ingest.process_inbox"
# Set by the server when an item arrives, so an item without `timestamp` normalizes to the same
# time however late (or how often) it is processed.
RECEIVED_AT = "receivedAt"

MAX_ID_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 100
MAX_BIGINT = 2**63 - 1

# Reserved track events: name -> (canonical type, the subscription status the event implies).
SUBSCRIPTION_EVENTS: dict[str, tuple[EventType, str | None]] = {
    "subscription.started": (EventType.subscription_started, "active"),
    "subscription.plan_changed": (EventType.plan_changed, None),
    "subscription.canceled": (EventType.subscription_canceled, "canceled"),
    "subscription.paused": (EventType.subscription_paused, "paused"),
    "subscription.resumed": (EventType.subscription_resumed, "active"),
}
PAYMENT_EVENTS: dict[str, EventType] = {
    "payment.failed": EventType.payment_failed,
    "payment.succeeded": EventType.payment_succeeded,
}
RESERVED_PREFIXES = ("subscription.", "payment.")
# A usage event named like a canonical one would pass for a billing event on the timeline.
CANONICAL_TYPES = frozenset(EventType)
# One encoder for every stored item: json.dumps with options builds a new one per call.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def normalize_item(item: dict[str, Any]) -> list[CanonicalEvent]:
    """The canonical events of one events-API item; ValueError says why an item is invalid."""
    kind = item.get("type")
    if kind not in ("track", "identify"):
        raise ValueError("type must be 'track' or 'identify'")
    message_id = _text(item, "messageId", MAX_ID_LENGTH, required=True)
    customer_id = _text(item, "customerId", MAX_ID_LENGTH, required=True)
    properties = _object(item, "properties")
    traits = _object(item, "traits")
    occurred_at = _occurred_at(item)
    customer = _customer(customer_id, traits)
    event_type: str  # an EventType, or a usage event's own name
    if kind == "identify":
        event_type, subscription, properties = EventType.identify, None, {}
    else:
        event_type, subscription, properties = _track(item, customer_id, properties)
    return [
        CanonicalEvent(
            type=event_type,
            occurred_at=occurred_at,
            source=Source.api,
            dedupe_key=message_id,
            customer=customer,
            subscription=subscription,
            properties=properties,
            traits=traits,
        )
    ]


def _customer(customer_id: str, traits: dict[str, Any]) -> CustomerRef:
    if not traits:  # most items: nothing to look for (and this runs for every item of a batch)
        return CustomerRef(provider=Source.api, provider_id=customer_id)
    return CustomerRef(
        provider=Source.api,
        provider_id=customer_id,
        email=_text(traits, "email", 320, prefix="traits."),
        name=_customer_name(traits),
        phone=_text(traits, "phone", 32, prefix="traits."),
    )


def _track(
    item: dict[str, Any], customer_id: str, properties: dict[str, Any]
) -> tuple[str, SubscriptionState | None, dict[str, Any]]:
    """A track item's event type, subscription state and properties."""
    name = _text(item, "event", MAX_EVENT_NAME_LENGTH, required=True)
    if name in SUBSCRIPTION_EVENTS:
        event_type, status = SUBSCRIPTION_EVENTS[name]
        return event_type, _subscription_state(properties, customer_id, status), properties
    if name in PAYMENT_EVENTS:
        event_type = PAYMENT_EVENTS[name]
        return event_type, None, _payment_properties(properties, event_type)
    if name.startswith(RESERVED_PREFIXES):
        reserved = ", ".join([*SUBSCRIPTION_EVENTS, *PAYMENT_EVENTS])
        raise ValueError(f"event {name!r} is not a reserved event; reserved names are: {reserved}")
    if name in CANONICAL_TYPES:
        raise ValueError(f"event name {name!r} is reserved for billing events")
    return name, None, properties


@overload
def _text(values: dict[str, Any], key: str, max_length: int, *, required: Literal[True], prefix: str = "") -> str: ...


@overload
def _text(
    values: dict[str, Any], key: str, max_length: int, *, required: bool = False, prefix: str = ""
) -> str | None: ...


def _text(values: dict[str, Any], key: str, max_length: int, *, required: bool = False, prefix: str = "") -> str | None:
    value = values.get(key)
    if value is None and not required:
        return None
    # Printable only: NUL and control characters would be refused by PostgreSQL, or worse, by a
    # log line or an email template later on.
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError(f"{prefix}{key} must be a non-empty string of printable characters")
    if len(value) > max_length:
        raise ValueError(f"{prefix}{key} is longer than {max_length} characters")
    return value


def _object(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return value


def _occurred_at(item: dict[str, Any]) -> datetime:
    if item.get("timestamp") is not None:
        return parse_timestamp(item["timestamp"], "timestamp")
    if item.get(RECEIVED_AT) is None:
        raise ValueError(f"an item without timestamp needs {RECEIVED_AT}, set when it is received")
    return parse_timestamp(item[RECEIVED_AT], RECEIVED_AT)


def _customer_name(traits: dict[str, Any]) -> str | None:
    if traits.get("name") is not None:
        return _text(traits, "name", 255, prefix="traits.")
    parts = [_text(traits, key, 255, prefix="traits.") for key in ("firstName", "lastName")]
    full = " ".join(part for part in parts if part)
    return full[:255] or None


def _minor_units(properties: dict[str, Any], key: str) -> int | None:
    value = properties.get(key)
    if value is None:
        return None
    # Money is integer minor units: 12.5 or "1250" is a client bug worth reporting, not guessing at.
    if type(value) is not int or not 0 <= value <= MAX_BIGINT:
        raise ValueError(f"properties.{key} must be a non-negative integer amount in minor units (cents)")
    return value


def _currency(properties: dict[str, Any], amount_key: str, amount: int | None) -> str | None:
    value = properties.get("currency")
    if value is None:
        if amount is not None:
            raise ValueError(f"properties.{amount_key} needs properties.currency")
        return None
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValueError("properties.currency must be a three-letter ISO 4217 code")
    return value.upper()


def _subscription_state(properties: dict[str, Any], customer_id: str, status: str | None) -> SubscriptionState:
    mrr = _minor_units(properties, "mrr")
    period_end = properties.get("currentPeriodEnd")
    return SubscriptionState(
        external_id=_text(properties, "subscriptionId", MAX_ID_LENGTH, prefix="properties.") or customer_id,
        status=status,
        plan=_text(properties, "plan", 255, prefix="properties."),
        mrr=mrr,
        currency=_currency(properties, "mrr", mrr),
        current_period_end=None if period_end is None else parse_timestamp(period_end, "properties.currentPeriodEnd"),
    )


def _payment_properties(properties: dict[str, Any], event_type: EventType) -> dict[str, Any]:
    amount = _minor_units(properties, "amount")
    normalized = {**properties, "amount": amount, "currency": _currency(properties, "amount", amount)}
    if event_type is EventType.payment_failed:
        decline_code = _text(properties, "decline_code", 100, prefix="properties.")
        normalized["decline_code"] = decline_code
        normalized["decline_class"] = classify_decline(decline_code)
    return normalized


class InvalidBatch(ValueError):
    """The request body as a whole is unusable: 400 with this reason, nothing stored."""


def parse_batch(body: bytes) -> tuple[list[Any], bool]:
    """The batch's items, and whether they are known acceptable JSON already (else each item is
    checked on its own, so that one bad value refuses its item only)."""
    try:
        document, acceptable = loads_unchecked(body)
    except UnacceptableInput as refusal:
        raise InvalidBatch(f"the body is not valid JSON ({refusal.reason})") from None
    if not isinstance(document, dict) or not isinstance(document.get("batch"), list):
        raise InvalidBatch('the body must be {"batch": [...]}')
    batch = document["batch"]
    if not 1 <= len(batch) <= MAX_BATCH_ITEMS:
        raise InvalidBatch(f"a batch holds 1 to {MAX_BATCH_ITEMS} items, not {len(batch)}")
    return batch, acceptable


def check_item(item: Any, received_at: str, *, acceptable: bool = False) -> Delivery:
    """Stamp `item` with its receive time and check it as the stores and processing will: the
    delivery to store, or ValueError (an UnacceptableInput names the field). What is acknowledged
    is never failed later. `acceptable`: the item is known to be acceptable JSON already."""
    checked_events(item, received_at, acceptable=acceptable)
    event_type = item["event"] if item["type"] == "track" else EventType.identify
    return Delivery(external_id=item["messageId"], event_type=event_type, payload=stored_json(item))


def checked_events(item: Any, received_at: str, *, acceptable: bool = False) -> list[CanonicalEvent]:
    """`check_item`'s checks, and the canonical events the item is processed into."""
    if not isinstance(item, dict):
        raise ValueError("an item must be a JSON object")
    if not acceptable:
        check_json_value(item)
    item[RECEIVED_AT] = received_at
    events = normalize_item(item)
    for event in events:
        check_event(event)
    return events


def stored_json(item: dict[str, Any]) -> str:
    """`item`, acceptable JSON, as compact JSON text that reads back as the same values: orjson
    writes it several times faster than json, which writes what orjson refuses (integers beyond
    64 bits)."""
    try:
        return orjson.dumps(item).decode()
    except orjson.JSONEncodeError:
        return COMPACT_JSON.encode(item)


def is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **extra}, status_code=status)


async def store_batch(db: Database, tenant_id: uuid.UUID, deliveries: list[Delivery], rejected: int) -> list[str]:
    """Store a batch's valid items, count its rejected ones and enqueue the processing of the new
    rows: the new rows' inbox ids, as text (as the job carries them).

    In one `Database.run_unit_of_work`: on SQLite the batches then commit through the one writer
    thread, in the order they came, rather than wait in turn at SQLite's write lock, whose busy
    handler's sleeps made the slowest batches' latency (docs/performance.md, events API)."""
    return await db.run_unit_of_work(
        tenant_id, partial(_store_batch, tenant_id=tenant_id, deliveries=deliveries, rejected=rejected)
    )


def _store_batch(work: UnitOfWork, tenant_id: uuid.UUID, deliveries: list[Delivery], rejected: int) -> list[str]:
    new_ids = list(store_deliveries(work, tenant_id, Source.api, deliveries, rejected=rejected).values())
    if new_ids:
        enqueue(work, PROCESS_JOB, tenant_id=tenant_id, inbox_ids=new_ids)
    return new_ids


async def receive_events(request: Request) -> Response:
    subject: AuthSubject | None = request.scope.get("state", {}).get("auth_subject")
    if subject is None:
        return error_response(401, "UNAUTHENTICATED", "an API key is required: Authorization: Bearer <api key>")
    if not subject.can(Scope.write):
        return error_response(403, "FORBIDDEN", "the events API needs an API key with the write scope")
    db: Database = request.app.state.db
    tenant_id = subject.tenant_id
    if not is_json(request.headers.get("content-type")):
        await store_batch(db, tenant_id, [], rejected=1)
        logger.info("ingest.events_api.rejected", reason="not JSON")
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "the body must be JSON (Content-Type: application/json)")
    try:
        batch, acceptable = parse_batch(await request.body())
    except InvalidBatch as error:
        await store_batch(db, tenant_id, [], rejected=1)
        logger.info("ingest.events_api.rejected", reason=str(error))
        return error_response(400, "BAD_REQUEST", str(error))

    received_at = utcnow().isoformat()
    deliveries: list[Delivery] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(batch):
        try:
            deliveries.append(check_item(item, received_at, acceptable=acceptable))
        except ValueError as error:
            rejected.append({"index": index, "reason": str(error)})
    if not deliveries:
        await store_batch(db, tenant_id, [], rejected=len(rejected))
        logger.info("ingest.events_api.rejected", reason="no valid item", items=len(rejected))
        return error_response(400, "BAD_REQUEST", "no item in the batch is valid", rejected=rejected)

    new_ids = await store_batch(db, tenant_id, deliveries, rejected=len(rejected))
    duplicates = len(deliveries) - len(new_ids)
    logger.info("ingest.events_api.batch", accepted=len(new_ids), duplicates=duplicates, rejected=len(rejected))
    return JSONResponse({"accepted": len(new_ids), "duplicates": duplicates, "rejected": rejected})
