"""The demo tenant is seeded into an empty database once; later starts reuse it."""

import asyncio
from collections import Counter

from sqlalchemy import select

from churnsaver.backend.campaigns.models import Campaign, CampaignEnrollment, CampaignStepDue
from churnsaver.backend.campaigns.playbooks import DEFAULT_PLAYBOOKS
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.channels.models import Message
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer, Subscription
from churnsaver.backend.customers.repository import CustomerRepository, SubscriptionRepository
from churnsaver.backend.customers.subscription_state import ENDED_STATUSES
from churnsaver.backend.demo import DEMO_CUSTOMERS, seed_demo_tenant
from churnsaver.backend.migrate import migrate
from churnsaver.backend.offers.models import Offer, Redemption
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.scoring import score_tenant
from churnsaver.backend.risk.service import CustomerOrder, list_customers
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.api_keys import authenticate_api_key
from churnsaver.tenants.auth import AuthSubject


async def test_demo_is_seeded_once_with_synthetic_customers_and_its_key_is_kept(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings)
    try:
        first = await seed_demo_tenant(db, settings)
        second = await seed_demo_tenant(db, settings)

        assert first.created and not second.created
        assert first.api_key == second.api_key
        assert first.tenant_id == second.tenant_id
        async with db.system_session() as session:
            subject = (await authenticate_api_key(session, first.api_key)).subject
        assert subject.tenant_id == first.tenant_id
        async with db.tenant_session(subject.tenant_id) as session:
            assert await CustomerRepository(session, subject.tenant_id).count() == DEMO_CUSTOMERS
            statuses = Counter((await session.execute(select(Subscription.status))).scalars())
        # Enough history for the risk engine: most customers still subscribed, some churned.
        assert statuses["active"] > DEMO_CUSTOMERS / 2
        assert statuses["canceled"] >= 10
        async with db.system_session() as session:
            queued = sorted((await session.execute(select(OutboxJob.actor_name))).scalars())
        async with db.tenant_session(subject.tenant_id) as session:
            [model] = (await session.execute(select(RiskModel.version, RiskModel.status))).all()
        # Scored by the rules first, while the first model trains in the background (the
        # campaigns' first messages wait beside them for their send jobs, unless quiet hours hold).
        assert {"risk.score_tenant", "risk.train"} <= set(queued)
        assert queued.count("risk.score_tenant") == queued.count("risk.train") == 1
        assert tuple(model) == ("v1", "queued")
    finally:
        await db.dispose()


async def test_no_demo_is_seeded_into_a_database_with_tenants(db, settings, tenant):
    assert await seed_demo_tenant(db, settings) is None


async def test_the_demo_tenants_riskiest_customers_are_ones_who_can_still_churn(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings)
    try:
        demo = await seed_demo_tenant(db, settings)
        await score_tenant(db, demo.tenant_id)
        subject = AuthSubject.system(demo.tenant_id)
        async with db.tenant_session(demo.tenant_id) as session:
            top = await list_customers(session, subject, order=CustomerOrder.risk_desc, first=15, after=None)
            current = await SubscriptionRepository(session, demo.tenant_id).current_by_customer(
                [customer.id for customer in top.rows]
            )
            high = await list_customers(session, subject, tier="high", first=100, after=None)
            customers = (await session.execute(select(Customer))).scalars().all()
            subscriptions = (await session.execute(select(Subscription.customer_id, Subscription.status))).all()

        assert len(top.rows) == 15
        assert not [customer.external_id for customer in top.rows if current[customer.id].status in ENDED_STATUSES]
        assert all(customer.status == "active" for customer in high.rows)
        # Churned: every subscription ended, from the time the last one did.
        running = {customer_id for customer_id, status in subscriptions if status not in ENDED_STATUSES}
        ended = {customer_id for customer_id, status in subscriptions if status in ENDED_STATUSES} - running
        churned = {customer.id: customer.churned_at for customer in customers if customer.status == "churned"}
        assert set(churned) == ended
        assert len(churned) >= 10 and None not in churned.values()
    finally:
        await db.dispose()


async def test_the_demo_tenant_has_cases_in_every_state(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings)
    try:
        seeded = utcnow()
        demo = await seed_demo_tenant(db, settings)
        async with db.tenant_session(demo.tenant_id) as session:
            statuses = Counter((await session.execute(select(RecoveryCase.status))).scalars())
            verified = (
                await session.execute(select(RecoveryCase.id).where(RecoveryCase.verified_at.is_not(None)))
            ).all()
            assigned = (await session.execute(select(RecoveryCase.id).where(RecoveryCase.assignee.is_not(None)))).all()
        assert set(statuses) == {"open", "recovered", "lost", "dismissed"}, statuses
        assert verified and assigned
        async with db.tenant_session(demo.tenant_id) as session:
            playbooks = set((await session.execute(select(Campaign.playbook))).scalars())
            enrolled = dict((await session.execute(select(CampaignEnrollment.id, CampaignEnrollment.holdout))).all())
            stepped = set((await session.execute(select(CampaignStepDue.enrollment_id))).scalars())
            steps = (await session.execute(select(CampaignStepDue))).scalars().all()
            messages = set(
                (await session.execute(select(Message.id).where(Message.campaign_id.is_not(None)))).scalars()
            )
        assert playbooks == {playbook.key for playbook in DEFAULT_PLAYBOOKS}
        assert len(enrolled) >= 10
        assert stepped == {enrollment for enrollment, holdout in enrolled.items() if not holdout}
        # Every step due at the seed was dispatched: sent with its message, or moved out of quiet hours.
        assert {step.message_id for step in steps if step.status in ("sent", "skipped")} <= messages
        assert all(step.due_at > seeded for step in steps if step.status == "pending")
        async with db.tenant_session(demo.tenant_id) as session:
            offer_keys = set((await session.execute(select(Offer.key))).scalars())
            redeemed = (await session.execute(select(Redemption.status, Redemption.case_id))).all()
            offer_messages = (
                await session.execute(select(Message.variables).where(Message.campaign_id.is_not(None)))
            ).scalars()
        assert offer_keys == {"uncancel", "update_payment", "percent_30_x3"}
        assert [status for status, _case in redeemed] == ["APPLIED", "APPLIED"]
        assert any(str(variables.get("offer_url", "")).startswith("http") for variables in offer_messages)
    finally:
        await db.dispose()
