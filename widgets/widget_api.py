"""The widget's public HTTP API under `/widgets/v1/`, and the widget script itself.

Every call carries the tenant's publishable key (`X-Churnsaver-Key`) and, in its JSON body, the
customer's external id with the merchant server's signature of it (embeds/service.py). CORS is
answered only for origins a tenant allows: a preflight, which carries no key, learns only whether
some tenant allows its origin; the call itself is then refused unless its own tenant does, so a
foreign page can neither read an answer nor make the server act. Calls are rate-limited per
client address before anything is read, and per customer once the caller is verified.
"""

import json
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from churnsaver.backend.billing import service as billing
from churnsaver.backend.campaigns.service import in_holdout
from churnsaver.backend.cases.service import open_cases_of_customer
from churnsaver.backend.channels.service import in_app_messages
from churnsaver.backend.channels.settings import load_settings as load_channel_settings
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import DomainError, InvalidInput, NotFound
from churnsaver.backend.core.middleware import client_host
from churnsaver.backend.core.rate_limit import RequestLimiter, failure_storage
from churnsaver.backend.embeds.repository import find_by_publishable_key, origin_allowed_by_any_tenant
from churnsaver.backend.embeds.service import CallerRefused, WidgetCaller, verify_caller
from churnsaver.backend.embeds.settings import LOCALES, CancelHandling, WidgetSettings, normalized_origin
from churnsaver.backend.offers import service as offers
from churnsaver.backend.offers.models import RedemptionStatus
from churnsaver.backend.offers.service import OfferChoice
from churnsaver.tenants.models import Tenant

logger = structlog.get_logger(__name__)

SCRIPT_PATH = Path(__file__).resolve().parent / "static" / "churnsaver.js"
KEY_HEADER = "x-churnsaver-key"
MAX_BODY = 8 * 1024
MAX_COMMENT = 1000
PREFLIGHT_MAX_AGE = "600"


