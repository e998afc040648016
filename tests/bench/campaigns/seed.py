"""Seeding a tenant with many due campaign steps at once (customers with an email address, an open
PAYMENT_FAILED case each, one campaign of one email step, the enrollments and the due steps),
written in bulk: what enrollment would write, without waiting for 100,000 webhooks first."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from churnsaver.backend.campaigns.models import Campaign, CampaignEnrollment, CampaignStepDue
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.channels.settings import load_settings, store_settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.customers.models import Customer

CHUNK = 5_000
STEP = {"delay": "PT0S", "channel": "email", "template": "payment_failed_update_card"}


async def seed_due_steps(db: Database, tenant_id: uuid.UUID, count: int) -> uuid.UUID:
    """`count` customers, each with one open case enrolled in one campaign and one email step due
    now; quiet hours off and caps that one email per customer never reaches. Returns the campaign id."""
    now = utcnow()
    opened = now - timedelta(minutes=10)
    campaign_id = ordered_uuid()
    async with db.tenant_unit_of_work(tenant_id) as session:
        settings = (await load_settings(session, tenant_id)).updated(quiet_hours_start="00:00", quiet_hours_end="00:00")
        await store_settings(session, tenant_id, settings)
        session.add(
            Campaign(
                id=campaign_id,
                tenant_id=tenant_id,
                name="bench",
                case_kinds=["payment_failed"],
                audience={},
                status="active",
                holdout_share=0.0,
                variants=[{"name": "a", "weight": 1, "steps": [STEP | {"offer_id": None, "condition": None}]}],
            )
        )
    for start in range(0, count, CHUNK):
        customers: list[dict[str, Any]] = []
        cases: list[dict[str, Any]] = []
        enrollments: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        for number in range(start, min(count, start + CHUNK)):
            customer_id, case_id, enrollment_id = uuid.uuid4(), ordered_uuid(), ordered_uuid()
            common = {"tenant_id": tenant_id, "customer_id": customer_id}
            customers.append(
                {
                    "id": customer_id,
                    "tenant_id": tenant_id,
                    "external_id": f"bench_{number}",
                    "email": f"bench_{number}@example.com",
                    "name": f"Customer {number}",
                    "traits": {},
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            cases.append(
                common
                | {
                    "id": case_id,
                    "kind": "payment_failed",
                    "status": "open",
                    "trigger_key": f"bench:{number}",
                    "trigger_type": "payment_failed",
                    "trigger_occurred_at": opened,
                    "opened_at": opened,
                    "window_ends_at": opened + timedelta(days=14),
                    "revenue_at_risk": 2900,
                    "currency": "USD",
                    "priority": 290.0,
                    "first_touch_due_at": opened + timedelta(hours=1),
                    "details": {"decline_class": "hard"},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            enrollments.append(
                common
                | {
                    "id": enrollment_id,
                    "campaign_id": campaign_id,
                    "case_id": case_id,
                    "variant": "a",
                    "holdout": False,
                }
                | {"enrolled_at": now}
            )
            steps.append(
                common
                | {"id": ordered_uuid(), "enrollment_id": enrollment_id, "campaign_id": campaign_id, "case_id": case_id}
                | {"step_index": 0, "channel": "email", "template": STEP["template"], "due_at": opened}
                | {"status": "pending", "created_at": now, "updated_at": now}
            )
        async with db.tenant_unit_of_work(tenant_id) as session:
            connection = await session.connection()
            for model, rows in ((Customer, customers), (RecoveryCase, cases)):
                await connection.execute(insert(model.__table__), rows)
            await connection.execute(insert(CampaignEnrollment.__table__), enrollments)
            await connection.execute(insert(CampaignStepDue.__table__), steps)
    return campaign_id
