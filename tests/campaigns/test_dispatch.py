"""Dispatch: due steps become channels messages at most once (duplicate jobs, two dispatchers at
once, a lost job queue), stop when a stop condition holds, move out of quiet hours in the
customer's zone, and wait for the frequency caps across campaigns."""

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from churnsaver.backend.campaigns import service
from churnsaver.backend.campaigns.dispatch import dispatch_due, dispatch_steps
from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE
from churnsaver.backend.campaigns.repository import StepRepository
from churnsaver.backend.channels.repository import ConsentRepository
from churnsaver.backend.core.db import utcnow
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.auth import Scope
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.campaigns import (
    add_campaign,
    channel_settings,
    enroll,
    messages,
    no_quiet_hours,
    only_campaign,
    open_failed_payment,
    set_traits,
    steps,
)
from tests.fixtures.cases import apply_and_reconcile, stored_case_events, stored_cases
from tests.fixtures.factories import scoped_subject

EMAIL_NOW = [{"delay": "PT0S", "channel": "email", "template": "payment_failed_update_card"}]


async def enrolled_cases(db, tenant_id, count: int, step_list=EMAIL_NOW) -> list:
    await no_quiet_hours(db, tenant_id)
    await only_campaign(db, tenant_id, kinds=["payment_failed"], steps=step_list)
    cases = [await open_failed_payment(db, tenant_id, f"user_{n}") for n in range(count)]
    await enroll(db, tenant_id)
    return cases


async def test_a_due_step_becomes_one_message_under_its_own_key_and_touches_the_case(db, tenant) -> None:
    [case] = await enrolled_cases(db, tenant.id, 1)
    report = await dispatch_due(db, tenant.id)
    assert report.sent == 1
    [step] = await steps(db, tenant.id)
    [message] = await messages(db, tenant.id)
    assert (step.status, step.message_id) == ("sent", message.id)
    assert message.idempotency_key == f"campaign-step:{step.id}"
    assert (message.case_id, message.campaign_id, message.channel, message.status) == (
        case.id,
        step.campaign_id,
        "email",
        "scheduled",
    )
    assert message.to_address == "user_0@example.com"
    [stored] = await stored_cases(db, tenant.id)
    assert stored.first_touch_at is not None
    assert "touched" in [event.type for event in await stored_case_events(db, tenant.id)]


async def test_a_step_not_due_yet_waits(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 1, [{"delay": "P1D", "channel": "email", "template": "winback"}])
    assert (await dispatch_due(db, tenant.id)).sent == 0
    assert await messages(db, tenant.id) == []
    [step] = await steps(db, tenant.id)
    assert (await dispatch_due(db, tenant.id, step.due_at + timedelta(seconds=1))).sent == 1


async def test_duplicate_dispatch_jobs_send_each_step_once(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 5)
    for _ in range(4):
        await dispatch_due(db, tenant.id)
    sent = await messages(db, tenant.id)
    assert len(sent) == 5 and len({m.idempotency_key for m in sent}) == 5


async def test_two_dispatchers_at_once_send_each_step_once(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 40)
    reports = await asyncio.gather(*(dispatch_due(db, tenant.id, limit=7) for _ in range(2)))
    assert sum(report.sent for report in reports) == 40
    sent = await messages(db, tenant.id)
    assert len(sent) == 40 and len({m.customer_id for m in sent}) == 40
    assert {s.status for s in await steps(db, tenant.id)} == {"sent"}


async def test_steps_whose_jobs_were_lost_are_sent_by_the_sweep_from_the_rows(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 3)
    async with db.system_unit_of_work() as session:  # a flushed Redis and a lost outbox: only the rows remain
        await session.execute(delete(OutboxJob).where(OutboxJob.actor_name == DISPATCH_DUE))
    assert (await dispatch_due(db, tenant.id)).sent == 3


async def test_a_resolved_case_stops_its_remaining_steps(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 1, [{"delay": "PT1H", "channel": "email", "template": "winback"}])
    paid = payloads.whop_payment_succeeded(
        user_id="user_0", membership_id="mem_user_0", at=utcnow() - timedelta(minutes=1)
    )
    await apply_and_reconcile(db, tenant.id, paid)
    [stored] = await stored_cases(db, tenant.id)
    assert stored.status == "recovered"
    report = await dispatch_due(db, tenant.id, utcnow() + timedelta(hours=2))
    assert (report.sent, report.stopped) == (0, 1)
    [step] = await steps(db, tenant.id)
    assert (step.status, step.reason) == ("stopped", "the case is recovered")
    assert await messages(db, tenant.id) == []


async def test_a_paused_campaign_and_an_opt_out_stop_steps(db, tenant) -> None:
    step_list = [
        {"delay": "PT0S", "channel": "email", "template": "winback"},
        {"delay": "PT0S", "channel": "in_app", "template": "winback"},
    ]
    cases = await enrolled_cases(db, tenant.id, 2, step_list)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await ConsentRepository(session, tenant.id).opt_out(cases[0].customer_id, "email", "test")
    report = await dispatch_due(db, tenant.id)
    assert (report.sent, report.stopped) == (3, 1)
    stopped = [s for s in await steps(db, tenant.id) if s.status == "stopped"]
    assert [(s.customer_id, s.reason) for s in stopped] == [(cases[0].customer_id, "the customer opted out of email")]
    # A paused campaign stops what falls due while it is paused.
    [campaign_id] = {s.campaign_id for s in await steps(db, tenant.id)}
    later = await open_failed_payment(db, tenant.id, "user_late")
    await enroll(db, tenant.id)
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await service.change_status(session, subject, campaign_id, "pause")
    assert (await dispatch_due(db, tenant.id)).stopped == 2
    assert {s.reason for s in await steps(db, tenant.id) if s.case_id == later.id} == {"the campaign is paused"}


