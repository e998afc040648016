"""The HTTP receivers for billing webhooks: `POST /webhooks/whop/{endpoint_id}` and
`POST /webhooks/stripe/{endpoint_id}`.

A delivery goes: find the endpoint (404) → JSON content type (415) → raw body (413) → signature
on the raw body (401) → payload shape (400) → stored in the inbox with its processing job
enqueued → 200. The endpoint is looked up first so that every later rejection is counted for its
tenant. A rejected delivery stores nothing and is logged without its body; bad input is never a
500. Reading and checking a delivery is webhook_payloads.py.

`WebhookReceivers` is plain ASGI at the front of the app's middleware: it answers these two
paths itself and hands every other request on. A provider's burst is the app's busiest traffic,
and the general stack (routing, Request and Response objects, a middleware layer per concern
wrapping every send) cost more than twice what the receiver itself does. It does what that
stack would do for a webhook: request id and security headers, the body-size limit, metrics and
the access log (middleware.py).

Endpoints come from a short-lived in-process cache (endpoint_cache.py); a signature that fails
against cached secrets is checked once more against a fresh read, so a rotation in another
process never causes a 401. Storing goes through the database's group-committing writer
(group_commit.py): concurrent deliveries share one transaction per tenant, and each is answered
only after that commit. If the commit fails the answer is 503, and the provider retries.
"""

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.middleware import (
    BodyTooLarge,
    answer_headers,
    begin_request,
    end_request,
    is_secure,
    json_error,
    read_body,
    request_id_of,
    too_large,
)
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.endpoint_cache import EndpointCache, ReceivingEndpoint, endpoint_cache
from churnsaver.backend.ingest.group_commit import DeliveryNotStored, InboxWriter, inbox_writer
from churnsaver.backend.ingest.inbox import Delivery, count
from churnsaver.backend.ingest.webhook_payloads import DeliveryReader, Rejection, read_stripe, read_whop, require_json
from churnsaver.backend.integrations.signatures import SignatureError, SignatureMismatch

logger = structlog.get_logger(__name__)

WEBHOOK_MAX_BODY_BYTES = 256 * 1024
RETRY_AFTER_SECONDS = 5
WEBHOOK_PATH = re.compile(r"^/webhooks/(whop|stripe)/([^/]+)$")
READERS: dict[str, tuple[Source, DeliveryReader]] = {
    "whop": (Source.whop, read_whop),
    "stripe": (Source.stripe, read_stripe),
}
JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]  # all but those answer_headers adds


def _json_answer(status: int, body: bytes, extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> Answer:
    return Answer(status, body, [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra_headers])


# The two answers to a stored delivery, encoded once.
RECEIVED_NEW = _json_answer(200, json.dumps({"received": True, "duplicate": False}).encode())
RECEIVED_DUPLICATE = _json_answer(200, json.dumps({"received": True, "duplicate": True}).encode())


def _error(status: int, code: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Answer:
    return _json_answer(*json_error(status, code, message), headers)


def _unavailable(reason: str) -> Answer:
    """503: nothing was stored; the provider retries, as it does for any answer but a 2xx."""
    return _error(503, "UNAVAILABLE", f"{reason}; try again", ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),))


NOT_FOUND = _error(404, "NOT_FOUND", "unknown endpoint")
INTERNAL_ERROR = _error(500, "INTERNAL", "internal server error")
METHOD_NOT_ALLOWED = _error(405, "HTTP_405", "Method Not Allowed", ((b"allow", b"POST"),))


class EndpointGone(Exception):
    """The endpoint was deleted since it was cached."""


@dataclass(frozen=True, slots=True)
class Intake:
    """What the receivers of one app use: its database, endpoint cache and inbox writer."""

    db: Database
    endpoints: EndpointCache
    writer: InboxWriter


