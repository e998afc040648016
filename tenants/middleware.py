"""The authentication middleware: an API key resolved to the auth subject of the request."""

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.middleware import client_host, json_error, send_json
from churnsaver.tenants.api_keys import InvalidApiKey, record_key_use
from churnsaver.tenants.key_authentication import KeyAuthenticator, TooManyFailures


class AuthenticationMiddleware:
    """Resolve `Authorization: Bearer <api key>` to an auth subject on protected paths.

    A missing key on a protected path, or a bad key anywhere, is a 401 with a JSON reason. The
    GraphiQL page (a GET asking for HTML) loads without a key: it holds no data. Neither do paths
    under `public_prefixes` (static assets), which are exempt from their protected prefix.
    """

    def __init__(
        self,
        app: ASGIApp,
        db: Database,
        authenticator: KeyAuthenticator,
        protected_prefixes: tuple[str, ...],
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.db = db
        self.authenticator = authenticator
        self.protected_prefixes = protected_prefixes
        self.public_prefixes = public_prefixes

    def _is_protected(self, path: str) -> bool:
        return path.startswith(self.protected_prefixes) and not path.startswith(self.public_prefixes)

    def _is_console_page(self, scope: Scope) -> bool:
        accept = dict(scope["headers"]).get(b"accept", b"")
        return scope["method"] == "GET" and b"text/html" in accept and not scope.get("query_string")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorizations = [value for name, value in scope["headers"] if name == b"authorization"]
        if len(authorizations) > 1:
            # Proxies and frameworks disagree on which of several wins: none is taken.
            await send_json(send, *json_error(400, "BAD_REQUEST", "send exactly one Authorization header"))
            return
        authorization = authorizations[0] if authorizations else None
        if authorization is None:
            if self._is_console_page(scope):
                await self.app(scope, receive, send)
                return
            await send_json(
                send,
                *json_error(401, "UNAUTHENTICATED", "an API key is required: Authorization: Bearer <api key>"),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        try:
            authentication = await self.authenticator.authenticate(client_host(scope), authorization.decode("latin-1"))
        except TooManyFailures as refusal:
            body = json_error(429, "RATE_LIMITED", refusal.reason)
            await send_json(send, *body, [(b"retry-after", str(refusal.retry_after).encode())])
            return
        except InvalidApiKey as error:
            await send_json(send, *json_error(401, "UNAUTHENTICATED", error.reason), [(b"www-authenticate", b"Bearer")])
            return
        subject = authentication.subject
        if authentication.use_is_unrecorded:
            async with self.db.tenant_unit_of_work(subject.tenant_id) as session:
                await record_key_use(session, subject)
        scope.setdefault("state", {})["auth_subject"] = subject
        structlog.contextvars.bind_contextvars(tenant_id=str(subject.tenant_id), subject=subject.log_label)
        await self.app(scope, receive, send)
