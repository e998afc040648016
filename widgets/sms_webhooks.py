"""The SMS provider's webhooks (Twilio's wire format): status callbacks and inbound messages.

POST /sms/{tenant_id}/status: a message's delivery status (MessageSid, MessageStatus, ErrorCode).
POST /sms/{tenant_id}/inbound: a reply (From, Body); STOP and its synonyms opt the sender out.
Both are form posts signed with the tenant's auth token (X-Twilio-Signature over the URL we gave
the provider, on CHURNSAVER_PUBLIC_URL); an unsigned, missing-tenant or badly signed post is a 403
that says so, and changes nothing.
"""

import uuid

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from churnsaver.backend.channels import service
from churnsaver.backend.channels.delivery import public_url
from churnsaver.backend.channels.sms import is_stop, signature_valid
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput

MAX_FORM_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class SmsWebhooks:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def routes(self) -> list[Route]:
        return [
            Route("/sms/{tenant_id}/status", self.status, methods=["POST"]),
            Route("/sms/{tenant_id}/inbound", self.inbound, methods=["POST"]),
        ]

    async def _verified(self, request: Request) -> tuple[uuid.UUID, dict[str, str]] | Response:
        try:
            tenant_id = uuid.UUID(request.path_params["tenant_id"])
        except ValueError:
            return PlainTextResponse("unknown tenant", status_code=404)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("request too large", status_code=413)
        form = await request.form()
        params = {name: value for name, value in form.items() if isinstance(value, str)}
        async with self.db.tenant_session(tenant_id) as session:
            token = await service.sms_auth_token(session, tenant_id, self.settings.resolved_secret_key)
        if token is None:
            return PlainTextResponse("SMS is not set up for this tenant", status_code=403)
        url = public_url(self.settings) + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not signature_valid(token, url, params, request.headers.get("x-twilio-signature")):
            return PlainTextResponse("invalid X-Twilio-Signature", status_code=403)
        return tenant_id, params

    async def status(self, request: Request) -> Response:
        verified = await self._verified(request)
        if isinstance(verified, Response):
            return verified
        tenant_id, params = verified
        sid, status = params.get("MessageSid"), params.get("MessageStatus")
        if not sid or not status:
            return PlainTextResponse("MessageSid and MessageStatus are required", status_code=400)
        async with self.db.tenant_unit_of_work(tenant_id) as session:
            await service.record_sms_status(session, tenant_id, sid, status.lower(), params.get("ErrorCode"))
        return Response(status_code=204)

    async def inbound(self, request: Request) -> Response:
        verified = await self._verified(request)
        if isinstance(verified, Response):
            return verified
        tenant_id, params = verified
        if is_stop(params.get("Body", "")):
            try:
                async with self.db.tenant_unit_of_work(tenant_id) as session:
                    await service.record_sms_stop(session, tenant_id, params.get("From", ""))
            except InvalidInput as error:
                return PlainTextResponse(str(error), status_code=400)
        return Response(EMPTY_TWIML, media_type="text/xml")
