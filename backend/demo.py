"""The demo tenant that `make run` seeds into an empty database, so a newcomer sees data at once.

Its customers are synthetic (backend/synthetic): six months of subscriptions, payments,
declines and usage, loaded through the real ingest code, with churners among them, so that
the risk engine has something true to find. Their recovery cases are evaluated as the seed
commits, and a few are worked as a merchant would (assigned, noted, dismissed), so every case
state shows. The open cases enter the default campaign playbooks, and the steps due at once are
dispatched: their messages are captured (no SMTP or SMS provider on the embedded default) when
the jobs `serve` runs send them, and show on `/dev/mailbox`; their offer links open the one-click
pages. A few customers take their offer through the sandbox billing provider, so redemptions
and the cases they recover show too. Those jobs also score the customers
by the rules at once (tier changes open HIGH_RISK cases) and train the tenant's first model.
Its widget may run where `serve` listens, for the demo page `/dev/widget-demo`.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.billing import service as billing
from churnsaver.backend.campaigns import service as campaigns
from churnsaver.backend.campaigns.dispatch import dispatch_steps
from churnsaver.backend.campaigns.enrollment import enroll_cases
from churnsaver.backend.campaigns.repository import StepRepository
from churnsaver.backend.cases import service as cases
from churnsaver.backend.cases.models import CaseStatus
from churnsaver.backend.cases.reconcile import reconcile_customers
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.embeds.service import allow_demo_origin
from churnsaver.backend.embeds.settings import normalized_origin
from churnsaver.backend.offers import service as offers
from churnsaver.backend.risk.service import queue_training
from churnsaver.backend.risk.tasks import enqueue_score_tenant
from churnsaver.backend.synthetic import generate
from churnsaver.backend.synthetic.loading import apply_items
from churnsaver.tenants.api_keys import create_api_key
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.models import Tenant
from churnsaver.tenants.service import create_tenant, new_tenant_id

DEMO_SLUG = "demo"
DEMO_CUSTOMERS = 300
DEMO_HISTORY = timedelta(days=180)
DEMO_SEED = 7
# Fewer usage events than a real tenant's keep `make run` quick; billing and churn stay whole,
# so the demo still has the churners a first model needs (RiskSettings.min_churners).
DEMO_USAGE_SCALE = 0.6


@dataclass(frozen=True, slots=True)
class DemoTenant:
    slug: str
    api_key: str
    created: bool
    tenant_id: uuid.UUID


def _key_file(settings: Settings):
    return settings.data_dir / "demo_api_key"


async def seed_demo_tenant(db: Database, settings: Settings) -> DemoTenant | None:
    """Seed the demo tenant into an empty database. Returns its key (kept in DATA_DIR so later
    runs can print it again), or None when the database already has other tenants."""
    async with db.system_session() as session:
        tenant_count = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
        demo_id = (await session.execute(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))).scalar_one_or_none()
    key_file = _key_file(settings)
    if demo_id and key_file.exists():
        await _embed_widget(db, settings, demo_id)
        return DemoTenant(slug=DEMO_SLUG, api_key=key_file.read_text().strip(), created=False, tenant_id=demo_id)
    if tenant_count:
        return None
    tenant_id = new_tenant_id()
    subject = AuthSubject.system(tenant_id)
    end = utcnow()
    dataset = generate(
        DEMO_SEED, DEMO_CUSTOMERS, end - DEMO_HISTORY, end, usage_scale=DEMO_USAGE_SCALE, prefix="cus_demo"
    )

    # One transaction: a start interrupted while loading leaves no half-seeded demo behind.
    async with db.tenant_unit_of_work(tenant_id) as session:
        await create_tenant(session, tenant_id, name="Demo Store", slug=DEMO_SLUG)
        key = await create_api_key(session, subject, name="demo")
        await apply_items(session, tenant_id, dataset.items)
        await _work_some_cases(session, subject, end)
        await _run_campaigns(session, subject, end, settings)
        # Scored by the rules at once; the first model trains in the background and, once
        # active, scores the tenant again (the demo has the churners a first model needs).
        enqueue_score_tenant(session, tenant_id)
        await queue_training(session, subject)
    await _take_some_offers(db, tenant_id)
    await _embed_widget(db, settings, tenant_id)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key.plaintext)
    key_file.chmod(0o600)
    return DemoTenant(slug=DEMO_SLUG, api_key=key.plaintext, created=True, tenant_id=tenant_id)


async def _work_some_cases(session: AsyncSession, subject: AuthSubject, now: datetime) -> None:
    """Evaluate every demo customer's cases, then work a few open ones as a merchant would."""
    customer_ids = await CustomerRepository(session, subject.tenant_id).ids()
    await reconcile_customers(session, subject.tenant_id, customer_ids, now, actor="demo")
    page = await cases.list_cases(session, subject, filter=cases.CaseFilter(status=[CaseStatus.open.value]), first=3)
    if not page.rows:
        return
    worked, *rest = page.rows
    await cases.assign(session, subject, worked.id, "sam@demo.store")
    await cases.add_note(session, subject, worked.id, "Called the customer: card being replaced this week.")
    for case in rest[:1]:
        await cases.dismiss(session, subject, case.id, "Test account of our own team")


async def _run_campaigns(session: AsyncSession, subject: AuthSubject, now: datetime, settings: Settings) -> None:
    """Enroll the open cases in the default playbooks and dispatch what is due now, as the
    campaigns jobs would once `serve` runs them."""
    page = await cases.list_cases(session, subject, filter=cases.CaseFilter(status=[CaseStatus.open.value]), first=100)
    await enroll_cases(session, subject.tenant_id, [case.id for case in page.rows], now)
    due = list((await session.execute(StepRepository(session, subject.tenant_id).select_due(now, 1_000))).scalars())
    if due:
        await dispatch_steps(session, subject.tenant_id, due, now, settings)


async def _take_some_offers(db: Database, tenant_id: uuid.UUID, count: int = 2) -> None:
    """A few customers of open cases take the offer they are shown, through the sandbox billing
    provider (the demo connects no billing): redemptions to see, and cases they recover."""
    async with db.tenant_unit_of_work(tenant_id) as session:
        page = await cases.list_cases(
            session, AuthSubject.system(tenant_id), filter=cases.CaseFilter(status=[CaseStatus.open.value]), first=50
        )
        taken: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
        for case in page.rows:
            if len(taken) == 5 * count:
                break
            choices = await offers.eligible_offers(
                session,
                tenant_id,
                case.customer_id,
                case_id=case.id,
                cancel_reason=None,
                holdout=await campaigns.in_holdout(session, tenant_id, case.customer_id),
                locale=None,
                surface="email",
            )
            if choices:
                taken.append((choices[0].offer_id, case.customer_id, case.id))
    redeemed = 0
    for offer_id, customer_id, case_id in taken:
        try:
            await billing.redeem(
                db,
                tenant_id=tenant_id,
                offer_id=offer_id,
                customer_id=customer_id,
                case_id=case_id,
                source="email",
                idempotency_key=f"demo:{case_id}",
            )
        except DomainError:  # the budget ran out, or an earlier accept made this one ineligible
            continue
        redeemed += 1
        if redeemed == count:
            return


async def _embed_widget(db: Database, settings: Settings, tenant_id: uuid.UUID) -> None:
    """The widget allowed where `serve` listens (its demo page, /dev/widget-demo, embeds it there)."""
    origin = normalized_origin(settings.public_url or "")
    if origin is None:
        return
    async with db.tenant_unit_of_work(tenant_id) as session:
        await allow_demo_origin(session, tenant_id, origin=origin, secret_key=settings.resolved_secret_key)
