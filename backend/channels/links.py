"""Signed, expiring, no-login links (`/l/{token}`) bound to a tenant, customer, case, message and purpose.

A token is `base64url(claims JSON) . base64url(HMAC-SHA256)` with a key derived from the secret key
for this purpose only. Verifying checks the signature in constant time, then the expiry; the
caller then checks that the message it names is the tenant's (a token is never trusted for more
than it says).
"""

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from churnsaver.backend.channels.models import LinkPurpose

LINK_LIFETIME = timedelta(days=30)
UNSUBSCRIBE_LIFETIME = timedelta(days=365)  # an old email's unsubscribe link should still work
MAX_TOKEN = 1000


class LinkError(Exception):
    """The token cannot be used; `reason` is fit for the person who opened it."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class LinkClaims:
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    case_id: uuid.UUID | None
    message_id: uuid.UUID
    purpose: LinkPurpose
    expires_at: datetime


@lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"churnsaver:channels-link", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: LinkClaims, secret_key: str) -> str:
    payload = {
        "t": str(claims.tenant_id),
        "u": str(claims.customer_id),
        "c": str(claims.case_id) if claims.case_id else None,
        "m": str(claims.message_id),
        "p": claims.purpose.value,
        "e": int(claims.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(_key(secret_key), body.encode(), hashlib.sha256).digest())}"


def verify(token: str, secret_key: str, now: datetime) -> LinkClaims:
    """The claims of an authentic, unexpired token; LinkError otherwise."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise LinkError("This link is not valid.")
    body, signature = token.split(".")
    expected = _b64(hmac.new(_key(secret_key), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        raise LinkError("This link is not valid: it may have been changed or copied incompletely.")
    try:
        payload = json.loads(_unb64(body))
        claims = LinkClaims(
            tenant_id=uuid.UUID(payload["t"]),
            customer_id=uuid.UUID(payload["u"]),
            case_id=uuid.UUID(payload["c"]) if payload["c"] else None,
            message_id=uuid.UUID(payload["m"]),
            purpose=LinkPurpose(payload["p"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), tz=now.tzinfo),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise LinkError("This link is not valid.") from None
    if claims.expires_at < now:
        raise LinkError("This link has expired.", status=410)
    return claims


def lifetime(purpose: LinkPurpose) -> timedelta:
    return UNSUBSCRIBE_LIFETIME if purpose is LinkPurpose.unsubscribe else LINK_LIFETIME
