"""Changing a tenant's tier thresholds: stored, then every customer re-tiered by a scoring run.

Tiers are stored with the scores, so new thresholds take effect when the tenant is scored again;
that run is enqueued in the same transaction, and its tier changes are recorded as usual.
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.risk.settings import RiskConfig, Thresholds, set_thresholds
from churnsaver.backend.risk.tasks import enqueue_score_tenant


async def change_thresholds(session: AsyncSession, tenant_id: uuid.UUID, thresholds: Thresholds) -> RiskConfig:
    """InvalidInput unless 0 < medium < high < critical <= 1."""
    config = await set_thresholds(session, tenant_id, thresholds)
    enqueue_score_tenant(session, tenant_id)
    return config
