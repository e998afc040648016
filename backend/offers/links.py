"""One-click offer links (`/o/{token}`): signed, expiring, bound to a tenant, customer, case and offer.

Signed by `core/signed_tokens.py` with a key for this purpose only (a channels `/l/` token never
verifies here). The page that reads one still checks that the offer and case are the tenant's and
the customer's: a token is never trusted for more than it says.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.signed_tokens import TokenError, sign_claims, verify_claims

PURPOSE = "offers-link"
OFFER_LINK_LIFETIME = timedelta(days=14)


class OfferLinkError(Exception):
    """The token cannot be used; `reason` is fit for the person who opened it, `status` for the page."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class OfferClaims:
    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    case_id: uuid.UUID | None
    offer_id: uuid.UUID
    expires_at: datetime


def offer_token(
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    offer_id: uuid.UUID,
    expires_at: datetime,
) -> str:
    payload = {
        "t": str(tenant_id),
        "u": str(customer_id),
        "c": str(case_id) if case_id else None,
        "o": str(offer_id),
        "e": int(expires_at.timestamp()),
    }
    return sign_claims(payload, settings.resolved_secret_key, PURPOSE)


def read_offer_token(settings: Settings, token: str, now: datetime) -> OfferClaims:
    """The claims of an authentic, unexpired token; OfferLinkError (tampered or malformed: 400,
    expired: 410) otherwise."""
    try:
        payload = verify_claims(token, settings.resolved_secret_key, PURPOSE)
    except TokenError as error:
        raise OfferLinkError(error.reason) from None
    try:
        claims = OfferClaims(
            tenant_id=uuid.UUID(payload["t"]),
            customer_id=uuid.UUID(payload["u"]),
            case_id=uuid.UUID(payload["c"]) if payload["c"] else None,
            offer_id=uuid.UUID(payload["o"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), tz=now.tzinfo),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        raise OfferLinkError("This link is not valid.") from None
    if claims.expires_at < now:
        raise OfferLinkError("This offer has expired.", status=410)
    return claims


def offer_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/o/{token}"
