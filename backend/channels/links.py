"""Signed, expiring, no-login links (`/l/{token}`) bound to a tenant, customer, case, message and purpose.

A token is signed by `core/signed_tokens.py` with a key derived from the secret key for this
purpose only. Verifying checks the signature in constant time, then the expiry; the
caller then checks that the message it names is the tenant's (a token is never trusted for more
than it says).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from churnsaver.backend.channels.models import LinkPurpose
from churnsaver.backend.core.signed_tokens import TokenError, sign_claims, verify_claims

LINK_LIFETIME = timedelta(days=30)
UNSUBSCRIBE_LIFETIME = timedelta(days=365)  # an old email's unsubscribe link should still work
PURPOSE = "channels-link"


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


def sign(claims: LinkClaims, secret_key: str) -> str:
    payload = {
        "t": str(claims.tenant_id),
        "u": str(claims.customer_id),
        "c": str(claims.case_id) if claims.case_id else None,
        "m": str(claims.message_id),
        "p": claims.purpose.value,
        "e": int(claims.expires_at.timestamp()),
    }
    return sign_claims(payload, secret_key, PURPOSE)


def verify(token: str, secret_key: str, now: datetime) -> LinkClaims:
    """The claims of an authentic, unexpired token; LinkError otherwise."""
    try:
        payload = verify_claims(token, secret_key, PURPOSE)
    except TokenError as error:
        raise LinkError(error.reason) from None
    try:
        claims = LinkClaims(
            tenant_id=uuid.UUID(payload["t"]),
            customer_id=uuid.UUID(payload["u"]),
            case_id=uuid.UUID(payload["c"]) if payload["c"] else None,
            message_id=uuid.UUID(payload["m"]),
            purpose=LinkPurpose(payload["p"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), tz=now.tzinfo),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        raise LinkError("This link is not valid.") from None
    if claims.expires_at < now:
        raise LinkError("This link has expired.", status=410)
    return claims


def lifetime(purpose: LinkPurpose) -> timedelta:
    return UNSUBSCRIBE_LIFETIME if purpose is LinkPurpose.unsubscribe else LINK_LIFETIME
