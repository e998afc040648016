"""Embeds mutations: change the widget settings; rotate the widget secret (shown once)."""

from typing import Annotated

import strawberry

from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.embeds import service
from churnsaver.backend.embeds.settings import CancelHandling
from churnsaver.graphql.embeds.types import CancelHandlingType, WidgetSettingsType
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError


@strawberry.input(description="An exit-survey reason; a built-in code (too_expensive, …) may leave the label out.")
class SurveyReasonInput:
    code: str
    label: str | None = None


@strawberry.input(description="Only what is given changes; an empty string clears the brand name or logo.")
class UpdateWidgetSettingsInput:
    allowed_origins: list[str] | None = strawberry.field(
        default=None, description="Replaces the list: scheme://host[:port], no path, no wildcard."
    )
    brand_name: str | None = None
    logo_url: str | None = strawberry.field(default=None, description="An https URL.")
    brand_color: str | None = strawberry.field(default=None, description="#RRGGBB.")
    survey_reasons: list[SurveyReasonInput] | None = strawberry.field(
        default=None, description="Replaces the list, in order; an empty list restores the built-in reasons."
    )
    cancel_handling: CancelHandlingType | None = None


@strawberry.type
class WidgetSettingsUpdated:
    settings: WidgetSettingsType


UpdateWidgetSettingsResult = Annotated[
    WidgetSettingsUpdated | UserError, strawberry.union("UpdateWidgetSettingsResult")
]


@strawberry.type
class WidgetSecretRotated:
    secret: str = strawberry.field(
        description="Sign each customer's external id with it (HMAC-SHA256, hex) on your server. Shown only now."
    )


RotateWidgetSecretResult = Annotated[WidgetSecretRotated | UserError, strawberry.union("RotateWidgetSecretResult")]


@strawberry.type
class EmbedMutations:
    @strawberry.mutation(permission_classes=[CanWrite], description="Change how the widget is embedded and looks.")
    async def update_widget_settings(
        self, info: strawberry.Info, input: UpdateWidgetSettingsInput
    ) -> UpdateWidgetSettingsResult:
        context = info.context
        try:
            settings = await service.update_widget_settings(
                context.session,
                context.auth,
                allowed_origins=input.allowed_origins,
                brand_name=input.brand_name,
                logo_url=input.logo_url,
                brand_color=input.brand_color,
                survey_reasons=(
                    [(reason.code, reason.label) for reason in input.survey_reasons]
                    if input.survey_reasons is not None
                    else None
                ),
                cancel_handling=CancelHandling[input.cancel_handling.name.lower()] if input.cancel_handling else None,
            )
        except DomainError as error:
            return UserError.from_error(error)
        return WidgetSettingsUpdated(settings=WidgetSettingsType.from_settings(settings))

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="A new widget secret, returned this once; pages signed with the old one stop working.",
    )
    async def rotate_widget_secret(self, info: strawberry.Info) -> RotateWidgetSecretResult:
        context = info.context
        try:
            secret = await service.rotate_widget_secret(
                context.session, context.auth, secret_key=context.settings.resolved_secret_key
            )
        except DomainError as error:
            return UserError.from_error(error)
        return WidgetSecretRotated(secret=secret)
