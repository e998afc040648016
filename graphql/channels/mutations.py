"""Channel mutations: save a template, send a test message, change the channel settings. Each
returns its result or a typed error saying why not."""

from typing import Annotated

import strawberry

from churnsaver.backend.channels import service
from churnsaver.backend.channels.templates import TemplateError
from churnsaver.backend.core.errors import DomainError, NotFound
from churnsaver.graphql.channels.queries import template_error
from churnsaver.graphql.channels.types import (
    ChannelSettingsType,
    MessageChannel,
    MessageType,
    TemplateErrorType,
    TemplateType,
)
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError


@strawberry.input
class UpdateTemplateInput:
    key: str = strawberry.field(description="The template key campaign steps name, e.g. payment_failed_update_card.")
    channel: MessageChannel
    locale: str = strawberry.field(description="en, es, de, pt-BR, …")
    subject: str | None = strawberry.field(default=None, description="Required for email.")
    body_text: str
    body_html: str | None = strawberry.field(default=None, description="Email only.")


@strawberry.type
class TemplateSaved:
    template: TemplateType


UpdateTemplateResult = Annotated[
    TemplateSaved | TemplateErrorType | UserError, strawberry.union("UpdateTemplateResult")
]


@strawberry.type
class TestMessageSent:
    # Not `message`: UserError's `message` is a String, and union members' same-named fields must agree.
    test_message: MessageType = strawberry.field(description="Scheduled at once (or suppressed, with why).")


SendTestMessageResult = Annotated[TestMessageSent | UserError, strawberry.union("SendTestMessageResult")]


@strawberry.input(description="Only what is given changes; an empty string clears an optional value.")
class UpdateChannelSettingsInput:
    from_name: str | None = None
    from_address: str | None = None
    sms_account_sid: str | None = None
    sms_from_number: str | None = None
    sms_auth_token: str | None = strawberry.field(default=None, description="Stored encrypted; never read back.")
    whop_api_key: str | None = strawberry.field(default=None, description="Stored encrypted; never read back.")
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    timezone: str | None = None
    default_locale: str | None = None
    cap_per_customer_per_week: int | None = None
    cap_per_channel_per_day: int | None = None
    update_payment_url: str | None = None
    whop_account_id: str | None = None


@strawberry.type
class ChannelSettingsUpdated:
    settings: ChannelSettingsType


UpdateChannelSettingsResult = Annotated[
    ChannelSettingsUpdated | UserError, strawberry.union("UpdateChannelSettingsResult")
]


@strawberry.type
class ChannelMutations:
    @strawberry.mutation(
        permission_classes=[CanWrite], description="Save the tenant's own template for a key, channel and locale."
    )
    async def update_template(self, info: strawberry.Info, input: UpdateTemplateInput) -> UpdateTemplateResult:
        context = info.context
        try:
            view = await service.update_template(
                context.session,
                context.auth,
                key=input.key,
                channel=input.channel.value,
                locale=input.locale,
                subject_text=input.subject,
                body_text=input.body_text,
                body_html=input.body_html,
            )
        except TemplateError as error:
            return template_error(error)
        except DomainError as error:
            return UserError.from_error(error)
        return TemplateSaved(template=TemplateType.from_view(view))

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Send a template to one of the tenant's customers now, marked as a test.",
    )
    async def send_test_message(
        self, info: strawberry.Info, customer_id: strawberry.ID, channel: MessageChannel, template: str
    ) -> SendTestMessageResult:
        context = info.context
        try:
            try:
                customer_uuid = parse_node_uuid(customer_id, "Customer")
            except NotFound:
                raise NotFound("customer") from None
            outcome = await service.send_test_message(
                context.session, context.auth, customer_id=customer_uuid, channel=channel.value, template=template
            )
            message = await service.get_message(context.session, context.auth, outcome.message_id)
        except DomainError as error:
            return UserError.from_error(error)
        # Committed now: the job is handed over, and the message's relations are read by dataloaders.
        await context.session.commit()
        return TestMessageSent(test_message=MessageType.from_row(message))

    @strawberry.mutation(permission_classes=[CanWrite], description="Change the channel settings.")
    async def update_channel_settings(
        self, info: strawberry.Info, input: UpdateChannelSettingsInput
    ) -> UpdateChannelSettingsResult:
        context = info.context
        changes = {
            name: getattr(input, name)
            for name in (
                "from_name",
                "from_address",
                "sms_account_sid",
                "sms_from_number",
                "quiet_hours_start",
                "quiet_hours_end",
                "timezone",
                "default_locale",
                "cap_per_customer_per_week",
                "cap_per_channel_per_day",
                "update_payment_url",
                "whop_account_id",
            )
        }
        try:
            settings = await service.update_channel_settings(
                context.session,
                context.auth,
                secret_key=context.settings.resolved_secret_key,
                sms_auth_token=input.sms_auth_token,
                whop_api_key=input.whop_api_key,
                **changes,
            )
        except DomainError as error:
            return UserError.from_error(error)
        return ChannelSettingsUpdated(settings=ChannelSettingsType.from_settings(settings))
