"""Campaign mutations: create, update, pause, resume, archive. Each returns the campaign or a
UserError saying why not (a bad duration, channel or template; an unknown id; a status that
does not allow it)."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry

from churnsaver.backend.campaigns import service
from churnsaver.backend.campaigns.models import Campaign
from churnsaver.backend.core.errors import DomainError, InvalidInput, NotFound
from churnsaver.graphql.campaigns.types import CampaignType
from churnsaver.graphql.cases.types import CaseKind
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError


@strawberry.input
class CampaignStepInput:
    delay: str = strawberry.field(description="ISO 8601 duration: PT0S, PT90S, P1D, P1DT12H.")
    channel: str = strawberry.field(description="email, sms, in_app or whop.")
    template: str
    offer_id: strawberry.ID | None = strawberry.field(default=None, description="One of your offers' ids.")
    condition: str | None = strawberry.field(default=None, description="before_access_ends or after_next_retry.")


@strawberry.input
class CampaignVariantInput:
    name: str
    steps: list[CampaignStepInput]
    weight: int = 1


@strawberry.input
class CampaignAudienceInput:
    tiers: list[str] | None = None
    plans: list[str] | None = None
    mrr_min: int | None = None
    mrr_max: int | None = None
    decline_classes: list[str] | None = None
    countries: list[str] | None = None


@strawberry.input
class CreateCampaignInput:
    name: str
    case_kinds: list[CaseKind]
    variants: list[CampaignVariantInput]
    audience: CampaignAudienceInput | None = None
    holdout_share: float = 0.10


@strawberry.input(description="Only what is given changes.")
class UpdateCampaignInput:
    name: str | None = None
    case_kinds: list[CaseKind] | None = None
    variants: list[CampaignVariantInput] | None = None
    audience: CampaignAudienceInput | None = None
    holdout_share: float | None = None


@strawberry.type(description="The campaign as the mutation left it.")
class CampaignChanged:
    campaign: CampaignType


CreateCampaignResult = Annotated[CampaignChanged | UserError, strawberry.union("CreateCampaignResult")]
UpdateCampaignResult = Annotated[CampaignChanged | UserError, strawberry.union("UpdateCampaignResult")]
PauseCampaignResult = Annotated[CampaignChanged | UserError, strawberry.union("PauseCampaignResult")]
ResumeCampaignResult = Annotated[CampaignChanged | UserError, strawberry.union("ResumeCampaignResult")]
ArchiveCampaignResult = Annotated[CampaignChanged | UserError, strawberry.union("ArchiveCampaignResult")]


def _variants(variants: list[CampaignVariantInput]) -> list[dict[str, Any]]:
    return [
        {
            "name": variant.name,
            "weight": variant.weight,
            "steps": [
                {
                    "delay": step.delay,
                    "channel": step.channel,
                    "template": step.template,
                    "offer_id": str(_offer_uuid(step.offer_id)) if step.offer_id else None,
                    "condition": step.condition,
                }
                for step in variant.steps
            ],
        }
        for variant in variants
    ]


def _audience(audience: CampaignAudienceInput) -> dict[str, Any]:
    values = {
        "tiers": audience.tiers,
        "plans": audience.plans,
        "mrr_min": audience.mrr_min,
        "mrr_max": audience.mrr_max,
        "decline_classes": audience.decline_classes,
        "countries": audience.countries,
    }
    return {name: value for name, value in values.items() if value is not None}


def _offer_uuid(id: strawberry.ID) -> uuid.UUID:
    try:
        return parse_node_uuid(id, "Offer")
    except NotFound:
        raise InvalidInput(f"offerId {id!r} is not an offer's id") from None


def _campaign_uuid(id: strawberry.ID) -> uuid.UUID:
    try:
        return parse_node_uuid(id, "Campaign")
    except NotFound:
        raise NotFound("campaign") from None


async def _result(change: Callable[[], Awaitable[Campaign]]) -> CampaignChanged | UserError:
    try:
        row = await change()
    except DomainError as error:
        return UserError.from_error(error)
    return CampaignChanged(campaign=CampaignType.from_row(row))


async def _status(info: strawberry.Info, id: strawberry.ID, action: str) -> CampaignChanged | UserError:
    context = info.context

    async def change() -> Campaign:
        return await service.change_status(context.session, context.auth, _campaign_uuid(id), action)

    return await _result(change)


@strawberry.type
class CampaignMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="A new, active campaign.")
    async def create_campaign(self, info: strawberry.Info, input: CreateCampaignInput) -> CreateCampaignResult:
        context = info.context

        async def change() -> Campaign:
            return await service.create_campaign(
                context.session,
                context.auth,
                name=input.name,
                case_kinds=[kind.value for kind in input.case_kinds],
                variants=_variants(input.variants),
                audience=_audience(input.audience) if input.audience is not None else None,
                holdout_share=input.holdout_share,
            )

        return await _result(change)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Change a campaign; enrolled cases keep their variant and steps, new ones follow the change.",
    )
    async def update_campaign(
        self, info: strawberry.Info, id: strawberry.ID, input: UpdateCampaignInput
    ) -> UpdateCampaignResult:
        context = info.context

        async def change() -> Campaign:
            given = (input.name, input.case_kinds, input.variants, input.audience, input.holdout_share)
            if all(value is None for value in given):
                raise InvalidInput("nothing to change")
            return await service.update_campaign(
                context.session,
                context.auth,
                _campaign_uuid(id),
                name=input.name,
                case_kinds=[kind.value for kind in input.case_kinds] if input.case_kinds is not None else None,
                variants=_variants(input.variants) if input.variants is not None else None,
                audience=_audience(input.audience) if input.audience is not None else None,
                holdout_share=input.holdout_share,
            )

        return await _result(change)

    @strawberry.mutation(permission_classes=[CanWrite], description="Stop enrolling and sending until resumed.")
    async def pause_campaign(self, info: strawberry.Info, id: strawberry.ID) -> PauseCampaignResult:
        return await _status(info, id, "pause")

    @strawberry.mutation(permission_classes=[CanWrite], description="Enroll and send again.")
    async def resume_campaign(self, info: strawberry.Info, id: strawberry.ID) -> ResumeCampaignResult:
        return await _status(info, id, "resume")

    @strawberry.mutation(permission_classes=[CanWrite], description="Retire the campaign for good.")
    async def archive_campaign(self, info: strawberry.Info, id: strawberry.ID) -> ArchiveCampaignResult:
        return await _status(info, id, "archive")
