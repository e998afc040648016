"""Reads and writes of embedding settings and allowed origins, scoped by tenant; and the two
look-ups that happen before a tenant is known (a publishable key, a CORS preflight's origin)."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.embeds.models import EmbedOrigin, EmbedSettingsRow


class EmbedSettingsRepository(TenantRepository[EmbedSettingsRow]):
    model = EmbedSettingsRow

    async def row(self) -> EmbedSettingsRow | None:
        return (await self.session.execute(self.select_readable())).scalar_one_or_none()

    async def ensure(self, publishable_key: str) -> EmbedSettingsRow:
        """The tenant's row, created with `publishable_key` if it has none (a concurrent creator wins)."""
        insert = insert_for(self.session)(EmbedSettingsRow).values(
            tenant_id=self.tenant_id, publishable_key=publishable_key, settings={}, updated_at=utcnow()
        )
        await self.session.execute(insert.on_conflict_do_nothing(index_elements=["tenant_id"]))
        row = await self.row()
        assert row is not None
        return row

    async def update(self, **values: Any) -> None:
        await self.session.execute(self.update_owned().values(updated_at=utcnow(), **values))

    async def set_secret(self, sealed: bytes, now: datetime) -> None:
        await self.update(widget_secret_sealed=sealed, secret_rotated_at=now)


class EmbedOriginRepository(TenantRepository[EmbedOrigin]):
    model = EmbedOrigin

    async def origins(self) -> list[str]:
        statement = self.select_readable(EmbedOrigin.origin).order_by(EmbedOrigin.created_at, EmbedOrigin.id)
        return list((await self.session.execute(statement)).scalars())

    async def replace(self, origins: tuple[str, ...]) -> None:
        await self.session.execute(self.delete_owned())
        for origin in origins:
            self.session.add(EmbedOrigin(tenant_id=self.tenant_id, origin=origin))
        await self.session.flush()

    async def allows(self, origin: str) -> bool:
        statement = self.select_readable(EmbedOrigin.id).where(EmbedOrigin.origin == origin).limit(1)
        return (await self.session.execute(statement)).first() is not None


async def find_by_publishable_key(system_session: AsyncSession, publishable_key: str) -> EmbedSettingsRow | None:
    """The embedding whose key is `publishable_key`, whichever tenant owns it. On PostgreSQL a
    SELECT-only policy grants this read to the system connection."""
    statement = select(EmbedSettingsRow).where(EmbedSettingsRow.publishable_key == publishable_key)
    return (await system_session.execute(statement)).scalar_one_or_none()


async def origin_allowed_by_any_tenant(system_session: AsyncSession, origin: str) -> bool:
    """Whether some tenant lets `origin` embed the widget: all a CORS preflight, which carries no
    key, can be told. The request itself is then checked against its own tenant's origins."""
    statement = select(EmbedOrigin.tenant_id).where(EmbedOrigin.origin == origin).limit(1)
    return (await system_session.execute(statement)).first() is not None