class WebhookReceivers:
    """Answers webhook deliveries; any other request goes on to `app`."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.intake = Intake(db, endpoint_cache(db), inbox_writer(db))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = WEBHOOK_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        raw_headers = dict(scope["headers"])
        request_id = request_id_of(raw_headers)
        begin_request(scope, request_id)
        started = time.perf_counter()
        status = 499  # the sender hung up before its body arrived: nobody to answer
        try:
            answer = await self._answer(route, scope["method"], raw_headers, receive)
            status = answer.status
            headers = answer_headers(answer.headers, request_id, secure=is_secure(scope))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        except ClientDisconnect:
            pass
        finally:
            end_request(scope, status, started)

    async def _answer(
        self, route: re.Match[str], method: str, raw_headers: dict[bytes, bytes], receive: Receive
    ) -> Answer:
        source, read = READERS[route[1]]
        if method != "POST":
            return METHOD_NOT_ALLOWED
        try:
            return await _receive(self.intake, source, read, route[2], raw_headers, receive)
        except ClientDisconnect:
            raise
        except Exception:
            # The app's error handler, which sits inside the receivers: a JSON 500, logged.
            logger.exception("webhook.unhandled_error")
            return INTERNAL_ERROR


async def _find_endpoint(intake: Intake, raw_id: str, source: Source) -> ReceivingEndpoint | None:
    try:
        endpoint_id = _endpoint_id(raw_id) if len(raw_id) == CANONICAL_UUID_LENGTH else uuid.UUID(raw_id)
    except ValueError:
        return None
    return await intake.endpoints.get(endpoint_id, source)


# uuid.UUID also reads "urn:uuid:…", braces and any number of hyphens: ids of another length are
# parsed each time, so the cache below never holds more than 4,096 short strings.
CANONICAL_UUID_LENGTH = 36


@lru_cache(maxsize=4096)
def _endpoint_id(raw_id: str) -> uuid.UUID:
    """The endpoint id in a delivery's path, as our URLs write it. uuid.UUID parses in Python, on
    every delivery, and a provider sends to the same URL over and over. A malformed
    id raises ValueError, which is not cached."""
    return uuid.UUID(raw_id)


async def _count_rejection(db: Database, endpoint: ReceivingEndpoint) -> None:
    async with db.tenant_unit_of_work(endpoint.tenant_id) as session:
        await count(session, endpoint.tenant_id, endpoint.source, rejected=1)


async def _reject(db: Database, endpoint: ReceivingEndpoint, answer: Answer, reason: str) -> Answer:
    await _count_rejection(db, endpoint)
    logger.warning(
        "webhook.rejected", source=endpoint.source, endpoint_id=str(endpoint.id), status=answer.status, reason=reason
    )
    return answer


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


def _text_headers(raw_headers: dict[bytes, bytes]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers.items()}


async def _receive(
    intake: Intake, source: Source, read: DeliveryReader, raw_id: str, raw_headers: dict[bytes, bytes], receive: Receive
) -> Answer:
    db = intake.db
    try:
        endpoint = await _find_endpoint(intake, raw_id, source)
    except (SQLAlchemyError, OSError) as error:
        logger.error("webhook.endpoint_lookup_failed", error=type(error).__name__)
        return _unavailable("the endpoint could not be looked up")
    if endpoint is None:
        return NOT_FOUND
    structlog.contextvars.bind_contextvars(tenant_id=endpoint.tenant_id_text)
    try:
        require_json(raw_headers.get(b"content-type", b"").decode("latin-1"))
        body = await read_body(receive, raw_headers, WEBHOOK_MAX_BODY_BYTES)
        verified_by, delivery = await _read_verified(intake, endpoint, body, _text_headers(raw_headers), read)
    except BodyTooLarge:
        return await _reject(db, endpoint, _json_answer(*too_large(WEBHOOK_MAX_BODY_BYTES)), "body too large")
    except SignatureError as error:
        return await _reject(db, endpoint, _error(401, "INVALID_SIGNATURE", error.reason), error.reason)
    except Rejection as error:
        return await _reject(db, endpoint, _error(error.status, error.code, error.reason), error.reason)
    except EndpointGone:
        return NOT_FOUND
    try:
        new = await intake.writer.store(verified_by.tenant_id, verified_by.source, delivery)
    except DeliveryNotStored as error:
        return _unavailable(str(error))
    # Only now, after the commit: a 2xx promises the delivery is stored.
    return RECEIVED_NEW if new else RECEIVED_DUPLICATE
