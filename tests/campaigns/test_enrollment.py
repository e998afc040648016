"""Enrollment: an opened case enters every active campaign whose kind and audience match, once,
with a recorded variant or holdout; its steps become rows with their due times and a dispatch job
waits for each due time."""

from datetime import timedelta

from sqlalchemy import select

from churnsaver.backend.campaigns import service
from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE, enroll_cases
from churnsaver.backend.campaigns.models import Campaign
from churnsaver.backend.campaigns.playbooks import DEFAULT_PLAYBOOKS
from churnsaver.backend.core.domain_events import DomainEvent
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.auth import Scope
from tests.fixtures.campaigns import enroll, enrollments, only_campaign, open_failed_payment, steps
from tests.fixtures.factories import scoped_subject


async def campaigns_by_id(db, tenant_id) -> dict:
    async with db.tenant_session(tenant_id) as session:
        found = (await session.execute(select(Campaign).where(Campaign.tenant_id == tenant_id))).scalars()
        return {campaign.id: campaign for campaign in found}


async def test_opening_a_case_records_a_case_changed_domain_event_with_it(db, tenant) -> None:
    case = await open_failed_payment(db, tenant.id, "user_a")
    async with db.tenant_session(tenant.id) as session:
        statement = select(DomainEvent).where(DomainEvent.tenant_id == tenant.id, DomainEvent.type == "case.changed")
        [event] = (await session.execute(statement)).scalars()
    assert event.subject_id == case.id
    assert event.payload == {
        "case_event": "opened",
        "kind": "payment_failed",
        "customer_id": str(case.customer_id),
        "status": "open",
    }
    async with db.system_session() as session:
        statement = select(OutboxJob.kwargs).where(OutboxJob.actor_name == "campaigns.consume_case_changes")
        assert {"tenant_id": str(tenant.id)} in list((await session.execute(statement)).scalars())


async def test_a_hard_decline_enters_the_hard_decline_playbook_with_its_steps_due_on_time(db, tenant) -> None:
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_unit_of_work(tenant.id) as session:  # the defaults, created on first use
        hard = next(
            c for c in (await service.list_campaigns(session, subject)).rows if c.playbook == "payment_failed_hard"
        )
        await service.update_campaign(session, subject, hard.id, holdout_share=0.0)
    case = await open_failed_payment(db, tenant.id, "user_a", hard=True)
    assert case.details["decline_class"] == "hard"
    await enroll(db, tenant.id)
    campaigns = await campaigns_by_id(db, tenant.id)
    assert {c.playbook for c in campaigns.values()} == {p.key for p in DEFAULT_PLAYBOOKS}
    [enrollment] = await enrollments(db, tenant.id)
    assert (enrollment.campaign_id, enrollment.holdout) == (hard.id, False)
    rows = await steps(db, tenant.id)
    assert [(s.channel, s.template, s.status) for s in rows] == [
        ("email", "payment_failed_update_card", "pending"),
        ("in_app", "payment_failed_update_card", "pending"),
        ("sms", "payment_failed_update_card", "pending"),
        ("email", "payment_failed_offer", "pending"),
        ("email", "payment_failed_final_notice", "pending"),
    ]
    opened = case.opened_at
    assert [s.due_at for s in rows[:4]] == [opened, opened, opened + timedelta(days=1), opened + timedelta(days=3)]
    assert rows[4].due_at == case.window_ends_at - timedelta(days=1)
    async with db.system_session() as session:
        statement = select(OutboxJob.not_before).where(OutboxJob.actor_name == DISPATCH_DUE)
        waits = set((await session.execute(statement)).scalars())
    assert {s.due_at for s in rows[2:]} <= waits


