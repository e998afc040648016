"""Offer mutations: create, update and archive offers; connect billing. Each returns its result or
a UserError saying why not (an invalid value or rule, an unknown id, a key the provider refused)."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.billing import service as billing
from churnsaver.backend.core.errors import DomainError, InvalidInput, NotFound
from churnsaver.backend.offers import service
from churnsaver.backend.offers.models import Offer
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.offers.types import (
    BillingConnectionType,
    BillingProvider,
    OfferKind,
    OfferPolicy,
    OfferSettingsType,
    OfferType,
)
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError


@strawberry.input
class CreateOfferInput:
    name: str
    kind: OfferKind
    value: JSON | None = strawberry.field(
        default=None,
        description="PERCENT_OFF {percent, cycles}; AMOUNT_OFF {amount, currency, cycles}; FREE_DAYS {days}; "
        "PAUSE {cycles}; PLAN_SWITCH {plan, plan_name}; none for the one-click actions.",
    )
    eligibility: JSON | None = None
    texts: JSON | None = None
    monthly_budget: int | None = strawberry.field(default=None, description="Minor units a month; null: no limit.")
    currency: str | None = None
    priority: int = 0


@strawberry.input(description="Only what is given changes.")
class UpdateOfferInput:
    name: str | None = None
    value: JSON | None = None
    eligibility: JSON | None = None
    texts: JSON | None = None
    monthly_budget: int | None = None
    no_monthly_budget: bool = strawberry.field(default=False, description="Remove the offer's own budget.")
    currency: str | None = None
    priority: int | None = None


@strawberry.input(description="Only what is given changes.")
class UpdateOfferSettingsInput:
    monthly_budget: int | None = strawberry.field(default=None, description="Minor units of `currency` a month.")
    no_monthly_budget: bool = strawberry.field(default=False, description="Lift the tenant's monthly limit.")
    currency: str | None = None
    policy: OfferPolicy | None = None
    control_share: float | None = None
    cooldown_days: int | None = None


@strawberry.input
class ConnectBillingInput:
    provider: BillingProvider
    api_key: str | None = strawberry.field(default=None, description="Write-only: never readable back.")


@strawberry.type(description="The offer as the mutation left it.")
class OfferChanged:
    offer: OfferType


@strawberry.type(description="The offer settings as the mutation left them.")
class OfferSettingsUpdated:
    settings: OfferSettingsType


@strawberry.type(description="The billing connection, its key checked with one harmless call.")
class BillingConnected:
    billing_connection: BillingConnectionType


CreateOfferResult = Annotated[OfferChanged | UserError, strawberry.union("CreateOfferResult")]
UpdateOfferResult = Annotated[OfferChanged | UserError, strawberry.union("UpdateOfferResult")]
ArchiveOfferResult = Annotated[OfferChanged | UserError, strawberry.union("ArchiveOfferResult")]
UpdateOfferSettingsResult = Annotated[OfferSettingsUpdated | UserError, strawberry.union("UpdateOfferSettingsResult")]
ConnectBillingResult = Annotated[BillingConnected | UserError, strawberry.union("ConnectBillingResult")]


def _json(value: JSON | None) -> dict[str, Any] | None:
    """A JSON argument as the service validates it (a non-object is refused there)."""
    return cast(dict[str, Any] | None, value)


def _offer_uuid(id: strawberry.ID) -> uuid.UUID:
    try:
        return parse_node_uuid(id, "Offer")
    except NotFound:
        raise NotFound("offer") from None


async def _result(change: Callable[[], Awaitable[Offer]]) -> OfferChanged | UserError:
    try:
        row = await change()
    except DomainError as error:
        return UserError.from_error(error)
    return OfferChanged(offer=OfferType.from_row(row))


@strawberry.type
class OfferMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="A new, active offer.")
    async def create_offer(self, info: strawberry.Info, input: CreateOfferInput) -> CreateOfferResult:
        context = info.context

        async def change() -> Offer:
            return await service.create_offer(
                context.session,
                context.auth,
                name=input.name,
                kind=input.kind.value,
                value=_json(input.value),
                eligibility=_json(input.eligibility),
                texts=_json(input.texts),
                monthly_budget=input.monthly_budget,
                currency=input.currency,
                priority=input.priority,
            )

        return await _result(change)

    @strawberry.mutation(permission_classes=[CanWrite], description="Change an offer; redemptions keep what they got.")
    async def update_offer(
        self, info: strawberry.Info, id: strawberry.ID, input: UpdateOfferInput
    ) -> UpdateOfferResult:
        context = info.context

        async def change() -> Offer:
            given = (input.name, input.value, input.eligibility, input.texts, input.monthly_budget, input.currency)
            if all(item is None for item in given) and input.priority is None and not input.no_monthly_budget:
                raise InvalidInput("nothing to change")
            return await service.update_offer(
                context.session,
                context.auth,
                _offer_uuid(id),
                name=input.name,
                value=_json(input.value),
                eligibility=_json(input.eligibility),
                texts=_json(input.texts),
                monthly_budget=input.monthly_budget,
                clear_monthly_budget=input.no_monthly_budget,
                currency=input.currency,
                priority=input.priority,
            )

        return await _result(change)

    @strawberry.mutation(permission_classes=[CanWrite], description="Never shown or redeemed again.")
    async def archive_offer(self, info: strawberry.Info, id: strawberry.ID) -> ArchiveOfferResult:
        context = info.context

        async def change() -> Offer:
            return await service.archive_offer(context.session, context.auth, _offer_uuid(id))

        return await _result(change)

    @strawberry.mutation(permission_classes=[CanWrite], description="The tenant budget, choice policy, cooldown.")
    async def update_offer_settings(
        self, info: strawberry.Info, input: UpdateOfferSettingsInput
    ) -> UpdateOfferSettingsResult:
        context = info.context
        try:
            settings = await service.update_settings(
                context.session,
                context.auth,
                clear_monthly_budget=input.no_monthly_budget,
                monthly_budget=input.monthly_budget,
                currency=input.currency,
                policy=input.policy.value if input.policy is not None else None,
                control_share=input.control_share,
                cooldown_days=input.cooldown_days,
            )
        except DomainError as error:
            return UserError.from_error(error)
        return OfferSettingsUpdated(settings=OfferSettingsType.from_settings(settings))

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Connect the billing provider offers are applied on; the key is checked, stored encrypted.",
    )
    async def connect_billing(self, info: strawberry.Info, input: ConnectBillingInput) -> ConnectBillingResult:
        context = info.context
        try:
            row = await billing.connect_billing(
                context.session, context.auth, context.settings, provider=input.provider.value, api_key=input.api_key
            )
        except DomainError as error:
            return UserError.from_error(error)
        return BillingConnected(billing_connection=BillingConnectionType.from_row(row))
