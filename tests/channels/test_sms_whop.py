"""SMS through a local server speaking Twilio's Messages API, its signed status callbacks and STOP
replies; Whop notifications through whop-sdk against a local Whop-format server."""

import uuid
from datetime import timedelta

from sqlalchemy import update

from churnsaver.backend.channels import service
from churnsaver.backend.channels.delivery import DEFAULT_PUBLIC_URL, deliver, forget_settled, resolve_interrupted
from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.repository import ConsentRepository
from churnsaver.backend.channels.sms import signature
from churnsaver.backend.core.db import utcnow
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.channels import message_statuses, schedule, stored_message
from tests.fixtures.factories import add_identities, create_customer
from tests.fixtures.providers import BUSY_NUMBER, INVALID_NUMBER

SID = "AC" + "1" * 32
TOKEN = "twilio-auth-token"
FROM = "+14155550199"


async def set_up_sms(settings, db, tenant_id, twilio, *, token: str = TOKEN) -> None:
    twilio.accounts[SID] = token
    async with db.tenant_unit_of_work(tenant_id) as session:
        await service.update_channel_settings(
            session,
            AuthSubject.system(tenant_id),
            secret_key=settings.resolved_secret_key,
            sms_account_sid=SID,
            sms_from_number=FROM,
            sms_auth_token=token,
        )


async def sms_customer(db, tenant_id, external_id: str, phone: str):
    customer = await create_customer(db, tenant_id, external_id, phone=phone, name="Ana")
    async with db.tenant_unit_of_work(tenant_id) as session:
        await ConsentRepository(session, tenant_id).record_sms_consent(customer.id, phone, "checkout")
    return customer


def with_sms(settings, twilio):
    return settings.model_copy(update={"sms_api_url": twilio.url})


async def test_an_sms_goes_out_in_twilios_wire_format(settings, db, tenant, twilio) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms", variables={"amount_due": "$9.00"})
    assert await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id) == "sent"
    [sent] = twilio.to("+14155550100")
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (sent["From"], sent["AccountSid"], message.provider_message_id) == (FROM, SID, sent["sid"])
    assert sent["Body"].startswith(f"{tenant.tenant.name}: your payment of $9.00 failed.")
    assert sent["Body"].endswith("Reply STOP to opt out.")
    assert sent["StatusCallback"] == f"{DEFAULT_PUBLIC_URL}/sms/{tenant.id}/status"


async def test_without_a_provider_an_sms_is_captured(settings, db, tenant) -> None:
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    assert await deliver(db, settings, tenant.id, outcome.message_id) == "captured"


async def test_an_invalid_number_fails_and_is_suppressed(settings, db, tenant, twilio) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", INVALID_NUMBER)
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    assert await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id) == "failed"
    assert "code 21211" in (await stored_message(db, tenant.id, outcome.message_id)).reason
    again = await schedule(db, tenant.id, customer.id, channel="sms")
    assert again.status == "suppressed" and "suppressed" in again.reason


async def test_a_provider_outage_is_retried_and_then_sent_once(settings, db, tenant, twilio) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", BUSY_NUMBER)
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    assert await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id) == "retrying"
    assert "503" in (await stored_message(db, tenant.id, outcome.message_id)).reason
    twilio.busy = False
    assert await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id) == "sent"
    assert len(twilio.to(BUSY_NUMBER)) == 1


async def test_wrong_credentials_fail_the_message_with_the_reason(settings, db, tenant, twilio) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    twilio.accounts[SID] = "rotated-elsewhere"
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    assert await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id) == "failed"
    assert "401" in (await stored_message(db, tenant.id, outcome.message_id)).reason
    assert twilio.sent == []


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(token, url, params)}


async def test_a_signed_status_callback_marks_the_sms_delivered(
    settings, db, tenant, other_tenant, twilio, client
) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id)
    sid = twilio.sent[0]["sid"]
    path = f"/sms/{tenant.id}/status"
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": SID}

    forged = await client.post(path, data=params, headers=signed(DEFAULT_PUBLIC_URL + path, params, "guess"))
    assert forged.status_code == 403 and "X-Twilio-Signature" in forged.text
    unsigned = await client.post(path, data=params)
    assert unsigned.status_code == 403
    # Another tenant's endpoint, even signed with its own token, does not reach this tenant's message.
    await set_up_sms(settings, db, other_tenant.id, twilio, token="other-token")
    theirs = f"/sms/{other_tenant.id}/status"
    response = await client.post(
        theirs, data=params, headers=signed(DEFAULT_PUBLIC_URL + theirs, params, "other-token")
    )
    assert response.status_code == 204
    assert (await stored_message(db, tenant.id, outcome.message_id)).status == "sent"

    response = await client.post(path, data=params, headers=signed(DEFAULT_PUBLIC_URL + path, params))
    assert response.status_code == 204
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.delivered_at is not None) == ("delivered", True)
    assert (await message_statuses(db, tenant.id, message.id))[-1] == "delivered"
    assert (await client.post(f"/sms/{uuid.uuid4()}/status", data=params)).status_code == 403
    assert (await client.post("/sms/not-a-tenant/status", data=params)).status_code == 404


async def test_an_undelivered_callback_fails_the_sms_and_suppresses_an_unreachable_number(
    settings, db, tenant, twilio, client
) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    await deliver(db, with_sms(settings, twilio), tenant.id, outcome.message_id)
    path = f"/sms/{tenant.id}/status"
    params = {"MessageSid": twilio.sent[0]["sid"], "MessageStatus": "undelivered", "ErrorCode": "21614"}
    response = await client.post(path, data=params, headers=signed(DEFAULT_PUBLIC_URL + path, params))
    assert response.status_code == 204
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.reason) == ("failed", "the SMS provider reports undelivered (error 21614)")
    assert (await schedule(db, tenant.id, customer.id, channel="sms")).status == "suppressed"