async def test_a_soft_decline_enters_the_soft_playbook_and_waits_for_the_retry(db, tenant) -> None:
    case = await open_failed_payment(db, tenant.id, "user_b", hard=False)
    assert case.details["decline_class"] == "soft"
    await only_campaign(
        db,
        tenant.id,
        kinds=["payment_failed"],
        steps=[
            {
                "delay": "PT0S",
                "channel": "email",
                "template": "payment_failed_update_card",
                "condition": "after_next_retry",
            }
        ],
        audience={"decline_classes": ["soft"]},
    )
    async with db.tenant_unit_of_work(tenant.id) as session:
        await enroll_cases(session, tenant.id, [case.id])
    [step] = await steps(db, tenant.id)
    assert step.due_at == case.opened_at + timedelta(days=1)  # no known retry time: the default wait


async def test_a_case_enters_a_campaign_once_however_often_it_is_enrolled(db, tenant) -> None:
    case = await open_failed_payment(db, tenant.id, "user_a")
    await only_campaign(
        db, tenant.id, kinds=["payment_failed"], steps=[{"delay": "P1D", "channel": "email", "template": "winback"}]
    )
    for _ in range(3):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await enroll_cases(session, tenant.id, [case.id])
    await enroll(db, tenant.id)
    assert len(await enrollments(db, tenant.id)) == 1
    assert len(await steps(db, tenant.id)) == 1


async def test_audience_kind_and_status_decide_which_campaigns_enroll(db, tenant) -> None:
    case = await open_failed_payment(db, tenant.id, "user_a", hard=True)
    step = [{"delay": "PT0S", "channel": "email", "template": "winback"}]
    soft_only = await only_campaign(
        db, tenant.id, kinds=["payment_failed"], steps=step, audience={"decline_classes": ["soft"]}
    )
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_unit_of_work(tenant.id) as session:
        other_kind = await service.create_campaign(
            session, subject, name="c", case_kinds=["canceled"], variants=[{"name": "a", "steps": step}]
        )
        paused = await service.create_campaign(
            session, subject, name="p", case_kinds=["payment_failed"], variants=[{"name": "a", "steps": step}]
        )
        await service.change_status(session, subject, paused.id, "pause")
        matching = await service.create_campaign(
            session,
            subject,
            name="m",
            case_kinds=["payment_failed"],
            variants=[{"name": "a", "steps": step}],
            audience={"decline_classes": ["hard"], "mrr_min": 100},
            holdout_share=0.0,
        )
    await enroll(db, tenant.id)
    assert [e.campaign_id for e in await enrollments(db, tenant.id)] == [matching.id]
    assert soft_only.id != other_kind.id and case.revenue_at_risk >= 100


async def test_the_holdout_is_recorded_and_gets_no_steps_and_assignment_never_changes(db, tenant) -> None:
    variants = [
        {"name": "a", "steps": [{"delay": "PT0S", "channel": "email", "template": "winback"}]},
        {"name": "b", "steps": [{"delay": "PT1H", "channel": "email", "template": "winback"}]},
    ]
    campaign = await only_campaign(
        db, tenant.id, kinds=["payment_failed"], steps=[], variants=variants, holdout_share=0.5
    )
    for number in range(24):
        await open_failed_payment(db, tenant.id, f"user_{number}")
    await enroll(db, tenant.id)
    found = await enrollments(db, tenant.id)
    assert len(found) == 24
    held_out = [e for e in found if e.holdout]
    assert held_out and len(held_out) < 24
    assert all(e.variant is None for e in held_out) and all(e.variant in ("a", "b") for e in found if not e.holdout)
    stepped = {s.enrollment_id for s in await steps(db, tenant.id)}
    assert stepped == {e.id for e in found if not e.holdout}
    # Weights change later; what was assigned stays.
    subject = scoped_subject(tenant.id, Scope.read, Scope.write)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await service.update_campaign(
            session, subject, campaign.id, variants=[{**variants[0], "weight": 9}, variants[1]], holdout_share=0.0
        )
        await enroll_cases(session, tenant.id, [e.case_id for e in found])
    assert [(e.id, e.variant, e.holdout) for e in await enrollments(db, tenant.id)] == [
        (e.id, e.variant, e.holdout) for e in found
    ]
