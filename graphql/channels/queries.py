"""Channel queries: messages (filtered, newest first), templates and their previews, channel settings."""

import uuid
from typing import Annotated

import strawberry

from churnsaver.backend.channels import service
from churnsaver.backend.channels.delivery import public_url
from churnsaver.backend.channels.templates import TemplateError
from churnsaver.backend.core.errors import DomainError, InvalidInput, NotFound
from churnsaver.graphql.channels.types import (
    ChannelSettingsType,
    MessageChannel,
    MessageConnection,
    MessageStatus,
    MessageType,
    RenderedTemplate,
    TemplateErrorType,
    TemplateType,
)
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.pagination import connection_from_page
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.results import UserError


@strawberry.input(description="Every condition given must hold; a list matches any of its values.")
class MessageFilter:
    case_id: strawberry.ID | None = strawberry.field(default=None, description="A Case's id.")
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="A Customer's id.")
    channel: list[MessageChannel] | None = None
    status: list[MessageStatus] | None = None

    def to_service(self) -> service.MessageFilter:
        return service.MessageFilter(
            case_id=_uuid_of(self.case_id, "Case", "filter.caseId"),
            customer_id=_uuid_of(self.customer_id, "Customer", "filter.customerId"),
            channel=[channel.value for channel in self.channel] if self.channel is not None else None,
            status=[status.value for status in self.status] if self.status is not None else None,
        )


def _uuid_of(id: strawberry.ID | None, type_name: str, field: str) -> uuid.UUID | None:
    if id is None:
        return None
    try:
        return parse_node_uuid(id, type_name)
    except NotFound:
        raise InvalidInput(f"{field} is not a {type_name.lower()}'s id") from None


@strawberry.input(description="A draft to preview instead of the stored template (checked as if saved).")
class TemplateDraft:
    subject: str | None = None
    body_text: str
    body_html: str | None = None


RenderTemplateResult = Annotated[
    RenderedTemplate | TemplateErrorType | UserError, strawberry.union("RenderTemplateResult")
]


def template_error(error: TemplateError) -> TemplateErrorType:
    return TemplateErrorType(code=error.code, message=str(error), field=error.field, line=error.line)


@strawberry.type
class ChannelQueries:
    @strawberry.field(permission_classes=[CanRead], description="Messages, newest first; `first` is at most 100.")
    async def messages(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        filter: MessageFilter | None = None,
    ) -> MessageConnection:
        context = info.context
        page = await service.list_messages(
            context.session,
            context.auth,
            filter=filter.to_service() if filter is not None else None,
            first=first,
            after=after,
        )
        return connection_from_page(page, MessageType.from_row)

    @strawberry.field(
        permission_classes=[CanRead], description="Templates: the tenant's own, and the built-in ones it kept."
    )
    async def templates(
        self,
        info: strawberry.Info,
        key: str | None = None,
        channel: MessageChannel | None = None,
        locale: str | None = None,
    ) -> list[TemplateType]:
        context = info.context
        views = await service.list_templates(
            context.session, context.auth, key=key, channel=channel.value if channel else None, locale=locale
        )
        return [TemplateType.from_view(view) for view in views]

    @strawberry.field(
        permission_classes=[CanRead],
        description="Preview a template (or a draft of one) rendered for a sample customer.",
    )
    async def render_template(
        self,
        info: strawberry.Info,
        key: str,
        channel: MessageChannel,
        locale: str = "en",
        draft: TemplateDraft | None = None,
    ) -> RenderTemplateResult:
        context = info.context
        try:
            rendered = await service.render_template(
                context.session,
                context.auth,
                key=key,
                channel=channel.value,
                locale=locale,
                public_url=public_url(context.settings),
                subject_text=draft.subject if draft else None,
                body_text=draft.body_text if draft else None,
                body_html=draft.body_html if draft else None,
            )
        except TemplateError as error:
            return template_error(error)
        except DomainError as error:
            return UserError.from_error(error)
        return RenderedTemplate.from_rendered(rendered)

    @strawberry.field(permission_classes=[CanRead], description="Senders, quiet hours, time zone and caps.")
    async def channel_settings(self, info: strawberry.Info) -> ChannelSettingsType:
        context = info.context
        return ChannelSettingsType.from_settings(await service.get_channel_settings(context.session, context.auth))
