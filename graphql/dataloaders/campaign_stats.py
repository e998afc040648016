"""Campaigns' enrollment and step counts, for a page of campaigns in two statements."""

import uuid
from collections.abc import Sequence

from churnsaver.backend.campaigns.repository import CampaignStats, campaign_stats
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class CampaignStatsLoader(TenantScopedLoader[uuid.UUID, CampaignStats]):
    async def load_batch(self, ids: Sequence[uuid.UUID]) -> list[CampaignStats]:
        async with self.read_session() as session:
            found = await campaign_stats(session, self.tenant_id, list(ids))
        return [found[campaign_id] for campaign_id in ids]
