"""What each case's customer would be offered now (nothing recorded): eligibility is per customer
and reads its own subscription, redemptions and budgets, so a batch costs a few statements per
case; the batch shares one session and the tenant's offers."""

from collections.abc import Sequence

from churnsaver.backend.campaigns import service as campaigns
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.offers import service as offers
from churnsaver.backend.offers.service import OfferChoice
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class CaseOffersLoader(TenantScopedLoader[RecoveryCase, list[OfferChoice]]):
    async def load_batch(self, cases: Sequence[RecoveryCase]) -> list[list[OfferChoice]]:
        found: list[list[OfferChoice]] = []
        async with self.read_session() as session:
            for case in cases:
                if case.status != "open":
                    found.append([])
                    continue
                holdout = await campaigns.in_holdout(session, self.tenant_id, case.customer_id)
                found.append(
                    await offers.eligible_offers(
                        session,
                        self.tenant_id,
                        case.customer_id,
                        case_id=case.id,
                        cancel_reason=None,
                        holdout=holdout,
                        locale=None,
                        surface="api",
                        record=False,
                    )
                )
        return found
