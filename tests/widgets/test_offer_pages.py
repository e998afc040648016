"""One-click offer pages: GET shows the offer in the merchant's branding and the customer's
language with one POST button and changes nothing; POST accepts it through billing once, however
often it is sent; a used, expired, tampered or foreign token gets a clear page, never a 500."""

import html
import re
from datetime import timedelta

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.offers.links import offer_token
from tests.fixtures.embeds import MERCHANT, create_embedding
from tests.fixtures.offers import billing_calls, cancellation_case, case_now, default_offer, redemptions


def token_for(settings, case, offer, *, expires_in=timedelta(days=3)) -> str:
    return offer_token(
        settings,
        tenant_id=case.tenant_id,
        customer_id=case.customer_id,
        case_id=case.id,
        offer_id=offer.id,
        expires_at=utcnow() + expires_in,
    )


def heading(response) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.text)
    assert match is not None, response.text
    return html.unescape(match.group(1))


async def test_the_page_shows_the_offer_branded_and_a_post_accepts_it_once(settings, db, tenant, client) -> None:
    await create_embedding(
        db,
        settings.resolved_secret_key,
        tenant.id,
        MERCHANT,
        brand_name="Acme Fitness",
        logo_url="https://cdn.acme.example/logo.png",
        brand_color="#0e9f6e",
    )
    case = await cancellation_case(db, tenant.id, "user_oc1")
    offer = await default_offer(db, tenant.id, "percent_30_x3")
    path = f"/o/{token_for(settings, case, offer)}"

    shown = await client.get(path)
    assert shown.status_code == 200
    assert heading(shown) == "An offer for you"
    assert "30% off" in shown.text and "Acme Fitness" in shown.text and "--brand:#0e9f6e" in shown.text
    assert '<img src="https://cdn.acme.example/logo.png" alt="">' in shown.text
    assert '<form method="post"><button type="submit">Accept offer</button></form>' in shown.text
    assert "<script" not in shown.text
    assert "form-action 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["x-frame-options"] == "DENY"
    assert await redemptions(db, tenant.id) == []  # a GET (a mail scanner) accepts nothing

    accepted = await client.post(path)
    assert accepted.status_code == 200, accepted.text
    assert heading(accepted) == "Done: your offer is applied"
    again = await client.post(path)
    assert heading(again) == "Done: your offer is applied"
    [redemption] = await redemptions(db, tenant.id)
    assert (redemption.source, redemption.status, redemption.case_id) == ("one_click", "APPLIED", case.id)
    assert len(await billing_calls(db, tenant.id)) == 1

    used = await client.get(path)
    assert heading(used) == "This offer was already accepted"
    assert "<form" not in used.text


async def test_an_uncancel_recovers_the_case_and_the_page_speaks_the_customers_language(
    settings, db, tenant, client
) -> None:
    case = await cancellation_case(db, tenant.id, "user_oc2")
    async with db.tenant_unit_of_work(tenant.id) as session:
        customer = await session.get(Customer, case.customer_id)
        assert customer is not None
        customer.traits = {**(customer.traits or {}), "locale": "de-AT"}
    offer = await default_offer(db, tenant.id, "uncancel")
    path = f"/o/{token_for(settings, case, offer)}"
    shown = await client.get(path)
    assert '<html lang="de">' in shown.text and "Angebot annehmen" in shown.text
    accepted = await client.post(path)
    assert heading(accepted) == "Erledigt: Ihr Angebot ist aktiv"
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"


async def test_tampered_expired_and_foreign_tokens_get_a_clear_page(settings, db, tenant, other_tenant, client) -> None:
    case = await cancellation_case(db, tenant.id, "user_oc3")
    offer = await default_offer(db, tenant.id, "uncancel")
    theirs = await default_offer(db, other_tenant.id, "uncancel")
    good = token_for(settings, case, offer)
    pages = {
        f"/o/{good[:-4]}AAAA": 400,
        "/o/not-a-token": 400,
        f"/o/{token_for(settings, case, offer, expires_in=timedelta(seconds=-5))}": 410,
        # Signed by us, but the offer is another tenant's: it is not found for this tenant.
        f"/o/{token_for(settings, case, theirs)}": 410,
    }
    for path, status in pages.items():
        for method in ("GET", "POST"):
            response = await client.request(method, path)
            assert response.status_code == status, (method, path, response.text)
            assert heading(response) == "This link cannot be used"
            assert "<form" not in response.text
    assert await redemptions(db, tenant.id) == [] and await redemptions(db, other_tenant.id) == []
