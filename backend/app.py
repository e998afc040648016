"""The app factory: the composition root that wires the HTTP app, GraphQL, jobs and the database."""

import contextlib
import gc
from collections.abc import AsyncIterator
from functools import partial

import redis.asyncio as aioredis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, client_host
from churnsaver.backend.core.operator_access import metrics_refusal
from churnsaver.backend.core.pubsub import broker_for, publishing_through
from churnsaver.backend.core.sqlite_writer import switching_threads_often
from churnsaver.backend.ingest.events_api import MAX_BODY_BYTES as EVENTS_MAX_BODY_BYTES
from churnsaver.backend.ingest.events_api import receive_events
from churnsaver.backend.ingest.webhook_receivers import WebhookReceivers
from churnsaver.graphql.console import STATIC_PATH, console_assets
from churnsaver.graphql.view import GraphQLView
from churnsaver.jobs.embedded import jobs_in_child_process
from churnsaver.jobs.worker import running_jobs
from churnsaver.tenants.key_authentication import KeyAuthenticator
from churnsaver.tenants.middleware import AuthenticationMiddleware
from churnsaver.widgets.channel_pages import ChannelPages
from churnsaver.widgets.offer_pages import OfferPages
from churnsaver.widgets.sms_webhooks import SmsWebhooks
from churnsaver.widgets.widget_api import WidgetApi
from churnsaver.widgets.widget_demo import WidgetDemo

logger = structlog.get_logger(__name__)


# What `GET /` lists for an API client: where each part of the API is.
ENDPOINTS = {
    "service": "churnsaver",
    "endpoints": {
        "graphql": "/graphql",
        "health": "/healthz",
        "readiness": "/readyz",
        "metrics": "/metrics",
        "events": "/v1/events",
        "widget": {"script": "/widgets/v1/churnsaver.js", "session": "/widgets/v1/session"},
        "webhooks": {"whop": "/webhooks/whop/{endpointId}", "stripe": "/webhooks/stripe/{endpointId}"},
    },
}


async def index(request: Request, *, console: bool) -> Response:
    """A browser goes to the GraphQL console (the dashboard, once there is one); an API client,
    or anyone where the console is off (production), gets the list of endpoints."""
    if console and "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/graphql", status_code=303)
    return JSONResponse(ENDPOINTS)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}
    db: Database = request.app.state.db
    try:
        await db.ping()
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    settings: Settings = request.app.state.settings
    if settings.redis_url:
        try:
            client = aioredis.from_url(settings.redis_url, socket_connect_timeout=2)
            async with client:
                await client.ping()
            checks["broker"] = "ok"
        except Exception as error:
            checks["broker"] = f"unavailable: {type(error).__name__}"
    else:
        checks["broker"] = "ok (in-process)"
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    refusal = metrics_refusal(client_host(request.scope), request.headers.get("authorization"), settings)
    if refusal is not None:
        status, body = refusal
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        return Response(body, status_code=status, media_type="application/json", headers=headers)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return JSONResponse(
        {"error": {"code": f"HTTP_{error.status_code}", "message": error.detail}},
        status_code=error.status_code,
        headers=error.headers,
    )


async def server_error(request: Request, error: Exception) -> Response:
    logger.error("http.unhandled_error", exc_info=error)
    return JSONResponse({"error": {"code": "INTERNAL", "message": "internal server error"}}, status_code=500)


YOUNG_COLLECTION_THRESHOLD = 10_000


class App(Starlette):
    """Starlette, with the webhook receivers in front of its whole stack. Webhooks, the busiest
    traffic, take a short way past the rest (webhook_receivers.py), the error middleware
    included: the receivers answer an unexpected error themselves, as the app's handler would."""

    def build_middleware_stack(self) -> ASGIApp:
        return WebhookReceivers(super().build_middleware_stack(), self.state.db)


def create_app(settings: Settings | None = None, *, run_jobs: bool = True) -> Starlette:
    """The ASGI app. `run_jobs` runs the jobs for the app's lifetime: with Redis, the outbox relay
    and scheduler here (workers are separate processes); without, relay, scheduler and worker in
    a child process of this one (jobs/embedded.py)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    settings.resolved_secret_key  # noqa: B018 - outside production, generated on first start and kept
    db = Database(settings)
    authenticator = KeyAuthenticator.from_settings(db, settings)
    # Subscriptions listen, and what this process commits is published, through one broker.
    broker = broker_for(settings)
    graphql = GraphQLView(db, settings, authenticator, broker)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What start-up loaded lives as long as the server: frozen, a full collection scans only
        # what requests left behind, not the whole heap (docs/performance.md, garbage collector).
        gc.freeze()
        # A young collection every 10,000 new objects finds most of a request's objects freed,
        # rather than moving them to the older generations to be scanned again.
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
        # SQLite is written by a thread of this process (sqlite_writer.py), beside the event loop.
        threads = switching_threads_often() if settings.is_sqlite else contextlib.nullcontext()
        try:
            with threads, publishing_through(broker):
                if run_jobs and settings.embedded_jobs:
                    async with jobs_in_child_process(settings):
                        yield
                elif run_jobs:
                    async with running_jobs(settings, db, consume=False):
                        yield
                else:
                    yield
        finally:
            broker.close()
            await db.dispose()
            gc.unfreeze()  # a process that goes on (the tests) may collect it all again
            gc.set_threshold(*thresholds)

    app = App(
        routes=[
            # Matched in order: the busiest routes first (webhooks are answered before routing).
            Route("/v1/events", receive_events, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/", partial(index, console=graphql.graphql_ide is not None)),
            console_assets(),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *ChannelPages(db, settings).routes(),
            *SmsWebhooks(db, settings).routes(),
            *WidgetApi(db, settings).routes(),
            *OfferPages(db, settings).routes(),
            *(WidgetDemo(db, settings).routes() if settings.env is not Environment.production else []),
        ],
        middleware=[
            Middleware(RequestContextMiddleware),
            Middleware(
                BodySizeLimitMiddleware,
                limits={
                    "/graphql": settings.graphql_max_body_bytes,
                    "/v1/events": EVENTS_MAX_BODY_BYTES,
                },
                default_limit=settings.graphql_max_body_bytes,
            ),
            Middleware(
                AuthenticationMiddleware,
                db=db,
                authenticator=authenticator,
                protected_prefixes=("/graphql", "/v1"),
                public_prefixes=(f"{STATIC_PATH}/",),
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    return app
