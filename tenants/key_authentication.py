"""Authenticating a presented `Authorization` header, with failures throttled per client address
and per key prefix. The HTTP middleware and the GraphQL WebSocket handshake both go through it."""

from dataclasses import dataclass

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.rate_limit import FailureThrottle, failure_storage
from churnsaver.tenants.api_keys import (
    InvalidApiKey,
    KeyAuthentication,
    authenticate_api_key,
    bearer_token,
    key_prefix,
)


class TooManyFailures(Exception):
    """The client address or the key prefix failed too often; it may try again in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry after {retry_after} seconds")
        self.retry_after = retry_after
        self.reason = str(self)


@dataclass(frozen=True, slots=True)
class AuthFailureThrottles:
    """Failed authentications counted per client address and per key prefix.

    A blocked address is refused before its key is looked at. A blocked prefix only turns the
    failures that name it into refusals: the key's owner is never locked out by someone else's guesses.
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


class KeyAuthenticator:
    def __init__(self, db: Database, throttles: AuthFailureThrottles) -> None:
        self.db = db
        self.throttles = throttles

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> "KeyAuthenticator":
        return cls(db, AuthFailureThrottles.from_settings(settings))

    async def authenticate(self, ip: str, authorization: str) -> KeyAuthentication:
        """The key `authorization` presents, from a client at `ip`; InvalidApiKey saying why it is
        refused, or TooManyFailures once the address or the key prefix failed too often."""
        if (blocked := self.throttles.per_ip.retry_after(ip)) is not None:
            raise TooManyFailures(blocked)
        token = None
        try:
            token = bearer_token(authorization)
            async with self.db.system_session() as session:
                return await authenticate_api_key(session, token)
        except InvalidApiKey:
            if (retry_after := await self.throttles.failed(ip, token)) is not None:
                raise TooManyFailures(retry_after) from None
            raise
