"""The channels.send job: email over SMTP to a real aiosmtpd, captured without one, at most once
under duplicate jobs and dead workers, temporary failures retried, permanent ones suppressed."""

import asyncio
from datetime import timedelta

from sqlalchemy import update

from churnsaver.backend.channels.delivery import INTERRUPTED, deliver, deliver_many, resolve_interrupted
from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.repository import ConsentRepository
from churnsaver.backend.core.db import utcnow
from churnsaver.jobs.relay import merged_groups
from tests.fixtures.channels import message_statuses, schedule, send_jobs, stored_message
from tests.fixtures.factories import create_customer


def with_smtp(settings, url: str | None):
    return settings.model_copy(update={"smtp_url": url, "public_url": "https://retain.example.com"})


async def test_without_smtp_an_email_is_captured_rendered_with_absolute_signed_links(settings, db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com", name="Ana")
    outcome = await schedule(db, tenant.id, customer.id, variables={"amount_due": "$29.00", "plan": "Pro"})
    assert await deliver(db, with_smtp(settings, None), tenant.id, outcome.message_id) == "captured"
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.captured, message.locale) == ("sent", True, "en")
    assert message.subject == "Your payment for Pro did not go through"
    assert "Hi Ana, we could not charge $29.00 for Pro." in message.body_text
    assert "https://retain.example.com/l/" in message.body_text
    assert 'href="https://retain.example.com/l/' in (message.body_html or "")
    assert message.provider_message_id == f"<{message.id}@churnsaver.invalid>"
    assert await message_statuses(db, tenant.id, message.id) == ["scheduled", "sending", "sent"]


