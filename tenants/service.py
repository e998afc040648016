"""Creating, finding and listing tenants."""

import re
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.errors import Conflict, InvalidInput, NotFound
from churnsaver.tenants.models import Tenant

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")


def new_tenant_id() -> uuid.UUID:
    """Tenant ids are chosen before the row exists, so the creating transaction can act as the tenant."""
    return uuid.uuid4()


async def create_tenant(session: AsyncSession, tenant_id: uuid.UUID, *, name: str, slug: str | None = None) -> Tenant:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a tenant needs a name of 1 to 200 characters")
    slug = slug or slugify(name)
    if not SLUG_PATTERN.match(slug):
        raise InvalidInput(f"slug {slug!r} must be 1-63 lowercase letters, digits or inner hyphens")
    tenant = Tenant(id=tenant_id, slug=slug, name=name)
    session.add(tenant)
    # The creating tenant session cannot see other tenants' rows (row-level security), so a taken
    # slug shows as the unique constraint refusing the row; the caller's transaction rolls back.
    try:
        await session.flush()
    except IntegrityError as error:
        if "slug" not in str(error.orig):
            raise
        raise Conflict(f"a tenant with slug {slug!r} already exists") from error
    return tenant


async def find_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"tenant {slug!r}")
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant")
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.execute(select(Tenant).order_by(Tenant.created_at, Tenant.slug))).scalars())


async def get_tenants_by_id(session: AsyncSession, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, Tenant]:
    if not tenant_ids:
        return {}
    rows = (await session.execute(select(Tenant).where(Tenant.id.in_(tenant_ids)))).scalars()
    return {tenant.id: tenant for tenant in rows}