async def test_a_stop_reply_opts_the_customer_out(settings, db, tenant, other_tenant, twilio, client) -> None:
    await set_up_sms(settings, db, tenant.id, twilio)
    customer = await sms_customer(db, tenant.id, "cus_1", "+14155550100")
    path = f"/sms/{tenant.id}/inbound"
    params = {"From": "+14155550100", "To": FROM, "Body": " stop ", "MessageSid": "SM" + "9" * 32}

    forged = await client.post(path, data=params, headers=signed(DEFAULT_PUBLIC_URL + path, params, "guess"))
    assert forged.status_code == 403
    async with db.tenant_session(tenant.id) as session:
        assert not await service.opted_out(session, tenant.id, customer.id, "sms")

    chat = params | {"Body": "when is my card charged?"}
    assert (await client.post(path, data=chat, headers=signed(DEFAULT_PUBLIC_URL + path, chat))).status_code == 200
    async with db.tenant_session(tenant.id) as session:
        assert not await service.opted_out(session, tenant.id, customer.id, "sms")

    response = await client.post(path, data=params, headers=signed(DEFAULT_PUBLIC_URL + path, params))
    assert response.status_code == 200 and "<Response></Response>" in response.text
    async with db.tenant_session(tenant.id) as session:
        assert await service.opted_out(session, tenant.id, customer.id, "sms")
    later = await schedule(db, tenant.id, customer.id, channel="sms")
    assert (later.status, later.reason) == ("suppressed", "the customer opted out of sms")
    # The same number at another tenant is untouched.
    theirs = await sms_customer(db, other_tenant.id, "cus_1", "+14155550100")
    assert (await schedule(db, other_tenant.id, theirs.id, channel="sms")).status == "scheduled"


WHOP_KEY = "whop-api-key"


async def set_up_whop(settings, db, tenant_id, whop_api, key: str = WHOP_KEY) -> None:
    whop_api.api_keys.add(WHOP_KEY)
    async with db.tenant_unit_of_work(tenant_id) as session:
        await service.update_channel_settings(
            session,
            AuthSubject.system(tenant_id),
            secret_key=settings.resolved_secret_key,
            whop_api_key=key,
            whop_account_id="biz_Acme123",
        )


async def whop_customer(db, tenant_id, user_id: str = "user_Ana"):
    customer = await create_customer(db, tenant_id, user_id, name="Ana")
    await add_identities(db, customer, ("whop", user_id))
    return customer


async def test_a_whop_notification_goes_through_whop_sdk(settings, db, tenant, whop_api) -> None:
    await set_up_whop(settings, db, tenant.id, whop_api)
    customer = await whop_customer(db, tenant.id)
    outcome = await schedule(db, tenant.id, customer.id, channel="whop", template="winback")
    local = settings.model_copy(update={"whop_api_url": whop_api.url})
    assert await deliver(db, local, tenant.id, outcome.message_id) == "sent"
    [sent] = whop_api.notifications
    assert (sent["account_id"], sent["user_ids"], sent["title"]) == ("biz_Acme123", ["user_Ana"], tenant.tenant.name)
    assert sent["content"].startswith(f"We miss you at {tenant.tenant.name}.")
    assert sent["idempotency_key"] == str(outcome.message_id)


async def test_a_whop_notification_without_a_key_is_captured(settings, db, tenant) -> None:
    customer = await whop_customer(db, tenant.id)
    outcome = await schedule(db, tenant.id, customer.id, channel="whop", template="winback")
    assert await deliver(db, settings, tenant.id, outcome.message_id) == "captured"


async def test_an_interrupted_whop_send_is_sent_again_and_whop_drops_the_repeat(settings, db, tenant, whop_api) -> None:
    await set_up_whop(settings, db, tenant.id, whop_api)
    customer = await whop_customer(db, tenant.id)
    outcome = await schedule(db, tenant.id, customer.id, channel="whop", template="winback")
    local = settings.model_copy(update={"whop_api_url": whop_api.url})
    assert await deliver(db, local, tenant.id, outcome.message_id) == "sent"
    # As if the worker had died after Whop queued it, before recording it: still sending, lease run out,
    # and the worker that goes on is another process, which never saw it sent.
    forget_settled()
    async with db.tenant_unit_of_work(tenant.id) as session:
        stuck = {"status": "sending", "lease_expires_at": utcnow() - timedelta(seconds=1)}
        await session.execute(update(Message).where(Message.id == outcome.message_id).values(**stuck))
    assert await resolve_interrupted(db, tenant.id) == 1
    assert (await stored_message(db, tenant.id, outcome.message_id)).status == "scheduled"
    assert await deliver(db, local, tenant.id, outcome.message_id) == "sent"
    assert whop_api.requests == 2 and len(whop_api.notifications) == 1


async def test_a_refused_whop_key_fails_the_message(settings, db, tenant, whop_api) -> None:
    await set_up_whop(settings, db, tenant.id, whop_api, key="revoked")
    customer = await whop_customer(db, tenant.id)
    outcome = await schedule(db, tenant.id, customer.id, channel="whop", template="winback")
    local = settings.model_copy(update={"whop_api_url": whop_api.url})
    assert await deliver(db, local, tenant.id, outcome.message_id) == "failed"
    assert "401" in (await stored_message(db, tenant.id, outcome.message_id)).reason
