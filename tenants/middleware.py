"""The authentication middleware: an API key resolved to the auth subject of the request."""

from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.middleware import client_host, json_error, send_json
from churnsaver.backend.core.rate_limit import FailureThrottle, failure_storage
from churnsaver.tenants.api_keys import (
    InvalidApiKey,
    authenticate_api_key,
    bearer_token,
    key_prefix,
    record_key_use,
)


@dataclass(frozen=True, slots=True)
class AuthFailureThrottles:
    """Failed authentications counted per client address and per key prefix.

    A blocked address is refused before its key is looked at. A blocked prefix only turns the
    failures that name it into 429s: the key's owner is never locked out by someone else's guesses.
    """

    per_ip: FailureThrottle
    per_key: FailureThrottle

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuthFailureThrottles":
        storage = failure_storage(settings.redis_url)
        return cls(
            per_ip=FailureThrottle(settings.auth_failure_limit_per_ip, storage, "auth-failures-ip"),
            per_key=FailureThrottle(settings.auth_failure_limit_per_key, storage, "auth-failures-key"),
        )

    async def failed(self, ip: str, token: str | None) -> int | None:
        """Count a failure; the seconds to wait when the address or the prefix is over its limit."""
        waits = [await self.per_ip.failed(ip)]
        if token is not None and (prefix := key_prefix(token)) is not None:
            waits.append(await self.per_key.failed(prefix))
        return max((wait for wait in waits if wait is not None), default=None)


def too_many_failures(retry_after: int) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    status, body = json_error(
        429, "RATE_LIMITED", f"too many failed authentications; retry after {retry_after} seconds"
    )
    return status, body, [(b"retry-after", str(retry_after).encode())]


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
        throttles: AuthFailureThrottles,
        protected_prefixes: tuple[str, ...],
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.db = db
        self.throttles = throttles
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
        ip = client_host(scope)
        if (blocked := self.throttles.per_ip.retry_after(ip)) is not None:
            await send_json(send, *too_many_failures(blocked))
            return
        token = None
        try:
            token = bearer_token(authorization.decode("latin-1"))
            async with self.db.system_session() as session:
                authentication = await authenticate_api_key(session, token)
        except InvalidApiKey as error:
            if (retry_after := await self.throttles.failed(ip, token)) is not None:
                await send_json(send, *too_many_failures(retry_after))
            else:
                await send_json(
                    send, *json_error(401, "UNAUTHENTICATED", error.reason), [(b"www-authenticate", b"Bearer")]
                )
            return
        subject = authentication.subject
        if authentication.use_is_unrecorded:
            async with self.db.tenant_unit_of_work(subject.tenant_id) as session:
                await record_key_use(session, subject)
        scope.setdefault("state", {})["auth_subject"] = subject
        structlog.contextvars.bind_contextvars(tenant_id=str(subject.tenant_id), subject=subject.log_label)
        await self.app(scope, receive, send)