async def test_an_email_reaches_the_smtp_server_with_unsubscribe_headers(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com", name="Ana")
    outcome = await schedule(db, tenant.id, customer.id)
    assert await deliver(db, with_smtp(settings, url), tenant.id, outcome.message_id) == "sent"
    [mail] = mailbox.messages
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert mail["To"] == "ana@example.com"
    assert mail["From"] == f"{tenant.tenant.name} <no-reply@churnsaver.invalid>"
    assert mail["Message-ID"] == message.provider_message_id == f"<{message.id}@churnsaver.invalid>"
    assert mail["List-Unsubscribe"].startswith("<https://retain.example.com/l/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_body(("plain",)).get_content().startswith("Hi Ana")
    assert "<a href=" in mail.get_body(("html",)).get_content()
    assert (message.status, message.captured, message.sent_at is not None) == ("sent", False, True)


async def test_a_duplicate_job_never_sends_twice(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    smtp = with_smtp(settings, url)
    outcomes = await asyncio.gather(*(deliver(db, smtp, tenant.id, outcome.message_id) for _ in range(4)))
    outcomes.append(await deliver(db, smtp, tenant.id, outcome.message_id))
    assert outcomes.count("sent") == 1
    assert set(outcomes) <= {"sent", "in flight", "done"}
    assert len(mailbox.to("ana@example.com")) == 1


async def test_a_permanent_failure_fails_the_message_and_suppresses_the_address(
    settings, db, tenant, smtp_server
) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="bounce@example.com")
    first = await schedule(db, tenant.id, customer.id)
    assert await deliver(db, with_smtp(settings, url), tenant.id, first.message_id) == "failed"
    message = await stored_message(db, tenant.id, first.message_id)
    assert message.status == "failed" and message.reason.startswith("SMTP 550")
    second = await schedule(db, tenant.id, customer.id)
    assert second.status == "suppressed" and second.reason.startswith("the address is suppressed: SMTP 550")
    assert mailbox.messages == []


async def test_a_temporary_failure_is_retried_and_then_sent_once(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="later@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    smtp = with_smtp(settings, url)
    assert await deliver(db, smtp, tenant.id, outcome.message_id) == "retrying"
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.reason) == ("scheduled", "retrying: SMTP 451: 4.3.0 try again later")
    # Its next try is a job of its own in the outbox, after a backoff.
    retry = [job for job in await send_jobs(db, outcome.message_id) if job.not_before is not None]
    assert len(retry) == 1 and retry[0].not_before == message.scheduled_for > utcnow()
    mailbox.allow_later = True
    assert await deliver(db, smtp, tenant.id, outcome.message_id) == "sent"
    assert len(mailbox.to("later@example.com")) == 1
    assert (await stored_message(db, tenant.id, outcome.message_id)).attempts == 2


async def test_an_unreachable_server_is_a_temporary_failure(settings, db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    assert await deliver(db, with_smtp(settings, "smtp://127.0.0.1:9"), tenant.id, outcome.message_id) == "retrying"
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert message.status == "scheduled" and message.reason.startswith("retrying: SMTP connection failed")


async def test_a_message_left_sending_by_a_dead_worker_is_failed_never_resent(
    settings, db, tenant, smtp_server
) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    lapsed = utcnow() - timedelta(seconds=1)
    async with db.tenant_unit_of_work(tenant.id) as session:
        # What a worker killed between its claim and the provider's reply leaves behind.
        claimed = {"status": "sending", "lease_expires_at": lapsed}
        await session.execute(update(Message).where(Message.id == outcome.message_id).values(**claimed))
    assert await deliver(db, with_smtp(settings, url), tenant.id, outcome.message_id) == "interrupted"
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.reason) == ("failed", INTERRUPTED)
    assert mailbox.messages == []


async def test_the_sweep_fails_lapsed_sends_and_leaves_live_ones(db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    lapsed = await schedule(db, tenant.id, customer.id)
    live = await schedule(db, tenant.id, customer.id)
    now = utcnow()
    async with db.tenant_unit_of_work(tenant.id) as session:
        for message_id, lease in (
            (lapsed.message_id, now - timedelta(minutes=1)),
            (live.message_id, now + timedelta(minutes=1)),
        ):
            values = {"status": "sending", "lease_expires_at": lease}
            await session.execute(update(Message).where(Message.id == message_id).values(**values))
    assert await resolve_interrupted(db, tenant.id) == 1
    assert (await stored_message(db, tenant.id, lapsed.message_id)).reason == INTERRUPTED
    assert (await stored_message(db, tenant.id, live.message_id)).status == "sending"


async def test_an_opt_out_after_scheduling_suppresses_at_send_time(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await ConsentRepository(session, tenant.id).opt_out(customer.id, "email", "unsubscribe_link")
    assert await deliver(db, with_smtp(settings, url), tenant.id, outcome.message_id) == "suppressed"
    assert (await stored_message(db, tenant.id, outcome.message_id)).reason == "the customer opted out of email"
    assert mailbox.messages == []


async def test_another_tenants_job_finds_nothing_to_send(settings, db, tenant, other_tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    customer = await create_customer(db, tenant.id, "cus_1", email="ana@example.com")
    outcome = await schedule(db, tenant.id, customer.id)
    assert await deliver(db, with_smtp(settings, url), other_tenant.id, outcome.message_id) == "missing"
    assert (await stored_message(db, tenant.id, outcome.message_id)).status == "scheduled"
    assert mailbox.messages == []


async def test_the_customers_locale_picks_the_template_language(settings, db, tenant) -> None:
    german = await create_customer(
        db, tenant.id, "cus_1", email="a@example.com", name="Jonas", traits={"locale": "de-AT"}
    )
    unknown = await create_customer(db, tenant.id, "cus_2", email="b@example.com", name="Li", traits={"locale": "zh"})
    smtp = with_smtp(settings, None)
    for customer, locale, greeting in ((german, "de", "Hallo Jonas"), (unknown, "en", "Hi Li")):
        outcome = await schedule(db, tenant.id, customer.id)
        await deliver(db, smtp, tenant.id, outcome.message_id)
        message = await stored_message(db, tenant.id, outcome.message_id)
        assert message.locale == locale and message.body_text.startswith(greeting)


async def test_in_app_messages_are_stored_for_the_widget(settings, db, tenant) -> None:
    customer = await create_customer(db, tenant.id, "cus_1", name="Ana")
    outcome = await schedule(
        db,
        tenant.id,
        customer.id,
        channel="in_app",
        template="cancellation_offer",
        variables={"offer_description": "Two months at half price."},
    )
    assert await deliver(db, with_smtp(settings, None), tenant.id, outcome.message_id) == "sent"
    message = await stored_message(db, tenant.id, outcome.message_id)
    assert (message.status, message.captured) == ("sent", False)
    assert message.body_text.startswith("Before you go: Two months at half price. https://retain.example.com/l/")


async def test_a_job_sends_other_due_messages_beside_its_own_and_never_one_not_yet_due(
    settings, db, tenant, smtp_server
) -> None:
    url, mailbox = smtp_server
    smtp = with_smtp(settings, url)
    customers = [await create_customer(db, tenant.id, f"cus_{n}", email=f"batch{n}@example.com") for n in range(4)]
    due = [await schedule(db, tenant.id, customer.id) for customer in customers[:3]]
    later = await schedule(db, tenant.id, customers[3].id, not_before=utcnow() + timedelta(hours=1))
    assert await deliver(db, smtp, tenant.id, due[0].message_id, batch=10) == "sent"
    assert {m["To"] for m in mailbox.messages} == {"batch0@example.com", "batch1@example.com", "batch2@example.com"}
    # The others' own jobs come after and find them done; the one not yet due waits for its own.
    for outcome in due[1:]:
        assert await deliver(db, smtp, tenant.id, outcome.message_id, batch=10) == "done"
    assert (await stored_message(db, tenant.id, later.message_id)).status == "scheduled"
    assert len(mailbox.messages) == 3


async def test_concurrent_batches_never_send_a_message_twice(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    smtp = with_smtp(settings, url)
    customers = [await create_customer(db, tenant.id, f"cus_{n}", email=f"many{n}@example.com") for n in range(30)]
    outcomes = [await schedule(db, tenant.id, customer.id) for customer in customers]
    await asyncio.gather(*(deliver(db, smtp, tenant.id, outcome.message_id, batch=8) for outcome in outcomes))
    addresses = [message["To"] for message in mailbox.messages]
    assert sorted(addresses) == sorted(f"many{n}@example.com" for n in range(30))
    for outcome in outcomes:
        assert (await stored_message(db, tenant.id, outcome.message_id)).status == "sent"


async def test_send_jobs_of_a_tenant_merge_and_each_message_is_sent_once(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    smtp = with_smtp(settings, url)
    scheduled = []
    for n in range(3):  # three transactions, three send jobs in the outbox
        customer = await create_customer(db, tenant.id, f"cus_{n}", email=f"c{n}@example.com")
        scheduled.append((await schedule(db, tenant.id, customer.id)).message_id)
    jobs = [job for message_id in scheduled for job in await send_jobs(db, message_id)]
    [merged] = merged_groups(jobs)
    assert len(merged) == 3
    # The merged job and a late duplicate of one row's job, side by side.
    first, late = await asyncio.gather(
        deliver_many(db, smtp, tenant.id, scheduled, batch=3), deliver_many(db, smtp, tenant.id, scheduled[:1])
    )
    assert [first[scheduled[0]], late[scheduled[0]]].count("sent") == 1
    assert first[scheduled[1]] == first[scheduled[2]] == "sent"
    assert sorted(mail["To"] for mail in mailbox.messages) == ["c0@example.com", "c1@example.com", "c2@example.com"]
