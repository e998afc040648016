"""Risk model fields: the tenant's versions, and queueing a training run."""

from datetime import datetime
from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.risk.model_store import RiskModelRepository
from churnsaver.backend.risk.tasks import queue_training
from churnsaver.graphql.permissions import CanRead, CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.types.risk_model import RiskModelType


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
class RiskModelQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="The tenant's model versions, newest first. With none active, customers are scored by the rules.",
    )
    async def risk_models(self, info: strawberry.Info) -> list[RiskModelType]:
        context = info.context
        rows = await RiskModelRepository(context.session, context.auth.tenant_id).newest_first()
        return [RiskModelType.from_row(row) for row in rows]


@strawberry.type
class RiskModelMutations:
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
            row = await queue_training(context.session, context.auth.tenant_id, as_of=input.as_of, force=input.force)
        except DomainError as error:
            return UserError.from_error(error)
        return RiskModelQueued(model=RiskModelType.from_row(row))
