"""The seam campaigns calls: schedule_message once per key, consent and addresses checked, caps
counted, opt-outs and settings read, tenants kept apart."""

from datetime import timedelta
from functools import partial

import pytest

from churnsaver.backend.channels import service
from churnsaver.backend.channels.repository import ConsentRepository
from churnsaver.backend.channels.settings import ChannelSettings, load_settings, store_settings
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput, NotFound
from tests.fixtures.channels import message_statuses, schedule, send_jobs, stored_message, stored_messages
from tests.fixtures.factories import add_identities, create_customer


async def test_scheduling_stores_the_message_and_enqueues_its_send_not_before_the_time(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com", name="Ana")
    due = utcnow().replace(microsecond=0) + timedelta(hours=2)
    outcome = await schedule(db, tenant.id, customer.id, idempotency_key="step:1", not_before=due)
    assert outcome.created and outcome.status == "scheduled" and outcome.reason is None
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.channel, message.to_address, message.scheduled_for) == ("email", "ana@example.com", due)
    [job] = await send_jobs(db, outcome.message_id)
    assert job.not_before == due and job.kwargs["tenant_id"] == str(tenant.id)


async def test_the_same_idempotency_key_returns_the_first_message_and_enqueues_nothing_more(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    first = await schedule(db, tenant.id, customer.id, idempotency_key="campaign-step:42")
    again = await schedule(db, tenant.id, customer.id, idempotency_key="campaign-step:42", channel="sms")
    assert (again.message_id, again.created, again.status) == (first.message_id, False, "scheduled")
    assert len(await stored_messages(db, tenant.id)) == 1
    assert len(await send_jobs(db, first.message_id)) == 1


async def test_two_schedules_of_one_key_in_one_transaction_store_one_message(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    async with db.tenant_unit_of_work(tenant.id) as session:
        outcomes = [
            await service.schedule_message(
                session,
                tenant.id,
                customer_id=customer.id,
                case_id=None,
                channel="email",
                template="winback",
                idempotency_key="k",
            )
            for _ in range(2)
        ]
    assert [o.created for o in outcomes] == [True, False]
    assert outcomes[0].message_id == outcomes[1].message_id


async def test_a_rolled_back_transaction_keeps_neither_message_nor_job(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    with pytest.raises(RuntimeError):
        async with db.tenant_unit_of_work(tenant.id) as session:
            outcome = await service.schedule_message(
                session,
                tenant.id,
                customer_id=customer.id,
                case_id=None,
                channel="email",
                template="winback",
                idempotency_key="k",
            )
            raise RuntimeError("the campaign's transaction fails")
    assert await stored_messages(db, tenant.id) == []
    assert await send_jobs(db, outcome.message_id) == []


@pytest.mark.parametrize(
    ("fields", "channel", "reason"),
    [
        ({"email": None}, "email", "the customer has no valid email address"),
        ({"email": "not an address"}, "email", "the customer has no valid email address"),
        ({"phone": "+14155550100"}, "sms", "no SMS consent recorded for the customer"),
        ({"phone": "12"}, "sms", "the customer has no valid phone number"),
        ({"email": "ana@example.com"}, "whop", "the customer has no Whop user"),
        ({"email": "ana@example.com", "traits": {"consent_email": False}}, "email", "the customer opted out of email"),
    ],
)
async def test_a_message_that_may_not_be_sent_is_stored_suppressed_with_its_reason(
    db, tenant, fields, channel, reason
) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", **fields)
    outcome = await schedule(db, tenant.id, customer.id, channel=channel)
    assert (outcome.status, outcome.reason) == ("suppressed", reason)
    assert (await stored_message(db, tenant.id, outcome.message_id)).status == "suppressed"
    assert await send_jobs(db, outcome.message_id) == []


async def test_sms_is_scheduled_with_recorded_consent_in_e164(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", phone="(415) 555-0100", traits={"country": "US"})
    async with db.tenant_unit_of_work(tenant.id) as session:
        await ConsentRepository(session, tenant.id).record_sms_consent(customer.id, "+14155550100", "checkout")
    outcome = await schedule(db, tenant.id, customer.id, channel="sms")
    assert outcome.status == "scheduled"
    assert (await stored_message(db, tenant.id, outcome.message_id)).to_address == "+14155550100"


async def test_a_suppressed_address_and_an_opt_out_suppress_the_message(db, tenant) -> None:
    bounced = await create_customer(db, tenant.id, "cus_1", email="Gone@Example.com")
    unsubscribed = await create_customer(db, tenant.id, "cus_2", email="bea@example.com")
    async with db.tenant_unit_of_work(tenant.id) as session:
        consent = ConsentRepository(session, tenant.id)
        await consent.suppress("email", "gone@example.com", "SMTP 550: no such user")
        await consent.opt_out(unsubscribed.id, "email", "unsubscribe_link")
    first = await schedule(db, tenant.id, bounced.id)
    second = await schedule(db, tenant.id, unsubscribed.id)
    assert (first.status, first.reason) == ("suppressed", "the address is suppressed: SMTP 550: no such user")
    assert (second.status, second.reason) == ("suppressed", "the customer opted out of email")


async def test_whop_messages_go_to_the_customers_whop_user(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "user_abc")
    await add_identities(db, customer, ("whop", "user_abc"))
    outcome = await schedule(db, tenant.id, customer.id, channel="whop")
    assert outcome.status == "scheduled"
    assert (await stored_message(db, tenant.id, outcome.message_id)).to_address == "user_abc"


async def test_another_tenants_customer_is_not_found_and_nothing_is_stored(db, tenant, other_tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    with pytest.raises(NotFound):
        await schedule(db, other_tenant.id, customer.id)
    assert await stored_messages(db, other_tenant.id) == []
    assert await stored_messages(db, tenant.id) == []


async def test_keys_are_per_tenant(db, tenant, other_tenant) -> None:
    mine = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    theirs = await create_customer(db, other_tenant.id, "cus_1", email="bo@example.com")
    first = await schedule(db, tenant.id, mine.id, idempotency_key="same")
    second = await schedule(db, other_tenant.id, theirs.id, idempotency_key="same")
    assert first.created and second.created and first.message_id != second.message_id


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"channel": "fax"}, "unknown channel 'fax'"),
        ({"idempotency_key": ""}, "idempotency key"),
        ({"idempotency_key": "x" * 256}, "idempotency key"),
        ({"template": ""}, "template key"),
    ],
)
async def test_bad_arguments_are_invalid_input(db, tenant, change, error) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    with pytest.raises(InvalidInput, match=error):
        await schedule(db, tenant.id, customer.id, **change)


async def test_sent_counts_count_what_reaches_the_customer_per_channel(db, tenant) -> None:
    customer = await create_customer(
        db, tenant.id, "cus_1", email="ana@example.com", phone="+14155550100", traits={"consent_sms": True}
    )
    other = await create_customer(db, tenant.id, "cus_2", email="bo@example.com")
    now = utcnow()
    await schedule(db, tenant.id, customer.id, channel="email")
    await schedule(db, tenant.id, customer.id, channel="email")
    await schedule(db, tenant.id, customer.id, channel="sms")
    await schedule(db, tenant.id, customer.id, channel="in_app")
    await schedule(db, tenant.id, customer.id, channel="email", test=True)  # a test send does not count
    await schedule(db, tenant.id, customer.id, channel="whop")  # suppressed (no Whop user): does not count
    await schedule(db, tenant.id, customer.id, channel="email", not_before=now - timedelta(days=8))  # too old
    await schedule(db, tenant.id, other.id, channel="email")
    async with db.tenant_session(tenant.id) as session:
        counts = await service.sent_counts(session, tenant.id, customer.id, since=now - timedelta(days=7))
        assert counts == {"email": 2, "sms": 1, "in_app": 1}
    async with db.tenant_session(tenant.id) as session:
        assert await service.sent_counts(session, tenant.id, customer.id, since=now + timedelta(minutes=1)) == {}


async def test_opted_out_reads_recorded_opt_outs_and_consent_traits(db, tenant, other_tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="a@example.com", traits={"consent_sms": False})
    async with db.tenant_unit_of_work(tenant.id) as session:
        await ConsentRepository(session, tenant.id).opt_out(customer.id, "email", "sms_stop")
    async with db.tenant_session(tenant.id) as session:
        assert await service.opted_out(session, tenant.id, customer.id, "email")
        assert await service.opted_out(session, tenant.id, customer.id, "sms")
        assert not await service.opted_out(session, tenant.id, customer.id, "in_app")
    async with db.tenant_session(other_tenant.id) as session:
        assert not await service.opted_out(session, other_tenant.id, customer.id, "email")


async def test_settings_for_gives_defaults_then_what_the_tenant_stored(db, tenant, other_tenant) -> None:
    async with db.tenant_session(tenant.id) as session:
        defaults = await service.settings_for(session, tenant.id)
    assert (defaults.quiet_hours_start, defaults.quiet_hours_end, defaults.timezone) == ("21:00", "08:00", "UTC")
    assert (defaults.cap_per_customer_per_week, defaults.cap_per_channel_per_day) == (3, 1)
    changed = ChannelSettings().updated(timezone="Europe/Berlin", quiet_hours_start="22:30", cap_per_channel_per_day=2)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await store_settings(session, tenant.id, changed)
    async with db.tenant_session(tenant.id) as session:
        stored = await service.settings_for(session, tenant.id)
    assert (stored.timezone, stored.quiet_start.hour, stored.quiet_start.minute) == ("Europe/Berlin", 22, 30)
    assert stored.zone.key == "Europe/Berlin" and stored.cap_per_channel_per_day == 2
    async with db.tenant_session(other_tenant.id) as session:
        assert (await load_settings(session, other_tenant.id)).timezone == "UTC"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"quiet_hours_start": "25:00"}, "HH:MM"),
        ({"cap_per_customer_per_week": -1}, "whole number"),
        ({"from_address": "nobody"}, "email address"),
        ({"sms_account_sid": "AC123"}, "account SID"),
        ({"sms_from_number": "hello"}, "phone number"),
        ({"colour": "blue"}, "unknown channel settings"),
        ({"sms_auth_token_set": True}, "unknown channel settings"),
    ],
)
def test_bad_settings_say_what_is_wrong(change, error) -> None:
    with pytest.raises(InvalidInput, match=error):
        ChannelSettings().updated(**change)


