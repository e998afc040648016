"""The demo tenant that `make run` seeds into an empty database, so a newcomer sees data at once."""

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from churnsaver.backend.config import Settings
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.db import Database, utcnow
from churnsaver.tenants.api_keys import create_api_key
from churnsaver.tenants.models import Tenant
from churnsaver.tenants.service import create_tenant, new_tenant_id

DEMO_SLUG = "demo"
DEMO_CUSTOMERS = 200
PLANS = [("starter", 1900), ("pro", 4900), ("business", 14900)]
COUNTRIES = ["US", "GB", "DE", "FR", "BR", "IN", "CA", "AU"]


@dataclass(frozen=True, slots=True)
class DemoTenant:
    slug: str
    api_key: str
    created: bool


def _key_file(settings: Settings):
    return settings.data_dir / "demo_api_key"


async def seed_demo_tenant(db: Database, settings: Settings) -> DemoTenant | None:
    """Seed the demo tenant into an empty database. Returns its key (kept in DATA_DIR so later
    runs can print it again), or None when the database already has other tenants."""
    async with db.system_session() as session:
        tenant_count = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
        has_demo = (await session.execute(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))).first() is not None
    key_file = _key_file(settings)
    if has_demo and key_file.exists():
        return DemoTenant(slug=DEMO_SLUG, api_key=key_file.read_text().strip(), created=False)
    if tenant_count:
        return None
    tenant_id = new_tenant_id()
    async with db.tenant_unit_of_work(tenant_id) as session:
        await create_tenant(session, tenant_id, name="Demo Store", slug=DEMO_SLUG)
        key = await create_api_key(session, tenant_id, name="demo")
        session.add_all(_demo_customers(tenant_id))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key.plaintext)
    key_file.chmod(0o600)
    return DemoTenant(slug=DEMO_SLUG, api_key=key.plaintext, created=True)


def _demo_customers(tenant_id: uuid.UUID) -> list[Customer]:
    rng = random.Random(7)
    start = utcnow() - timedelta(days=400)
    customers = []
    for number in range(1, DEMO_CUSTOMERS + 1):
        plan, price = rng.choice(PLANS)
        customers.append(
            Customer(
                tenant_id=tenant_id,
                external_id=f"cus_demo_{number:04d}",
                email=f"customer{number}@example.com",
                name=f"Demo Customer {number}",
                traits={"plan": plan, "mrr": price, "country": rng.choice(COUNTRIES), "seats": rng.randint(1, 25)},
                created_at=start + timedelta(days=number * 2, minutes=rng.randint(0, 1440)),
            )
        )
    return customers