def next_utc(hour: int, minute: int) -> datetime:
    now = utcnow()
    moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > now else moment + timedelta(days=1)


async def test_quiet_hours_move_a_step_to_the_customers_morning_and_its_job_with_it(db, tenant) -> None:
    await only_campaign(db, tenant.id, kinds=["payment_failed"], steps=EMAIL_NOW)
    await channel_settings(db, tenant.id, timezone="Europe/London")
    london = await open_failed_payment(db, tenant.id, "user_london")
    tokyo = await open_failed_payment(db, tenant.id, "user_tokyo")
    await set_traits(db, tenant.id, tokyo.customer_id, timezone="Asia/Tokyo")
    await enroll(db, tenant.id)
    at = next_utc(23, 30)  # 23:30 or 00:30 in London, 08:30 in Tokyo
    report = await dispatch_due(db, tenant.id, at)
    assert (report.sent, report.deferred) == (1, 1)
    [message] = await messages(db, tenant.id)
    assert message.customer_id == tokyo.customer_id
    [waiting] = [s for s in await steps(db, tenant.id) if s.case_id == london.id]
    local = waiting.due_at.astimezone(ZoneInfo("Europe/London"))
    assert (waiting.status, local.hour, local.minute) == ("pending", 8, 0)
    assert at < waiting.due_at < at + timedelta(hours=10)
    async with db.system_session() as session:
        statement = select(OutboxJob.not_before).where(OutboxJob.actor_name == DISPATCH_DUE)
        assert waiting.due_at in set((await session.execute(statement)).scalars())
    assert (await dispatch_due(db, tenant.id, waiting.due_at)).sent == 1


async def test_a_country_trait_gives_the_zone_when_there_is_no_timezone(db, tenant) -> None:
    await only_campaign(db, tenant.id, kinds=["payment_failed"], steps=EMAIL_NOW)
    case = await open_failed_payment(db, tenant.id, "user_jp")
    await set_traits(db, tenant.id, case.customer_id, country="JP")
    await enroll(db, tenant.id)
    assert (await dispatch_due(db, tenant.id, next_utc(23, 30))).sent == 1  # 08:30 in Japan


async def test_caps_hold_across_campaigns_and_defer_until_the_cap_allows(db, tenant) -> None:
    await only_campaign(db, tenant.id, kinds=["payment_failed"], steps=EMAIL_NOW, name="first")
    await add_campaign(
        db,
        tenant.id,
        name="second",
        case_kinds=["payment_failed"],
        variants=[{"name": "a", "steps": [*EMAIL_NOW, {"delay": "PT0S", "channel": "in_app", "template": "winback"}]}],
    )
    await no_quiet_hours(db, tenant.id)
    await open_failed_payment(db, tenant.id, "user_a")
    await enroll(db, tenant.id)
    report = await dispatch_due(db, tenant.id)
    assert (report.sent, report.deferred) == (2, 1)  # one email (1 per channel per day) and the in-app message
    sent = await messages(db, tenant.id)
    assert sorted(m.channel for m in sent) == ["email", "in_app"]
    [deferred] = [s for s in await steps(db, tenant.id) if s.status == "pending"]
    [first_email] = [s for s in await steps(db, tenant.id) if s.status == "sent" and s.channel == "email"]
    assert deferred.due_at == first_email.sent_at + timedelta(days=1)
    assert (await dispatch_due(db, tenant.id, deferred.due_at - timedelta(minutes=5))).sent == 0


async def test_the_weekly_cap_counts_every_channel_but_in_app(db, tenant) -> None:
    await channel_settings(db, tenant.id, cap_per_customer_per_week=2, cap_per_channel_per_day=5)
    step_list = [
        {"delay": "PT0S", "channel": channel, "template": "winback"} for channel in ("email", "whop", "email", "in_app")
    ]
    await enrolled_cases(db, tenant.id, 1, step_list)
    report = await dispatch_due(db, tenant.id)
    assert (report.sent, report.deferred) == (3, 1)
    by_index = {s.step_index: s for s in await steps(db, tenant.id)}
    assert [by_index[n].status for n in range(4)] == ["sent", "sent", "pending", "sent"]
    assert by_index[2].due_at == by_index[0].sent_at + timedelta(days=7)


async def test_dispatching_one_tenant_leaves_another_tenants_steps_alone(db, tenant, other_tenant) -> None:
    await enrolled_cases(db, tenant.id, 2)
    await enrolled_cases(db, other_tenant.id, 3)
    assert (await dispatch_due(db, tenant.id)).sent == 2
    assert {s.status for s in await steps(db, other_tenant.id)} == {"pending"}
    assert await messages(db, other_tenant.id) == []


async def test_a_dispatcher_dying_mid_batch_leaves_its_steps_pending_and_they_are_sent_once_later(db, tenant) -> None:
    await enrolled_cases(db, tenant.id, 3)
    with pytest.raises(RuntimeError):
        async with db.tenant_unit_of_work(tenant.id) as session:
            due = StepRepository(session, tenant.id).select_due(utcnow(), 10)
            report = await dispatch_steps(
                session, tenant.id, list((await session.execute(due)).scalars()), utcnow(), db.settings
            )
            assert report.sent == 3
            raise RuntimeError("the worker dies before its transaction commits")
    assert {s.status for s in await steps(db, tenant.id)} == {"pending"}
    assert await messages(db, tenant.id) == []
    assert (await dispatch_due(db, tenant.id)).sent == 3
    assert len(await messages(db, tenant.id)) == 3