async def test_scheduling_many_at_once_gives_each_the_single_outcome_and_one_job(db, tenant) -> None:
    ana = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    bo = await create_customer(db, tenant.id, "cus_2", email=None)
    earlier = await schedule(db, tenant.id, ana.id, idempotency_key="old")
    request = partial(service.MessageRequest, case_id=None, channel="email", template="winback")
    async with db.tenant_unit_of_work(tenant.id) as session:
        outcomes = await service.schedule_messages(
            session,
            tenant.id,
            [
                request(customer_id=ana.id, idempotency_key="a"),
                request(customer_id=bo.id, idempotency_key="b"),
                request(customer_id=ana.id, idempotency_key="old"),
                request(customer_id=ana.id, idempotency_key="a"),
            ],
        )
    assert [(o.status, o.created) for o in outcomes] == [
        ("scheduled", True),
        ("suppressed", True),
        ("scheduled", False),
        ("scheduled", False),
    ]
    assert outcomes[1].reason == "the customer has no valid email address"
    assert outcomes[2].message_id == earlier.message_id and outcomes[3].message_id == outcomes[0].message_id
    assert len(await stored_messages(db, tenant.id)) == 3
    assert len(await send_jobs(db, outcomes[0].message_id)) == 1 and not await send_jobs(db, outcomes[1].message_id)
    assert await message_statuses(db, tenant.id, outcomes[1].message_id) == ["suppressed"]


async def test_scheduling_many_stores_none_when_one_customer_is_not_the_tenants(db, tenant, other_tenant) -> None:
    ana = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    stranger = await create_customer(db, other_tenant.id, "cus_1", email="x@example.com")
    request = partial(service.MessageRequest, case_id=None, channel="email", template="winback")
    with pytest.raises(NotFound):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await service.schedule_messages(
                session,
                tenant.id,
                [
                    request(customer_id=ana.id, idempotency_key="a"),
                    request(customer_id=stranger.id, idempotency_key="b"),
                ],
            )
    assert await stored_messages(db, tenant.id) == []
