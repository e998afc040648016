"""Tenant-scoped reads of the billing connection and the provider calls."""

import uuid

from churnsaver.backend.billing.models import BillingCall, BillingConnection
from churnsaver.backend.core.repository import TenantRepository


class BillingConnectionRepository(TenantRepository[BillingConnection]):
    model = BillingConnection

    async def find(self) -> BillingConnection | None:
        return (await self.session.execute(self.select_readable())).scalar_one_or_none()


class BillingCallRepository(TenantRepository[BillingCall]):
    model = BillingCall

    async def of_redemption(self, redemption_id: uuid.UUID) -> list[BillingCall]:
        statement = self.select_readable().where(BillingCall.redemption_id == redemption_id)
        return list((await self.session.execute(statement.order_by(BillingCall.created_at))).scalars())
