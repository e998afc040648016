"""Pure ASGI middleware, outermost first: request context, body-size limit. Authentication, which
needs tenants and API keys, is `tenants/middleware.py`."""

import json
import logging
import os
import random
import re
import time
from functools import lru_cache

import structlog
from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger("churnsaver.http")
REQUESTS = Counter("churnsaver_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("churnsaver_http_request_duration_seconds", "HTTP request latency", ["route"])
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Seeded from the OS at start-up, and again in a forked child (a pre-forking server), which would
# otherwise make the same ids as its parent. Not os.urandom per request: it lets go of the GIL,
# and taking it back can wait for another thread (SQLite's writer) while requests queue.
_request_ids = random.Random()
os.register_at_fork(after_in_child=_request_ids.seed)

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
JSON_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# Only on answers that came over TLS: on plain http a browser ignores it, and a client that
# reached us unencrypted may have no https to go to.
HSTS = (b"strict-transport-security", b"max-age=31536000")


def json_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message}}).encode()


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Accepted webhook deliveries are logged at debug level: a provider's burst would write a line
# per delivery, and each is kept in the inbox with its time and counted in the ingest counters
# (and in the metrics). Refused ones are logged as every other request is, with their reason.
QUIET_WHEN_ACCEPTED = frozenset({"/webhooks"})


@lru_cache(maxsize=256)
def _request_counter(method: str, route: str, status: int) -> Counter:
    """The labelled counter, looked up once: `labels()` takes a lock and builds a key per call."""
    return REQUESTS.labels(method, route, str(status))


@lru_cache(maxsize=32)
def _latency(route: str) -> Histogram:
    return LATENCY.labels(route)


def route_label(path: str) -> str:
    """A low-cardinality label: the first path segment of known routes."""
    first = path.strip("/").split("/", 1)[0]
    return f"/{first}" if first in {"graphql", "healthz", "readyz", "metrics", "v1", "webhooks", "widgets"} else "other"


def client_host(scope: Scope) -> str:
    """The client's address: the socket peer, or what a proxy the server trusts says it is
    (uvicorn's `--forwarded-allow-ips`, which rewrites the scope from X-Forwarded-For)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def request_id_of(headers: dict[bytes, bytes]) -> str:
    """The caller's `x-request-id` when it is a sane one, else a new id: 128 random bits as 32
    hex digits. Not a uuid4: an id only has to be unique, and making a UUID object costs more than
    the rest of the request context."""
    incoming = headers.get(b"x-request-id")
    if incoming is not None and REQUEST_ID_PATTERN.match(text := incoming.decode("latin-1")):
        return text
    return f"{_request_ids.getrandbits(128):032x}"


def begin_request(scope: Scope, request_id: str) -> None:
    """The request id in the scope and in every log line of the request."""
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def is_secure(scope: Scope) -> bool:
    """Whether the request came over TLS: to this server, or to a proxy the server trusts that says
    so (uvicorn's `--forwarded-allow-ips` sets the scheme from X-Forwarded-Proto)."""
    return scope.get("scheme") in ("https", "wss")


def answer_headers(
    headers: list[tuple[bytes, bytes]], request_id: str, *, secure: bool = False
) -> list[tuple[bytes, bytes]]:
    """`headers` of a response plus the request id and the security headers every answer carries,
    and HSTS on an answer that goes out over TLS (`secure`)."""
    answer = [*headers, (b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
    if _is_json(headers):
        answer.append(JSON_CSP)
    if secure:
        answer.append(HSTS)
    return answer


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.startswith((b"application/json", b"application/graphql-response+json"))
    return False


def end_request(scope: Scope, status: int, started: float) -> None:
    """Metrics and the access log line of a finished HTTP request."""
    elapsed = time.perf_counter() - started
    route = route_label(scope["path"])
    _request_counter(scope["method"], route, status).inc()
    _latency(route).observe(elapsed)
    quiet = status < 400 and route in QUIET_WHEN_ACCEPTED
    if quiet and not logging.getLogger().isEnabledFor(logging.DEBUG):
        return  # a line that debug level drops is not worth building on the busiest path
    log = logger.debug if quiet else logger.info
    log("http.request", method=scope["method"], path=scope["path"], status=status, duration_ms=round(elapsed * 1000, 2))


class RequestContextMiddleware:
    """Request id, structured access log, metrics and security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(dict(scope["headers"]))
        begin_request(scope, request_id)
        started = time.perf_counter()
        status = 500
        secure = is_secure(scope)
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = answer_headers(list(message.get("headers", [])), request_id, secure=secure)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answered here rather than by Starlette's outermost handler: the 500 keeps the request
            # id and the security headers, and, not raised on to the server, the connection stays open.
            if scope["type"] != "http" or response_started:
                raise
            logger.exception("http.unhandled_error", method=scope["method"], path=scope["path"])
            await send_json(send_with_headers, *json_error(500, "INTERNAL", "internal server error"))
        finally:
            if scope["type"] == "http":
                end_request(scope, status, started)


class BodyTooLarge(Exception):
    pass


def declared_too_large(headers: dict[bytes, bytes], limit: int) -> bool:
    """Whether the request's Content-Length says (or, being no number, may hide) more than `limit`."""
    declared = headers.get(b"content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > limit)


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The whole request body; BodyTooLarge as soon as it is declared or read to be over `limit`."""
    if declared_too_large(headers, limit):
        raise BodyTooLarge
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodySizeLimitMiddleware:
    """Refuse request bodies over a per-path limit with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default_limit: int) -> None:
        self.app = app
        self.limits = limits
        self.default_limit = default_limit

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits.items():
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if declared_too_large(dict(scope["headers"]), limit):
            await send_json(send, *too_large(limit))
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await send_json(send, *too_large(limit))


def too_large(limit: int) -> tuple[int, bytes]:
    return json_error(413, "PAYLOAD_TOO_LARGE", f"request body is over {limit} bytes")