class Refusal(Exception):
    """A widget call answered with an error; `cors` when the caller's origin may read it."""

    def __init__(self, status: int, code: str, message: str, *, cors: bool, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.cors, self.retry_after = status, code, message, cors, retry_after


@dataclass(frozen=True, slots=True)
class WidgetCall:
    """A verified call: who it acts for, its JSON body and the page's origin."""

    caller: WidgetCaller
    body: dict[str, Any]
    origin: str


def locale_for(requested: object, accept_language: str | None, default: str) -> str:
    """The widget's language: the page's (`navigator.language`), the browser's, or the tenant's."""
    candidates = [requested] if isinstance(requested, str) else []
    candidates += [part.split(";")[0].strip() for part in (accept_language or "").split(",")]
    for candidate in candidates:
        if isinstance(candidate, str) and (language := candidate.split("-")[0].lower()) in LOCALES:
            return language
    return default if default in LOCALES else "en"


def branding(settings: WidgetSettings, tenant_name: str) -> dict[str, Any]:
    return {"name": settings.brand_name or tenant_name, "logoUrl": settings.logo_url, "color": settings.brand_color}


async def offers_now(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    cancel_reason: str | None,
    locale: str,
    record: bool,
) -> tuple[uuid.UUID | None, list[OfferChoice]]:
    """The offers to show the customer now and the open case they answer: the most pressing open
    case that has any (a usage drop may have none while a failed payment has), else the offers
    for the customer without a case."""
    holdout = await in_holdout(session, tenant_id, customer_id)
    ask = partial(
        offers.eligible_offers,
        session,
        tenant_id,
        customer_id,
        cancel_reason=cancel_reason,
        holdout=holdout,
        locale=locale,
        surface="widget",
        record=record,
    )
    for case in await open_cases_of_customer(session, tenant_id, customer_id):
        if choices := await ask(case_id=case.id):
            return case.id, choices
    return None, await ask(case_id=None)


def refusal_of(error: DomainError) -> Refusal:
    """A domain's typed refusal as the widget's answer: 404 for what is not (or not yours), 409
    for an offer this customer cannot take now, 400 for bad input."""
    status = 404 if isinstance(error, NotFound) else 400 if isinstance(error, InvalidInput) else 409
    return Refusal(status, error.code, str(error), cors=True)


class WidgetApi:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        storage = failure_storage(settings.redis_url)
        self.per_ip = RequestLimiter(settings.widget_limit_per_ip, storage, "widget-ip")
        self.per_customer = RequestLimiter(settings.widget_limit_per_customer, storage, "widget-customer")
        self.script = SCRIPT_PATH.read_bytes()

    def routes(self) -> list[Route]:
        return [
            Route("/widgets/v1/churnsaver.js", self.script_file, methods=["GET", "HEAD"]),
            Route("/widgets/v1/session", self.session, methods=["POST", "OPTIONS"]),
            Route("/widgets/v1/offers/{offer_id}/accept", self.accept, methods=["POST", "OPTIONS"]),
            Route("/widgets/v1/cancel", self.cancel, methods=["POST", "OPTIONS"]),
        ]

    async def script_file(self, request: Request) -> Response:
        headers = {
            "Cache-Control": "public, max-age=300",
            # Loaded by other sites' pages: the one resource here meant to be.
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        return Response(self.script, media_type="text/javascript; charset=utf-8", headers=headers)

    async def _preflight(self, request: Request) -> Response:
        origin = normalized_origin(request.headers.get("origin", ""))
        if origin is not None:
            async with self.db.system_session() as session:
                allowed = await origin_allowed_by_any_tenant(session, origin)
            if allowed:
                return Response(
                    status_code=204,
                    headers={
                        "Access-Control-Allow-Origin": origin,
                        "Access-Control-Allow-Methods": "POST",
                        "Access-Control-Allow-Headers": "Content-Type, X-Churnsaver-Key",
                        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                        "Vary": "Origin",
                    },
                )
        return Response(status_code=403, headers={"Vary": "Origin"})

    def _answer(self, origin: str | None, payload: dict[str, Any], status: int = 200, *, cors: bool = True) -> Response:
        headers = {"Vary": "Origin", "Cache-Control": "no-store"}
        if cors and origin is not None:
            headers["Access-Control-Allow-Origin"] = origin
        return JSONResponse(payload, status_code=status, headers=headers)

    def _refused(self, origin: str | None, refusal: Refusal) -> Response:
        response = self._answer(
            origin, {"error": {"code": refusal.code, "message": refusal.message}}, refusal.status, cors=refusal.cors
        )
        if refusal.retry_after is not None:
            response.headers["Retry-After"] = str(refusal.retry_after)
        return response

    async def _verified(self, request: Request, origin: str | None) -> WidgetCall:
        """The call's caller, verified; Refusal says why not (in the order a caller can fix it)."""
        if (wait := await self.per_ip.hit(client_host(request.scope))) is not None:
            raise Refusal(429, "RATE_LIMITED", "too many requests from this address", cors=False, retry_after=wait)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise Refusal(413, "TOO_LARGE", "the body is too large", cors=False)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise Refusal(400, "BAD_REQUEST", "the body is a JSON object with customer and signature", cors=False)
        key = request.headers.get(KEY_HEADER, "")
        row = None
        if key.startswith("pk_") and len(key) <= 64:
            async with self.db.system_session() as session:
                row = await find_by_publishable_key(session, key)
        if row is None:
            raise Refusal(401, "UNAUTHENTICATED", "X-Churnsaver-Key is not a publishable key", cors=False)
        try:
            async with self.db.tenant_unit_of_work(row.tenant_id) as session:
                caller = await verify_caller(
                    session,
                    row,
                    secret_key=self.settings.resolved_secret_key,
                    origin=origin,
                    external_id=body.get("customer"),
                    signature=body.get("signature"),
                )
        except CallerRefused as refused:
            code = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN"}[refused.status]
            # A page on an origin the tenant does not allow may not read even the refusal.
            raise Refusal(refused.status, code, refused.reason, cors=refused.status != 403) from None
        if (wait := await self.per_customer.hit(f"{caller.tenant_id}:{caller.external_id}")) is not None:
            raise Refusal(429, "RATE_LIMITED", "too many requests for this customer", cors=True, retry_after=wait)
        assert origin is not None  # verify_caller refuses a call without one
        return WidgetCall(caller=caller, body=body, origin=origin)

    async def _call(self, request: Request) -> tuple[str | None, WidgetCall | Response]:
        origin = normalized_origin(request.headers.get("origin", ""))
        try:
            return origin, await self._verified(request, origin)
        except Refusal as refusal:
            logger.info("widget.refused", status=refusal.status, reason=refusal.message)
            return origin, self._refused(origin, refusal)

    async def session(self, request: Request) -> Response:
        """The customer's in-app messages, the offers to show now (for the survey reason given, in
        the cancel flow) and the widget's settings."""
        if request.method == "OPTIONS":
            return await self._preflight(request)
        origin, call = await self._call(request)
        if isinstance(call, Response):
            return call
        caller = call.caller
        cancel_reason = call.body.get("cancelReason")
        if cancel_reason is not None and (
            not isinstance(cancel_reason, str) or caller.settings.reason(cancel_reason) is None
        ):
            return self._refused(
                origin, Refusal(400, "BAD_REQUEST", "cancelReason is one of the survey's codes", cors=True)
            )
        async with self.db.tenant_unit_of_work(caller.tenant_id) as session:
            tenant = await session.get(Tenant, caller.tenant_id)
            channel_settings = await load_channel_settings(session, caller.tenant_id)
            locale = locale_for(
                call.body.get("locale"), request.headers.get("accept-language"), channel_settings.default_locale
            )
            messages = []
            choices: list[OfferChoice] = []
            case_id: uuid.UUID | None = None
            if caller.customer_id is not None:
                messages = await in_app_messages(session, caller.tenant_id, caller.customer_id)
                # A page view records nothing (below), but a new tenant's offers exist from its first one.
                await offers.ensure_default_offers(session, caller.tenant_id)
                case_id, choices = await offers_now(
                    session,
                    caller.tenant_id,
                    caller.customer_id,
                    cancel_reason=cancel_reason,
                    locale=locale,
                    # Shown only in the cancel flow: an ordinary page view shows no offer.
                    record=cancel_reason is not None,
                )
        settings = caller.settings
        payload = {
            "customer": {"known": caller.customer_id is not None, "caseId": str(case_id) if case_id else None},
            "locale": locale,
            "brand": branding(settings, tenant.name if tenant is not None else ""),
            "messages": [
                {"id": str(message.id), "text": message.body_text or "", "createdAt": message.created_at.isoformat()}
                for message in messages
            ],
            "offers": [
                {"id": str(c.offer_id), "kind": c.kind, "title": c.title, "description": c.description} for c in choices
            ],
            "survey": {"reasons": [{"code": r.code, "label": r.label_in(locale)} for r in settings.survey_reasons]},
            "cancelHandling": settings.cancel_handling.value,
        }
        return self._answer(origin, payload)

    async def cancel(self, request: Request) -> Response:
        """The customer confirmed the cancellation, with a survey reason: handed back to the
        merchant's page (MERCHANT_EVENT) or carried out through billing (BILLING)."""
        if request.method == "OPTIONS":
            return await self._preflight(request)
        origin, call = await self._call(request)
        if isinstance(call, Response):
            return call
        caller, body = call.caller, call.body
        reason, comment = body.get("reason"), body.get("comment") or ""
        if not isinstance(reason, str) or caller.settings.reason(reason) is None:
            return self._refused(origin, Refusal(400, "BAD_REQUEST", "reason is one of the survey's codes", cors=True))
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            return self._refused(
                origin, Refusal(400, "BAD_REQUEST", f"comment is at most {MAX_COMMENT} characters", cors=True)
            )
        if caller.settings.cancel_handling is CancelHandling.merchant_event:
            return self._answer(origin, {"handledBy": "merchant"})
        if caller.customer_id is None:
            return self._refused(origin, Refusal(404, "NOT_FOUND", "customer not found", cors=True))
        try:
            outcome = await billing.cancel_subscription(
                self.db, tenant_id=caller.tenant_id, customer_id=caller.customer_id, reason=reason, comment=comment
            )
        except DomainError as error:
            return self._refused(origin, refusal_of(error))
        if not outcome.canceled:
            return self._refused(
                origin, Refusal(409, "BILLING_REFUSED", outcome.reason or "billing refused the cancellation", cors=True)
            )
        return self._answer(origin, {"handledBy": "billing"})

    async def accept(self, request: Request) -> Response:
        """Accept an offer: the billing action runs now (billing.service.redeem). Each accept
        names its own `attempt` (a UUID the widget makes per click): the same call again is a
        replay, refused with the first call's redemption, and never charged twice."""
        if request.method == "OPTIONS":
            return await self._preflight(request)
        origin, call = await self._call(request)
        if isinstance(call, Response):
            return call
        caller, body = call.caller, call.body
        try:
            offer_id = uuid.UUID(request.path_params["offer_id"])
        except ValueError:
            return self._refused(origin, Refusal(404, "NOT_FOUND", "offer not found", cors=True))
        attempt, reason, case_text = body.get("attempt"), body.get("reason"), body.get("caseId")
        try:
            attempt_id = uuid.UUID(attempt) if isinstance(attempt, str) else None
        except ValueError:
            attempt_id = None
        if attempt_id is None:
            return self._refused(
                origin, Refusal(400, "BAD_REQUEST", "attempt is a UUID made for this accept", cors=True)
            )
        if reason is not None and (not isinstance(reason, str) or caller.settings.reason(reason) is None):
            return self._refused(origin, Refusal(400, "BAD_REQUEST", "reason is one of the survey's codes", cors=True))
        if caller.customer_id is None:
            return self._refused(origin, Refusal(404, "NOT_FOUND", "customer not found", cors=True))
        key = f"widget:{caller.customer_id}:{offer_id}:{attempt_id}"
        async with self.db.tenant_session(caller.tenant_id) as session:
            replayed = await offers.redemption_by_key(session, caller.tenant_id, key)
            open_cases = await open_cases_of_customer(session, caller.tenant_id, caller.customer_id)
        if replayed is not None:
            return self._answer(
                origin,
                {
                    "error": {"code": "ALREADY_ACCEPTED", "message": "this accept was already made"},
                    "redemption": {"id": str(replayed.id), "status": replayed.status},
                },
                409,
            )
        # The case the session offered it for; it must be one of this customer's open cases.
        case = next((case for case in open_cases if str(case.id) == case_text), None)
        if case_text is not None and case is None:
            return self._refused(origin, Refusal(404, "NOT_FOUND", "case not found", cors=True))
        try:
            outcome = await billing.redeem(
                self.db,
                tenant_id=caller.tenant_id,
                offer_id=offer_id,
                customer_id=caller.customer_id,
                case_id=case.id if case is not None else None,
                source="widget",
                idempotency_key=key,
                cancel_reason=reason,
                return_url=call.origin,
            )
        except DomainError as error:
            return self._refused(origin, refusal_of(error))
        redemption = {"id": str(outcome.redemption_id), "status": outcome.status, "url": outcome.hosted_url}
        if outcome.status == RedemptionStatus.FAILED.value:
            message = outcome.reason or "billing refused the offer"
            return self._answer(
                origin, {"error": {"code": "BILLING_REFUSED", "message": message}, "redemption": redemption}, 409
            )
        status = 202 if outcome.status == RedemptionStatus.PENDING.value else 200
        return self._answer(origin, {"redemption": redemption}, status)
