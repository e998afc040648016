"""Risk fields: the distribution over tiers, and the tier thresholds (read and set)."""

from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.risk.queries import risk_distribution
from churnsaver.backend.risk.settings import Thresholds, load_config
from churnsaver.backend.risk.tiers import change_thresholds
from churnsaver.graphql.permissions import CanRead, CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.types.risk import RiskDistributionType, RiskThresholdsType


@strawberry.input(description="Each between 0 and 1, with 0 < medium < high < critical <= 1.")
class RiskThresholdsInput:
    critical: float
    high: float
    medium: float


@strawberry.type
class RiskThresholdsUpdated:
    thresholds: RiskThresholdsType
    rescoring: bool = strawberry.field(description="Customers are re-tiered by a scoring run, enqueued now.")


SetRiskThresholdsResult = Annotated[RiskThresholdsUpdated | UserError, strawberry.union("SetRiskThresholdsResult")]


@strawberry.type
class RiskQueries:
    @strawberry.field(permission_classes=[CanRead], description="How many customers are in each risk tier now.")
    async def risk_distribution(self, info: strawberry.Info) -> RiskDistributionType:
        context = info.context
        return RiskDistributionType.from_distribution(await risk_distribution(context.session, context.auth.tenant_id))

    @strawberry.field(permission_classes=[CanRead], description="The scores at which the risk tiers start.")
    async def risk_thresholds(self, info: strawberry.Info) -> RiskThresholdsType:
        context = info.context
        return RiskThresholdsType.from_config(await load_config(context.session, context.auth.tenant_id))


@strawberry.type
class RiskMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Set the tier thresholds and re-tier customers.")
    async def set_risk_thresholds(self, info: strawberry.Info, input: RiskThresholdsInput) -> SetRiskThresholdsResult:
        context = info.context
        thresholds = Thresholds(critical=input.critical, high=input.high, medium=input.medium)
        try:
            config = await change_thresholds(context.session, context.auth.tenant_id, thresholds)
        except DomainError as error:
            return UserError.from_error(error)
        return RiskThresholdsUpdated(thresholds=RiskThresholdsType.from_config(config), rescoring=True)
