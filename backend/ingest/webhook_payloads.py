"""Reading a webhook delivery: its signature checked on the raw body, then its payload's shape.

`read_whop` and `read_stripe` take the raw body, the request headers and the endpoint's current
secrets, and return the `Delivery` to store, or raise: a `SignatureError` (401) or a `Rejection`
(400, 415) whose reason goes back to the sender. Everything checked here is also what the
database needs (printable ids within the column widths, JSON every store can hold, as
core/accepted_json.py defines it), so one delivery cannot fail the others stored in the same
transaction; and the timestamps processing reads are read here as it reads them, so an
acknowledged delivery does not fail on one later.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from churnsaver.backend.core.accepted_json import UnacceptableInput, loads_accepted
from churnsaver.backend.ingest.inbox import Delivery
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.integrations.signatures import (
    MissingSignature,
    verify_standard_webhook,
    verify_stripe,
    verify_whop_legacy,
)
from churnsaver.backend.integrations.stripe import events as stripe
from churnsaver.backend.integrations.whop import events as whop

MAX_EXTERNAL_ID = 255  # inbox_events.external_id
MAX_EVENT_TYPE = 100  # inbox_events.event_type

DeliveryReader = Callable[[bytes, Mapping[str, str], Sequence[str]], Delivery]


class Rejection(Exception):
    """A delivery refused before anything was stored; `reason` goes back to the sender."""

    status = 400
    code = "INVALID_PAYLOAD"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPayload(Rejection):
    pass


class UnsupportedMediaType(Rejection):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


def require_json(content_type: str) -> None:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("the body is not UTF-8") from None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = loads_accepted(body)
    except UnacceptableInput as refusal:
        raise InvalidPayload(str(refusal)) from None
    if not isinstance(payload, dict):
        raise InvalidPayload("the body must be a JSON object")
    return payload


def _required_string(payload: Mapping[str, Any], field: str, max_length: int) -> str:
    value = payload.get(field)
    # Printable only: a NUL (valid as "\u0000" in JSON) is refused by PostgreSQL text columns.
    if not isinstance(value, str) or not value or not value.isprintable():
        raise InvalidPayload(f"'{field}' must be a non-empty string of printable characters")
    if len(value) > max_length:
        raise InvalidPayload(f"'{field}' is longer than {max_length} characters")
    return value


def _optional_object(payload: Mapping[str, Any], field: str) -> None:
    if field in payload and not isinstance(payload[field], dict):
        raise InvalidPayload(f"'{field}' must be an object")


TimesCheck = Callable[[dict[str, Any]], None]


def _status(ignore_reason: str | None, check_times: TimesCheck, payload: dict[str, Any]) -> InboxStatus:
    """Pending, with the timestamps processing reads checked, or ignored. Tests and unknown types
    are decided by the source's own module, the one that processes it."""
    if ignore_reason is not None:
        return InboxStatus.ignored
    try:
        check_times(payload)
    except ValueError as error:
        raise InvalidPayload(str(error)) from None
    return InboxStatus.pending


def read_whop(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> Delivery:
    """A Whop v1 envelope (Standard Webhooks) or a legacy v5 body (`x-whop-signature`)."""
    if "webhook-signature" in headers or "webhook-id" in headers:
        verify_standard_webhook(body, headers, secrets)
        return _whop_v1_delivery(body)
    if "x-whop-signature" in headers:
        verify_whop_legacy(body, headers, secrets)
        return _whop_v5_delivery(body)
    raise MissingSignature("a Standard Webhooks signature (webhook-signature) or an x-whop-signature is required")


def _whop_v1_delivery(body: bytes) -> Delivery:
    text = _text(body)
    payload = _json_object(body)
    # The envelope id is the event's identity: it dedupes a retry however it was re-sent.
    event_id = _required_string(payload, "id", MAX_EXTERNAL_ID)
    event_type = _required_string(payload, "type", MAX_EVENT_TYPE)
    _optional_object(payload, "data")
    status = _status(whop.ignore_reason(payload), whop.check_times, payload)
    return Delivery(external_id=event_id, event_type=event_type, payload=text, status=status)


def _whop_v5_delivery(body: bytes) -> Delivery:
    text = _text(body)
    payload = _json_object(body)
    action = _required_string(payload, "action", MAX_EVENT_TYPE)
    _optional_object(payload, "data")
    # v5 bodies rarely carry an event id; Whop retries resend the same bytes, so their digest is one.
    try:
        event_id = _required_string(payload, "id", MAX_EXTERNAL_ID)
    except InvalidPayload:
        event_id = f"sha256:{hashlib.sha256(body).hexdigest()}"
    status = _status(whop.ignore_reason(payload), whop.check_times, payload)
    return Delivery(external_id=event_id, event_type=action, payload=text, status=status)


def read_stripe(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> Delivery:
    verify_stripe(body, headers, secrets)
    text = _text(body)
    payload = _json_object(body)
    event_id = _required_string(payload, "id", MAX_EXTERNAL_ID)
    event_type = _required_string(payload, "type", MAX_EVENT_TYPE)
    created = payload.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise InvalidPayload("'created' must be a Unix timestamp")
    _optional_object(payload, "data")
    return Delivery(
        external_id=event_id,
        event_type=event_type,
        payload=text,
        status=_status(stripe.ignore_reason(payload), stripe.check_times, payload),
    )
