"""One-click offer tokens: they carry tenant, customer, case and offer; a changed, cut, expired or
channels `/l/` token is refused with a reason and a status the page can show."""

import uuid
from datetime import timedelta

import pytest

from churnsaver.backend.channels import links as channel_links
from churnsaver.backend.channels.models import LinkPurpose
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.offers.links import OfferLinkError, offer_token, read_offer_token

SETTINGS = Settings(secret_key="offers-link-test-key")


def token(**changes) -> str:
    claims = {
        "tenant_id": uuid.uuid4(),
        "customer_id": uuid.uuid4(),
        "case_id": uuid.uuid4(),
        "offer_id": uuid.uuid4(),
        "expires_at": utcnow() + timedelta(days=1),
    } | changes
    return offer_token(SETTINGS, **claims)


def test_a_token_reads_back_what_it_was_given() -> None:
    tenant_id, offer_id = uuid.uuid4(), uuid.uuid4()
    claims = read_offer_token(SETTINGS, token(tenant_id=tenant_id, offer_id=offer_id, case_id=None), utcnow())
    assert (claims.tenant_id, claims.offer_id, claims.case_id) == (tenant_id, offer_id, None)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "x" + t,
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: t + "." + t,
    ],
    ids=["signature", "body", "cut", "empty", "doubled"],
)
def test_a_changed_or_malformed_token_is_refused_with_400(mangle) -> None:
    with pytest.raises(OfferLinkError) as refused:
        read_offer_token(SETTINGS, mangle(token()), utcnow())
    assert refused.value.status == 400


def test_an_expired_token_is_refused_with_410() -> None:
    with pytest.raises(OfferLinkError) as refused:
        read_offer_token(SETTINGS, token(expires_at=utcnow() - timedelta(seconds=1)), utcnow())
    assert (refused.value.status, refused.value.reason) == (410, "This offer has expired.")


def test_a_token_signed_with_another_secret_or_for_channels_is_refused() -> None:
    other = Settings(secret_key="another-key")
    with pytest.raises(OfferLinkError):
        read_offer_token(other, token(), utcnow())
    channel_token = channel_links.sign(
        channel_links.LinkClaims(
            tenant_id=uuid.uuid4(),
            customer_id=uuid.uuid4(),
            case_id=None,
            message_id=uuid.uuid4(),
            purpose=LinkPurpose.offer,
            expires_at=utcnow() + timedelta(days=1),
        ),
        SETTINGS.resolved_secret_key,
    )
    with pytest.raises(OfferLinkError):
        read_offer_token(SETTINGS, channel_token, utcnow())
