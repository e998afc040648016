"""The HTTP receivers for billing webhooks: `POST /webhooks/whop/{endpoint_id}` and
`POST /webhooks/stripe/{endpoint_id}`.

A delivery goes: find the endpoint (404) → JSON content type (415) → raw body (413, from the
body-size middleware) → signature on the raw body (401) → payload shape (400) → stored in the
inbox with its processing job enqueued → 200. The endpoint is looked up first so that every
later rejection is counted for its tenant. A rejected delivery stores nothing and is logged
without its body; bad input is never a 500.

Endpoints come from a short-lived in-process cache (endpoint_cache.py); a signature that fails
against cached secrets is checked once more against a fresh read, so a rotation in another
process never causes a 401. Storing goes through the database's group-committing writer
(group_commit.py): concurrent deliveries share one transaction per tenant, and each is answered
only after that commit. If the commit fails the answer is 503, and the provider retries.
Everything checked before storing is also what the database needs (printable ids within the
column widths, UTF-8 JSON), so one delivery cannot fail the others in its batch.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from churnsaver.backend.db import Database
from churnsaver.backend.ingest import stripe, whop
from churnsaver.backend.ingest.endpoint_cache import EndpointCache, ReceivingEndpoint, endpoint_cache
from churnsaver.backend.ingest.group_commit import DeliveryNotStored, InboxWriter, inbox_writer
from churnsaver.backend.ingest.inbox import Delivery, count
from churnsaver.backend.ingest.models import InboxStatus, Source
from churnsaver.backend.ingest.signatures import (
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    verify_standard_webhook,
    verify_stripe,
    verify_whop_legacy,
)
from churnsaver.backend.middleware import BodyTooLarge

logger = structlog.get_logger(__name__)

WEBHOOK_MAX_BODY_BYTES = 256 * 1024
RETRY_AFTER_SECONDS = 5
# The two answers to a stored delivery, encoded once.
RECEIVED_NEW = json.dumps({"received": True, "duplicate": False}).encode()
RECEIVED_DUPLICATE = json.dumps({"received": True, "duplicate": True}).encode()
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


class EndpointGone(Exception):
    """The endpoint was deleted since it was cached."""


class InvalidPayload(Rejection):
    pass


class UnsupportedMediaType(Rejection):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _unavailable(reason: str) -> JSONResponse:
    """503: nothing was stored; the provider retries, as it does for any answer but a 2xx."""
    return _error(503, "UNAVAILABLE", f"{reason}; try again", headers={"retry-after": str(RETRY_AFTER_SECONDS)})


def _require_json(content_type: str) -> None:
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("the body is not UTF-8") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidPayload(f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise InvalidPayload("malformed JSON: nested too deeply") from None
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


def _status(ignore_reason: str | None) -> InboxStatus:
    # Tests and unknown types are decided by the source's own module, the one that processes it.
    return InboxStatus.pending if ignore_reason is None else InboxStatus.ignored


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
    payload = _json_object(text)
    # The envelope id is the event's identity: it dedupes a retry however it was re-sent.
    event_id = _required_string(payload, "id", MAX_EXTERNAL_ID)
    event_type = _required_string(payload, "type", MAX_EVENT_TYPE)
    _optional_object(payload, "data")
    status = _status(whop.ignore_reason(payload))
    return Delivery(external_id=event_id, event_type=event_type, payload=text, status=status)


def _whop_v5_delivery(body: bytes) -> Delivery:
    text = _text(body)
    payload = _json_object(text)
    action = _required_string(payload, "action", MAX_EVENT_TYPE)
    _optional_object(payload, "data")
    # v5 bodies rarely carry an event id; Whop retries resend the same bytes, so their digest is one.
    try:
        event_id = _required_string(payload, "id", MAX_EXTERNAL_ID)
    except InvalidPayload:
        event_id = f"sha256:{hashlib.sha256(body).hexdigest()}"
    status = _status(whop.ignore_reason(payload))
    return Delivery(external_id=event_id, event_type=action, payload=text, status=status)


def read_stripe(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> Delivery:
    verify_stripe(body, headers, secrets)
    text = _text(body)
    payload = _json_object(text)
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
        status=_status(stripe.ignore_reason(payload)),
    )


@dataclass(frozen=True, slots=True)
class Intake:
    """What the receivers of one app use: its database, endpoint cache and inbox writer."""

    db: Database
    endpoints: EndpointCache
    writer: InboxWriter


def _intake(request: Request) -> Intake:
    state = request.app.state
    try:
        return state.webhook_intake
    except AttributeError:
        db: Database = state.db
        state.webhook_intake = Intake(db, endpoint_cache(db), inbox_writer(db))
        return state.webhook_intake


async def _find_endpoint(intake: Intake, raw_id: str, source: Source) -> ReceivingEndpoint | None:
    try:
        endpoint_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    return await intake.endpoints.get(endpoint_id, source)


async def _count_rejection(db: Database, endpoint: ReceivingEndpoint) -> None:
    async with db.tenant_unit_of_work(endpoint.tenant_id) as session:
        await count(session, endpoint.tenant_id, endpoint.source, rejected=1)


async def _reject(db: Database, endpoint: ReceivingEndpoint, status: int, code: str, reason: str) -> Response:
    await _count_rejection(db, endpoint)
    logger.warning(
        "webhook.rejected", source=endpoint.source, endpoint_id=str(endpoint.id), status=status, reason=reason
    )
    return _error(status, code, reason)


async def _read_verified(
    intake: Intake, endpoint: ReceivingEndpoint, body: bytes, headers: Mapping[str, str], read: DeliveryReader
) -> tuple[ReceivingEndpoint, Delivery]:
    """The delivery, verified against `endpoint`'s secrets, and the endpoint as last read: when no
    cached secret matches, the endpoint is read again (rotated elsewhere?) and tried once more."""
    try:
        return endpoint, read(body, headers, endpoint.verifying_secrets())
    except SignatureMismatch:
        if not endpoint.cached:
            raise
    fresh = await intake.endpoints.get(endpoint.id, endpoint.source, fresh=True)
    if fresh is None:
        raise EndpointGone
    return fresh, read(body, headers, fresh.verifying_secrets())


async def _receive(request: Request, source: Source, read: DeliveryReader) -> Response:
    intake = _intake(request)
    db = intake.db
    try:
        endpoint = await _find_endpoint(intake, request.path_params["endpoint_id"], source)
    except (SQLAlchemyError, OSError) as error:
        logger.error("webhook.endpoint_lookup_failed", error=type(error).__name__)
        return _unavailable("the endpoint could not be looked up")
    if endpoint is None:
        return _error(404, "NOT_FOUND", "unknown endpoint")
    structlog.contextvars.bind_contextvars(tenant_id=str(endpoint.tenant_id))
    try:
        _require_json(request.headers.get("content-type", ""))
        body = await request.body()
        verified_by, delivery = await _read_verified(intake, endpoint, body, request.headers, read)
    except BodyTooLarge:
        await _count_rejection(db, endpoint)
        raise  # the body-size middleware answers 413
    except SignatureError as error:
        return await _reject(db, endpoint, 401, "INVALID_SIGNATURE", error.reason)
    except Rejection as error:
        return await _reject(db, endpoint, error.status, error.code, error.reason)
    except EndpointGone:
        return _error(404, "NOT_FOUND", "unknown endpoint")
    try:
        new = await intake.writer.store(verified_by.tenant_id, verified_by.source, delivery)
    except DeliveryNotStored as error:
        return _unavailable(str(error))
    # Only now, after the commit: a 2xx promises the delivery is stored.
    return Response(RECEIVED_NEW if new else RECEIVED_DUPLICATE, media_type="application/json")


async def receive_whop(request: Request) -> Response:
    return await _receive(request, Source.whop, read_whop)


async def receive_stripe(request: Request) -> Response:
    return await _receive(request, Source.stripe, read_stripe)


def webhook_routes() -> list[Route]:
    return [
        Route("/webhooks/whop/{endpoint_id}", receive_whop, methods=["POST"]),
        Route("/webhooks/stripe/{endpoint_id}", receive_stripe, methods=["POST"]),
    ]
