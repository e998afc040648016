"""Signed links over HTTP: a click recorded and redirected, one-click and page unsubscribe, clear
4xx pages for tampered, expired and other-tenant tokens, and the captured mailbox."""

import re
from datetime import timedelta

from churnsaver.backend.channels import links
from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.channels.models import LinkPurpose
from churnsaver.backend.channels.settings import ChannelSettings, store_settings
from churnsaver.backend.core.db import utcnow
from tests.fixtures.channels import message_statuses, schedule, stored_message
from tests.fixtures.factories import create_customer

TOKEN = re.compile(r"/l/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


async def sent_email(settings, db, tenant_id, external_id="cus_1", **fields):
    customer = await create_customer(
        db, tenant_id, external_id, email=f"{external_id}@example.com", name="Ana", **fields
    )
    outcome = await schedule(db, tenant_id, customer.id)
    await deliver(db, settings, tenant_id, outcome.message_id)
    return customer, await stored_message(db, tenant_id, outcome.message_id)


def tokens_in(message, settings) -> dict[LinkPurpose, str]:
    """Each link of the message by purpose (read from the token's own, verified claims)."""
    return {
        links.verify(token, settings.resolved_secret_key, utcnow()).purpose: token
        for token in TOKEN.findall(message.body_text)
    }


async def test_opening_a_link_records_the_click_and_redirects(settings, db, tenant, client) -> None:
    async with db.tenant_unit_of_work(tenant.id) as session:
        await store_settings(
            session, tenant.id, ChannelSettings().updated(update_payment_url="https://billing.example.com/card")
        )
    _customer, message = await sent_email(settings, db, tenant.id)
    token = tokens_in(message, settings)[LinkPurpose.update_payment]
    response = await client.get(f"/l/{token}")
    assert response.status_code == 303 and response.headers["location"] == "https://billing.example.com/card"
    clicked = await stored_message(db, tenant.id, message.id)
    assert clicked.status == "clicked" and clicked.clicked_at is not None
    assert (await message_statuses(db, tenant.id, message.id))[-1] == "clicked"


async def test_the_unsubscribe_page_confirms_and_one_click_post_opts_out(settings, db, tenant, client) -> None:
    customer, message = await sent_email(settings, db, tenant.id)
    token = tokens_in(message, settings)[LinkPurpose.unsubscribe]
    page = await client.get(f"/l/{token}")
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert (await stored_message(db, tenant.id, message.id)).status == "sent"  # looking is not unsubscribing
    # RFC 8058: the mail client posts this body to the List-Unsubscribe URL.
    response = await client.post(
        f"/l/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    again = await client.post(f"/l/{token}")
    assert again.status_code == 200
    later = await schedule(db, tenant.id, customer.id)
    assert (later.status, later.reason) == ("suppressed", "the customer opted out of email")


async def test_a_tampered_token_gets_a_clear_400_page(settings, db, tenant, client) -> None:
    _customer, message = await sent_email(settings, db, tenant.id)
    token = tokens_in(message, settings)[LinkPurpose.unsubscribe]
    body, signature = token.split(".")
    for bad in (body + "x." + signature, body + "." + signature[:-2] + "AA", "garbage", "a.b.c", "x" * 2000):
        response = await client.get(f"/l/{bad}")
        assert response.status_code == 400, bad
        assert "text/html" in response.headers["content-type"] and "This link cannot be used" in response.text
        posted = await client.post(f"/l/{bad}")
        assert posted.status_code == 400
    assert (await stored_message(db, tenant.id, message.id)).status == "sent"


async def test_an_expired_token_gets_410(settings, db, tenant, client) -> None:
    _customer, message = await sent_email(settings, db, tenant.id)
    claims = links.LinkClaims(
        tenant_id=tenant.id,
        customer_id=message.customer_id,
        case_id=None,
        message_id=message.id,
        purpose=LinkPurpose.offer,
        expires_at=utcnow() - timedelta(minutes=1),
    )
    response = await client.get(f"/l/{links.sign(claims, settings.resolved_secret_key)}")
    assert response.status_code == 410 and "expired" in response.text


async def test_a_token_naming_another_tenant_reaches_nothing(settings, db, tenant, other_tenant, client) -> None:
    customer, message = await sent_email(settings, db, tenant.id)
    for tenant_id, customer_id in ((other_tenant.id, customer.id), (tenant.id, other_tenant.id)):
        claims = links.LinkClaims(
            tenant_id=tenant_id,
            customer_id=customer_id,
            case_id=None,
            message_id=message.id,
            purpose=LinkPurpose.unsubscribe,
            expires_at=utcnow() + timedelta(days=1),
        )
        token = links.sign(claims, settings.resolved_secret_key)
        assert (await client.get(f"/l/{token}")).status_code == 404
        assert (await client.post(f"/l/{token}")).status_code == 404
    later = await schedule(db, tenant.id, customer.id)
    assert later.status == "scheduled"  # nobody was unsubscribed


async def test_the_captured_mailbox_lists_and_shows_captured_mail(settings, db, tenant, client) -> None:
    _customer, message = await sent_email(settings, db, tenant.id, "cus_mailbox")
    listing = await client.get("/dev/mailbox")
    assert listing.status_code == 200 and "cus_mailbox@example.com" in listing.text
    shown = await client.get(f"/dev/mailbox/{tenant.id}/{message.id}")
    assert shown.status_code == 200 and "Your payment for" in shown.text and "<iframe sandbox" in shown.text
    assert (await client.get(f"/dev/mailbox/{tenant.id}/not-a-uuid")).status_code == 404
    assert (await client.get(f"/dev/mailbox/{message.customer_id}/{message.id}")).status_code == 404


async def test_a_token_of_any_characters_gets_a_page_never_a_500(client) -> None:
    for bad in ("é.é", "%00.%00", "a" * 500 + "." + "ñ" * 10, "....", "x.y"):
        for method in ("GET", "POST"):
            response = await client.request(method, f"/l/{bad}")
            assert response.status_code == 400, (bad, method)
