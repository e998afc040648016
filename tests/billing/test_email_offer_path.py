"""The email path end to end: a campaign's email reaches a real SMTP server (aiosmtpd), its offer
link leads (through channels' /l/ redirect) to the one-click page, the page's button POSTs, Whop
(a local server speaking its API) gets exactly one call however often the button is sent, and the
case recovers once Whop's webhook says the cancellation was withdrawn."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from churnsaver.backend.app import create_app
from churnsaver.backend.campaigns.dispatch import dispatch_due
from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.core.db import Database, utcnow
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.campaigns import enroll, messages, no_quiet_hours, only_campaign
from tests.fixtures.cases import apply_and_reconcile
from tests.fixtures.offers import cancellation_case, case_now, connect, default_offer, redemptions
from tests.fixtures.smtp import smtp_server

__all__ = ["smtp_server"]
PUBLIC = "http://shop.test"
KEY = "whop_key_email_path"


@pytest.fixture
async def email_path(settings, smtp_server, whop_api) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    smtp_url, _mailbox = smtp_server
    local = settings.model_copy(update={"smtp_url": smtp_url, "whop_api_url": whop_api.url, "public_url": PUBLIC})
    database = Database(local)
    application = create_app(local, run_jobs=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as client:
            yield database, client
    await database.dispose()


async def test_an_emailed_offer_is_taken_in_one_click_and_whop_is_called_once(
    email_path, smtp_server, whop_api, tenant
) -> None:
    db, client = email_path
    _url, mailbox = smtp_server
    whop_api.api_keys.add(KEY)
    await connect(db, tenant.id, "WHOP", KEY)
    uncancel = await default_offer(db, tenant.id, "uncancel")
    await no_quiet_hours(db, tenant.id)
    step = {"delay": "PT0S", "channel": "email", "template": "cancellation_offer", "offer_id": str(uncancel.id)}
    await only_campaign(db, tenant.id, kinds=["cancellation_scheduled"], steps=[step])
    case = await cancellation_case(db, tenant.id, "user_mail1")
    whop_api.add_membership("mem_user_mail1", cancel_at_period_end=True)
    await enroll(db, tenant.id)
    assert (await dispatch_due(db, tenant.id)).sent == 1
    [message] = await messages(db, tenant.id)
    assert await deliver(db, db.settings, tenant.id, message.id) == "sent"

    [mail] = mailbox.to("user_mail1@example.com")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Withdraw the cancellation and keep your subscription." in body
    links = re.findall(rf"{re.escape(PUBLIC)}/l/[A-Za-z0-9_.-]+", body)
    assert links, body
    opened = [await client.get(link.removeprefix(PUBLIC)) for link in links]
    [redirect] = [response for response in opened if response.status_code in (302, 303, 307)]
    page_url = redirect.headers["location"]
    assert page_url.startswith(f"{PUBLIC}/o/")
    page = await client.get(page_url.removeprefix(PUBLIC))
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert whop_api.applied == []  # following links (as a mail scanner does) changes nothing

    first = await client.post(page_url.removeprefix(PUBLIC))
    again = await client.post(page_url.removeprefix(PUBLIC))
    assert (first.status_code, again.status_code) == (200, 200)
    assert [(action, membership) for action, membership, _ in whop_api.applied] == [("update", "mem_user_mail1")]
    [redemption] = await redemptions(db, tenant.id)
    assert (redemption.status, redemption.source, redemption.provider) == ("APPLIED", "one_click", "WHOP")
    assert (await case_now(db, tenant.id, case.id)).status == "open"  # accepted; Whop has not confirmed yet

    await apply_and_reconcile(
        db,
        tenant.id,
        payloads.whop_membership_cancel_at_period_end_changed(
            user_id="user_mail1", membership_id="mem_user_mail1", at=utcnow(), cancel_at_period_end=False
        ),
    )
    assert (await case_now(db, tenant.id, case.id)).status == "recovered"
