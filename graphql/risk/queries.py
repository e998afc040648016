"""Risk queries: the distribution over tiers, the tier thresholds, and the tenant's model versions."""

import strawberry

from churnsaver.backend.risk import service
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.risk.types import RiskDistributionType, RiskModelType, RiskThresholdsType


@strawberry.type
class RiskQueries:
    @strawberry.field(
        permission_classes=[CanRead], description="How many customers who can still churn are in each risk tier now."
    )
    async def risk_distribution(self, info: strawberry.Info) -> RiskDistributionType:
        context = info.context
        return RiskDistributionType.from_distribution(await service.risk_distribution(context.session, context.auth))

    @strawberry.field(permission_classes=[CanRead], description="The scores at which the risk tiers start.")
    async def risk_thresholds(self, info: strawberry.Info) -> RiskThresholdsType:
        context = info.context
        return RiskThresholdsType.from_config(await service.risk_thresholds(context.session, context.auth))

    @strawberry.field(
        permission_classes=[CanRead],
        description="The tenant's model versions, newest first. With none active, customers are scored by the rules.",
    )
    async def risk_models(self, info: strawberry.Info) -> list[RiskModelType]:
        context = info.context
        rows = await service.list_risk_models(context.session, context.auth)
        return [RiskModelType.from_row(row) for row in rows]
