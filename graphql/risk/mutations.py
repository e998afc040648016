"""Risk mutations: set the tier thresholds, and queue the training of a model version."""

from datetime import datetime
from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.risk import service
from churnsaver.backend.risk.settings import Thresholds
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.risk.types import RiskModelType, RiskThresholdsType


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


@strawberry.input
class TrainRiskModelInput:
    as_of: datetime | None = strawberry.field(
        default=None, description="Train on what was known at this time; default now. Not in the future."
    )
    force: bool = strawberry.field(
        default=False, description="Activate the new version even if it is worse than the active one on the holdout."
    )


@strawberry.type
class RiskModelQueued:
    model: RiskModelType = strawberry.field(description="The queued version; follow its status and progress.")


TrainRiskModelResult = Annotated[RiskModelQueued | UserError, strawberry.union("TrainRiskModelResult")]


@strawberry.type
class RiskMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Set the tier thresholds and re-tier customers.")
    async def set_risk_thresholds(self, info: strawberry.Info, input: RiskThresholdsInput) -> SetRiskThresholdsResult:
        context = info.context
        thresholds = Thresholds(critical=input.critical, high=input.high, medium=input.medium)
        try:
            config = await service.set_risk_thresholds(context.session, context.auth, thresholds)
        except DomainError as error:
            return UserError.from_error(error)
        return RiskThresholdsUpdated(thresholds=RiskThresholdsType.from_config(config), rescoring=True)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Queue the training of a new version; it becomes active if no worse than the active one.",
    )
    async def train_risk_model(
        self, info: strawberry.Info, input: TrainRiskModelInput | None = None
    ) -> TrainRiskModelResult:
        context = info.context
        input = input or TrainRiskModelInput()
        try:
            row = await service.queue_training(context.session, context.auth, as_of=input.as_of, force=input.force)
        except DomainError as error:
            return UserError.from_error(error)
        return RiskModelQueued(model=RiskModelType.from_row(row))
