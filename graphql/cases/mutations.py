"""Case mutations: what a person does to a case (note, assign, dismiss, reopen, mark lost) and the
case settings. Each returns its result or a UserError saying why not."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry

from churnsaver.backend.cases import service
from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.core.errors import DomainError, NotFound
from churnsaver.graphql.cases.types import CaseKind, CaseSettingsType, CaseType
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError
from churnsaver.graphql.risk.types import RiskTier


@strawberry.type(description="The case as the mutation left it.")
class CaseChanged:
    case: CaseType


AddCaseNoteResult = Annotated[CaseChanged | UserError, strawberry.union("AddCaseNoteResult")]
AssignCaseResult = Annotated[CaseChanged | UserError, strawberry.union("AssignCaseResult")]
DismissCaseResult = Annotated[CaseChanged | UserError, strawberry.union("DismissCaseResult")]
ReopenCaseResult = Annotated[CaseChanged | UserError, strawberry.union("ReopenCaseResult")]
MarkCaseLostResult = Annotated[CaseChanged | UserError, strawberry.union("MarkCaseLostResult")]


@strawberry.input
class CaseKindDaysInput:
    kind: CaseKind
    days: int


@strawberry.input
class CaseKindMinutesInput:
    kind: CaseKind
    minutes: int


@strawberry.input(description="Only what is given changes; per-kind lists change only the kinds they name.")
class UpdateCaseSettingsInput:
    window_days: list[CaseKindDaysInput] | None = None
    sla_minutes: list[CaseKindMinutesInput] | None = None
    usage_drop_ratio: float | None = None
    usage_drop_min_active_days: int | None = None
    case_tiers: list[RiskTier] | None = None
    verify_days: int | None = None


@strawberry.type
class CaseSettingsUpdated:
    settings: CaseSettingsType = strawberry.field(description="Cases opened from now on use them.")


UpdateCaseSettingsResult = Annotated[CaseSettingsUpdated | UserError, strawberry.union("UpdateCaseSettingsResult")]


async def _change(
    info: strawberry.Info, id: strawberry.ID, change: Callable[[uuid.UUID], Awaitable[RecoveryCase]]
) -> CaseChanged | UserError:
    """Run `change` on the case `id` names; an expected failure (an id of no case of the tenant's:
    NOT_FOUND) is a UserError."""
    try:
        row = await change(_case_uuid(id))
    except DomainError as error:
        return UserError.from_error(error)
    # Committed now, not as the operation ends: the result's relations (its timeline) are read by
    # dataloaders in sessions of their own, which see only what is committed.
    await info.context.session.commit()
    return CaseChanged(case=CaseType.from_row(row))


def _case_uuid(id: strawberry.ID) -> uuid.UUID:
    """The case id behind `id`; any other id is "not found", worded as the service words a missing case."""
    try:
        return parse_node_uuid(id, "Case")
    except NotFound:
        raise NotFound("case") from None


@strawberry.type
class CaseMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Add a note (at most 10,000 characters).")
    async def add_case_note(self, info: strawberry.Info, id: strawberry.ID, text: str) -> AddCaseNoteResult:
        context = info.context
        return await _change(info, id, lambda case_id: service.add_note(context.session, context.auth, case_id, text))

    @strawberry.mutation(permission_classes=[CanWrite], description="Assign the case; null unassigns it.")
    async def assign_case(
        self, info: strawberry.Info, id: strawberry.ID, assignee: str | None = None
    ) -> AssignCaseResult:
        context = info.context
        return await _change(info, id, lambda case_id: service.assign(context.session, context.auth, case_id, assignee))

    @strawberry.mutation(
        permission_classes=[CanWrite], description="Dismiss an open case, with why; billing truth moves it no more."
    )
    async def dismiss_case(self, info: strawberry.Info, id: strawberry.ID, reason: str) -> DismissCaseResult:
        context = info.context
        return await _change(info, id, lambda case_id: service.dismiss(context.session, context.auth, case_id, reason))

    @strawberry.mutation(
        permission_classes=[CanWrite], description="Reopen a closed case: billing truth decides it again."
    )
    async def reopen_case(self, info: strawberry.Info, id: strawberry.ID) -> ReopenCaseResult:
        context = info.context
        return await _change(info, id, lambda case_id: service.reopen(context.session, context.auth, case_id))

    @strawberry.mutation(permission_classes=[CanWrite], description="Mark an open or recovered case lost.")
    async def mark_case_lost(
        self, info: strawberry.Info, id: strawberry.ID, reason: str | None = None
    ) -> MarkCaseLostResult:
        context = info.context
        return await _change(
            info, id, lambda case_id: service.mark_lost(context.session, context.auth, case_id, reason)
        )

    @strawberry.mutation(permission_classes=[CanWrite], description="Change the case settings.")
    async def update_case_settings(
        self, info: strawberry.Info, input: UpdateCaseSettingsInput
    ) -> UpdateCaseSettingsResult:
        context = info.context
        changes = {
            "window_days": {item.kind.value: item.days for item in input.window_days}
            if input.window_days is not None
            else None,
            "sla_minutes": {item.kind.value: item.minutes for item in input.sla_minutes}
            if input.sla_minutes is not None
            else None,
            "usage_drop_ratio": input.usage_drop_ratio,
            "usage_drop_min_active_days": input.usage_drop_min_active_days,
            "case_tiers": [tier.value for tier in input.case_tiers] if input.case_tiers is not None else None,
            "verify_days": input.verify_days,
        }
        try:
            settings = await service.update_settings(context.session, context.auth, **changes)
        except DomainError as error:
            return UserError.from_error(error)
        return CaseSettingsUpdated(settings=CaseSettingsType.from_settings(settings))
