"""Channel types: a message and its history, templates and their previews, channel settings."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.relay import to_base64

from churnsaver.backend.channels import models, service
from churnsaver.backend.channels.models import Message, MessageEvent
from churnsaver.backend.channels.service import TemplateView
from churnsaver.backend.channels.settings import ChannelSettings
from churnsaver.backend.channels.templates import Rendered
from churnsaver.graphql.customers.types import CustomerType
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection

if TYPE_CHECKING:
    from churnsaver.graphql.cases.types import CaseType


@strawberry.enum(name="MessageChannel", description="How a message reaches the customer.")
class MessageChannel(Enum):
    EMAIL = models.Channel.email.value
    SMS = models.Channel.sms.value
    IN_APP = models.Channel.in_app.value
    WHOP = models.Channel.whop.value


@strawberry.enum(name="MessageStatus", description="Where a message stands.")
class MessageStatus(Enum):
    SCHEDULED = models.MessageStatus.scheduled.value
    SENDING = models.MessageStatus.sending.value
    SENT = models.MessageStatus.sent.value
    DELIVERED = models.MessageStatus.delivered.value
    FAILED = models.MessageStatus.failed.value
    SUPPRESSED = models.MessageStatus.suppressed.value
    CLICKED = models.MessageStatus.clicked.value
    CONVERTED = models.MessageStatus.converted.value


@strawberry.type(name="MessageStatusEvent", description="A status the message entered, and why.")
class MessageStatusEvent:
    status: MessageStatus
    reason: str | None
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: MessageEvent) -> "MessageStatusEvent":
        return cls(status=MessageStatus(row.status), reason=row.reason, occurred_at=row.occurred_at)


@strawberry.type(name="Message")
class MessageType(RowNode):
    """One delivery to one customer over one channel."""

    row: strawberry.Private[Message]
    loader = "message"
    channel: MessageChannel
    status: MessageStatus
    reason: str | None = strawberry.field(description="Why it was suppressed or failed (or is being retried).")
    template: str = strawberry.field(description="The template key.")
    locale: str | None = strawberry.field(description="The language it was rendered in; null until rendered.")
    to_address: str | None = strawberry.field(description="The email address, E.164 number or Whop user.")
    subject: str | None
    body_text: str | None = strawberry.field(description="The rendered text (what the in-app widget shows).")
    body_html: str | None
    captured: bool = strawberry.field(description="No provider configured: kept and shown, not sent.")
    test: bool = strawberry.field(description="A test send (sendTestMessage): never counted toward caps.")
    provider_message_id: str | None = strawberry.field(description="The Message-ID, SMS sid or Whop id.")
    campaign_id: strawberry.ID | None = strawberry.field(description="The campaign that sent it, if any.")
    scheduled_for: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    clicked_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Message) -> "MessageType":
        return cls(
            row=row,
            id=cls.global_id(row),
            channel=MessageChannel(row.channel),
            status=MessageStatus(row.status),
            reason=row.reason,
            template=row.template,
            locale=row.locale,
            to_address=row.to_address,
            subject=row.subject,
            body_text=row.body_text,
            body_html=row.body_html,
            captured=row.captured,
            test=row.test,
            provider_message_id=row.provider_message_id,
            campaign_id=strawberry.ID(to_base64("Campaign", row.campaign_id)) if row.campaign_id else None,
            scheduled_for=row.scheduled_for,
            sent_at=row.sent_at,
            delivered_at=row.delivered_at,
            clicked_at=row.clicked_at,
            created_at=row.created_at,
        )

    @strawberry.field(description="The customer it went to.")
    async def customer(self, info: strawberry.Info) -> CustomerType:
        row = await info.context.loaders.customer.load(self.row.customer_id)
        return CustomerType.from_row(row)

    @strawberry.field(name="case", description="The case it was sent for, if any.")
    async def case_(
        self, info: strawberry.Info
    ) -> Annotated["CaseType", strawberry.lazy("churnsaver.graphql.cases.types")] | None:
        from churnsaver.graphql.cases.types import CaseType  # cases' types import these: resolved at call time

        if self.row.case_id is None:
            return None
        row = await info.context.loaders.case.load(self.row.case_id)
        return CaseType.from_row(row) if row is not None else None

    @strawberry.field(description="Each status it entered, oldest first.")
    async def history(self, info: strawberry.Info) -> list[MessageStatusEvent]:
        context = info.context
        rows = await service.message_events(context.session, context.auth, self.row.id)
        return [MessageStatusEvent.from_row(row) for row in rows]


MessageConnection = Connection[MessageType]


@strawberry.type(name="Template", description="A message template; `custom`: the tenant's own, else built in.")
class TemplateType:
    key: str
    channel: MessageChannel
    locale: str
    subject: str | None
    body_text: str
    body_html: str | None
    custom: bool

    @classmethod
    def from_view(cls, view: TemplateView) -> "TemplateType":
        return cls(
            key=view.key,
            channel=MessageChannel(view.channel),
            locale=view.locale,
            subject=view.subject,
            body_text=view.body_text,
            body_html=view.body_html,
            custom=view.custom,
        )


@strawberry.type(name="RenderedTemplate", description="A template rendered with a sample customer.")
class RenderedTemplate:
    subject: str | None
    body_text: str
    body_html: str | None

    @classmethod
    def from_rendered(cls, rendered: Rendered) -> "RenderedTemplate":
        return cls(subject=rendered.subject, body_text=rendered.body_text, body_html=rendered.body_html)


@strawberry.type(name="TemplateError", description="A template that cannot be used, and where.")
class TemplateErrorType:
    code: str
    message: str
    field: str = strawberry.field(description="subject, bodyText or bodyHtml.")
    line: int | None = strawberry.field(description="The line of the template the error is on.")


@strawberry.type(name="ChannelSettings", description="Senders, quiet hours, time zone and caps.")
class ChannelSettingsType:
    from_name: str | None = strawberry.field(description="The email From name; null: the tenant's name.")
    from_address: str
    sms_account_sid: str | None
    sms_from_number: str | None
    sms_auth_token_set: bool = strawberry.field(description="An SMS auth token is stored (never shown).")
    whop_api_key_set: bool = strawberry.field(description="A Whop API key is stored (never shown).")
    quiet_hours_start: str = strawberry.field(description="HH:MM, the customer's local time.")
    quiet_hours_end: str
    timezone: str = strawberry.field(description="The tenant's IANA time zone, for customers without their own.")
    default_locale: str
    cap_per_customer_per_week: int
    cap_per_channel_per_day: int
    update_payment_url: str | None = strawberry.field(description="Where update-payment links lead.")
    whop_account_id: str | None = strawberry.field(description="The Whop account (biz_…) whose users Whop notifies.")

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> "ChannelSettingsType":
        return cls(
            from_name=settings.from_name,
            from_address=settings.from_address,
            sms_account_sid=settings.sms_account_sid,
            sms_from_number=settings.sms_from_number,
            sms_auth_token_set=settings.sms_auth_token_set,
            whop_api_key_set=settings.whop_api_key_set,
            quiet_hours_start=settings.quiet_hours_start,
            quiet_hours_end=settings.quiet_hours_end,
            timezone=settings.timezone,
            default_locale=settings.default_locale,
            cap_per_customer_per_week=settings.cap_per_customer_per_week,
            cap_per_channel_per_day=settings.cap_per_channel_per_day,
            update_payment_url=settings.update_payment_url,
            whop_account_id=settings.whop_account_id,
        )
