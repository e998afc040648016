"""Each case's redemptions, oldest first, for a page of cases in one statement."""

import uuid
from collections.abc import Sequence

from churnsaver.backend.offers.models import Redemption
from churnsaver.backend.offers.repository import RedemptionRepository
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class CaseRedemptionsLoader(TenantScopedLoader[uuid.UUID, list[Redemption]]):
    async def load_batch(self, case_ids: Sequence[uuid.UUID]) -> list[list[Redemption]]:
        found: dict[uuid.UUID, list[Redemption]] = {case_id: [] for case_id in case_ids}
        async with self.read_session() as session:
            for redemption in await RedemptionRepository(session, self.tenant_id).of_cases(list(case_ids)):
                if redemption.case_id is not None:
                    found[redemption.case_id].append(redemption)
        return [found[case_id] for case_id in case_ids]
