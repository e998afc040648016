"""Channels for the domains above (the seam campaigns calls) and for the API and CLI.

The seam takes a tenant id, not a subject: campaigns acts for the system, in its own transaction.
`schedule_message` stores the message and enqueues its `channels.send` job through the outbox in
that same transaction, so a rollback drops both and a commit keeps both. A message that may not be
sent (opted out, suppressed address, no address, no SMS consent) is stored as `suppressed` with
its reason and never enqueued: it is visible, never silently dropped.

Quiet hours and caps are enforced by campaigns (it chooses when a step is due); channels stores
the settings (`settings_for`) and counts what reached each customer (`sent_counts`).
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.channels.addresses import e164, email_address
from churnsaver.backend.channels.default_templates import DEFAULTS, TemplateText
from churnsaver.backend.channels.links import LinkClaims
from churnsaver.backend.channels.models import (
    Channel,
    LinkPurpose,
    Message,
    MessageEvent,
    MessageStatus,
    MessageTemplate,
)
from churnsaver.backend.channels.repository import (
    ConsentRepository,
    MessageEventRepository,
    MessageQuery,
    MessageRepository,
    TemplateRepository,
)
from churnsaver.backend.channels.settings import (
    LOCALE_PATTERN,
    SMS_TOKEN,
    WHOP_KEY,
    ChannelSettings,
    load_row,
    load_settings,
    seal,
    store_settings,
    unseal,
)
from churnsaver.backend.channels.sms import UNREACHABLE_NUMBER_CODES
from churnsaver.backend.channels.templates import Rendered, check_template, render
from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import InvalidInput, NotFound
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.core.pagination import Page
from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.customers.repository import CustomerIdentityRepository, CustomerRepository
from churnsaver.jobs.outbox import enqueue
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.models import Tenant

SEND = "channels.send"
MAX_KEY = 255
MAX_TEMPLATE_KEY = 100
TEMPLATE_KEY = re.compile(r"^[a-z0-9_]{1,100}$")


@dataclass(frozen=True, slots=True)
class ScheduleOutcome:
    message_id: uuid.UUID
    status: str
    created: bool  # False: a message with this idempotency key already existed, and is returned
    reason: str | None


# In-app messages are delivered by being stored (delivery.py); a scheduled one is not yet due.
SHOWN_IN_APP = (MessageStatus.sent.value, MessageStatus.delivered.value, MessageStatus.clicked.value)
MAX_IN_APP_SHOWN = 5


def channel_of(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(f"unknown channel {value!r} (channels: {', '.join(c.value for c in Channel)})") from None


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One message to schedule (`schedule_messages`): the arguments of `schedule_message`."""

    customer_id: uuid.UUID
    case_id: uuid.UUID | None
    channel: str
    template: str
    idempotency_key: str
    campaign_id: uuid.UUID | None = None
    variables: dict[str, Any] | None = None
    not_before: datetime | None = None
    test: bool = False


async def schedule_message(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    customer_id: uuid.UUID,
    case_id: uuid.UUID | None,
    channel: str,
    template: str,
    idempotency_key: str,
    campaign_id: uuid.UUID | None = None,
    variables: dict[str, Any] | None = None,
    not_before: datetime | None = None,
    test: bool = False,
) -> ScheduleOutcome:
    """Store a message for the customer and enqueue its sending (not before `not_before`), once per
    `idempotency_key`: a second call with the key returns the first message (`created=False`).
    NotFound when the customer is not the tenant's; InvalidInput for a bad channel or key."""
    request = MessageRequest(
        customer_id=customer_id,
        case_id=case_id,
        channel=channel,
        template=template,
        idempotency_key=idempotency_key,
        campaign_id=campaign_id,
        variables=variables,
        not_before=not_before,
        test=test,
    )
    [outcome] = await schedule_messages(session, tenant_id, [request])
    return outcome


async def schedule_messages(
    session: AsyncSession, tenant_id: uuid.UUID, requests: Sequence[MessageRequest]
) -> list[ScheduleOutcome]:
    """`schedule_message` for each request, in the order given, with a fixed number of statements
    for them all. All or nothing: a bad request (InvalidInput) or a customer not the tenant's
    (NotFound) stores none. A key given twice is one message (the second outcome `created=False`)."""
    for request in requests:
        _check_request(request)
    if not requests:
        return []
    messages = MessageRepository(session, tenant_id)
    known = await messages.by_idempotency_keys(list({request.idempotency_key for request in requests}))
    new: dict[str, MessageRequest] = {}
    for request in requests:
        if request.idempotency_key not in known:
            new.setdefault(request.idempotency_key, request)
    customers = await CustomerRepository(session, tenant_id).get_many(
        list({request.customer_id for request in new.values()})
    )
    if any(request.customer_id not in customers for request in new.values()):
        raise NotFound("customer")
    found = await destinations(
        session, tenant_id, [(customers[request.customer_id], Channel(request.channel)) for request in new.values()]
    )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for request, (address, reason) in zip(new.values(), found, strict=True):
        status = MessageStatus.suppressed if reason else MessageStatus.scheduled
        rows.append(
            {
                "id": ordered_uuid(),
                "customer_id": request.customer_id,
                "case_id": request.case_id,
                "campaign_id": request.campaign_id,
                "channel": request.channel,
                "template": request.template,
                "idempotency_key": request.idempotency_key,
                "status": status.value,
                "reason": reason,
                "variables": dict(request.variables or {}),
                "to_address": address,
                "test": request.test,
                "scheduled_for": request.not_before or now,
                "created_at": now,
                "updated_at": now,
            }
        )
    inserted = await messages.insert_new(rows)
    created = {row["idempotency_key"]: row for row in rows if row["idempotency_key"] in inserted}
    await record_events(session, tenant_id, [(row["id"], row["status"], row["reason"], {}) for row in created.values()])
    for key, row in created.items():
        if row["status"] == MessageStatus.scheduled.value:
            enqueue(session, SEND, tenant_id=tenant_id, not_before=new[key].not_before, message_ids=[str(row["id"])])
    if len(created) < len(rows):  # a concurrent transaction stored some of the keys first
        known |= await messages.by_idempotency_keys([key for key in new if key not in created])
    outcomes = []
    given: set[str] = set()
    for request in requests:
        key = request.idempotency_key
        if key in created:
            row = created[key]
            first = key not in given  # the first request with the key created it; a repeat did not
            outcomes.append(ScheduleOutcome(row["id"], row["status"], created=first, reason=row["reason"]))
        else:
            outcomes.append(_outcome(known[key], created=False))
        given.add(key)
    return outcomes


def _check_request(request: MessageRequest) -> None:
    channel_of(request.channel)
    if not request.idempotency_key or len(request.idempotency_key) > MAX_KEY:
        raise InvalidInput(f"an idempotency key is 1 to {MAX_KEY} characters")
    if not request.template or len(request.template) > MAX_TEMPLATE_KEY:
        raise InvalidInput(f"a template key is 1 to {MAX_TEMPLATE_KEY} characters")


async def record_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    events: Sequence[tuple[uuid.UUID, str, str | None, dict[str, Any]]],
    now: datetime | None = None,
) -> None:
    """Store a status event (message id, status, reason, data) for each message, in one statement."""
    if events:
        await MessageEventRepository(session, tenant_id).insert_many(events, now or utcnow())


async def sent_counts(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, *, since: datetime
) -> dict[str, int]:
    """Per channel, the customer's messages that count toward caps since `since`: those sent or on
    their way (scheduled and sending too, so that two campaigns deciding at once both see the
    first one), by their sending time, else their scheduled time. Tests and suppressed or failed
    messages do not count. Channels without any are left out."""
    return await MessageRepository(session, tenant_id).reaching_counts(customer_id, since)


async def opted_out(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, channel: str) -> bool:
    """The customer asked not to hear over `channel`: an opt-out recorded (unsubscribe, STOP, the
    API) or their imported consent trait `consent_<channel>` set to false."""
    kind = channel_of(channel)
    if await ConsentRepository(session, tenant_id).opted_out(customer_id, kind.value):
        return True
    customer = await CustomerRepository(session, tenant_id).get(customer_id)
    return customer is not None and _trait_consent(customer, kind) is False


async def settings_for(session: AsyncSession, tenant_id: uuid.UUID) -> ChannelSettings:
    """The tenant's channel settings (quiet hours, time zone, caps, senders), defaults filled in."""
    return await load_settings(session, tenant_id)


def _trait_consent(customer: Customer, channel: Channel) -> bool | None:
    value = (customer.traits or {}).get(f"consent_{channel.value}")
    return value if isinstance(value, bool) else None


async def destination(
    session: AsyncSession, tenant_id: uuid.UUID, customer: Customer, channel: Channel
) -> tuple[str | None, str | None]:
    """Where the message goes, and why it may not be sent (None: it may)."""
    [found] = await destinations(session, tenant_id, [(customer, channel)])
    return found


async def destinations(
    session: AsyncSession, tenant_id: uuid.UUID, wanted: list[tuple[Customer, Channel]]
) -> list[tuple[str | None, str | None]]:
    """`destination` of each (customer, channel), with one query per kind of fact for them all."""
    consent = ConsentRepository(session, tenant_id)
    customer_ids = sorted({customer.id for customer, _ in wanted}, key=str)
    channels = {channel for _, channel in wanted}
    opted_out = await consent.opt_outs_of(customer_ids)
    consented = await consent.sms_consented(customer_ids) if Channel.sms in channels else set()
    whop_users: dict[uuid.UUID, str] = {}
    if Channel.whop in channels:
        identities = await CustomerIdentityRepository(session, tenant_id).by_customer(customer_ids)
        for customer_id, rows in identities.items():
            for identity in rows:
                if isinstance(identity, CustomerIdentity) and identity.provider == "whop":
                    whop_users.setdefault(customer_id, identity.provider_id)
    found: list[tuple[str | None, str | None]] = []
    for customer, channel in wanted:
        if (customer.id, channel.value) in opted_out or _trait_consent(customer, channel) is False:
            found.append((None, f"the customer opted out of {channel.value}"))
        elif channel is Channel.email:
            address = email_address(customer.email)
            found.append((address, None if address else "the customer has no valid email address"))
        elif channel is Channel.sms:
            country = (customer.traits or {}).get("country")
            number = e164(customer.phone, country if isinstance(country, str) else None)
            if number is None:
                found.append((None, "the customer has no valid phone number"))
            elif customer.id not in consented and _trait_consent(customer, channel) is not True:
                found.append((number, "no SMS consent recorded for the customer"))
            else:
                found.append((number, None))
        elif channel is Channel.whop:
            user = whop_users.get(customer.id)
            found.append((user, None if user else "the customer has no Whop user"))
        else:
            found.append((None, None))
    addresses = {
        (channel.value, address.lower())
        for (_, channel), (address, reason) in zip(wanted, found, strict=True)
        if address is not None and reason is None
    }
    suppressed = await consent.suppressions(addresses) if addresses else {}
    for index, ((_, channel), (address, reason)) in enumerate(zip(wanted, found, strict=True)):
        if address is not None and reason is None and (why := suppressed.get((channel.value, address.lower()))):
            found[index] = (address, f"the address is suppressed: {why}")
    return found


def _outcome(message: Message, *, created: bool) -> ScheduleOutcome:
    return ScheduleOutcome(message_id=message.id, status=message.status, created=created, reason=message.reason)


# The API: every function takes the auth subject and checks its scope here.


@dataclass(frozen=True, slots=True)
class MessageFilter:
    case_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    channel: list[str] | None = None
    status: list[str] | None = None


async def list_messages(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    filter: MessageFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Message]:
    """A page of the tenant's messages, newest first."""
    subject.require_read()
    filter = filter or MessageFilter()
    for channel in filter.channel or ():
        channel_of(channel)
    for status in filter.status or ():
        if status not in MessageStatus.__members__:
            raise InvalidInput(f"unknown message status {status!r}")
    query = MessageQuery(
        case_id=filter.case_id, customer_id=filter.customer_id, channels=filter.channel, statuses=filter.status
    )
    messages = MessageRepository(session, subject.tenant_id)
    return await messages.page(messages.select_matching(query), first=first, after=after)


async def get_message(session: AsyncSession, subject: AuthSubject, message_id: uuid.UUID) -> Message:
    subject.require_read()
    return await MessageRepository(session, subject.tenant_id).get_or_raise(message_id, what="message")


async def messages_of_cases(
    session: AsyncSession, subject: AuthSubject, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
) -> dict[uuid.UUID, Page[Message]]:
    """The same page of each case's messages (a dataloader's batch); other tenants' cases: empty."""
    subject.require_read()
    return await MessageRepository(session, subject.tenant_id).pages_of_cases(case_ids, first=first, after=after)


async def in_app_messages(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> list[Message]:
    """What the widget shows the customer: in-app messages delivered for cases still open, newest
    first (a case that recovered or closed takes its messages away)."""
    messages = MessageRepository(session, tenant_id)
    return await messages.in_app_of_open_cases(customer_id, SHOWN_IN_APP, MAX_IN_APP_SHOWN)


async def message_events(session: AsyncSession, subject: AuthSubject, message_id: uuid.UUID) -> list[MessageEvent]:
    subject.require_read()
    return await MessageEventRepository(session, subject.tenant_id).of_message(message_id)


@dataclass(frozen=True, slots=True)
class TemplateView:
    key: str
    channel: str
    locale: str
    subject: str | None
    body_text: str
    body_html: str | None
    custom: bool  # the tenant's own; False: the built-in default


async def list_templates(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    key: str | None = None,
    channel: str | None = None,
    locale: str | None = None,
) -> list[TemplateView]:
    """The tenant's templates: its own, and each built-in one it has not replaced."""
    subject.require_read()
    own = {
        (row.key, row.channel, row.locale): TemplateView(
            row.key, row.channel, row.locale, row.subject, row.body_text, row.body_html, True
        )
        for row in await TemplateRepository(session, subject.tenant_id).all()
    }
    built_in = {
        ids: TemplateView(*ids, text.subject, text.body_text, text.body_html, False) for ids, text in DEFAULTS.items()
    }
    views = built_in | own
    return [
        view
        for ids, view in sorted(views.items())
        if (key is None or view.key == key)
        and (channel is None or view.channel == channel)
        and (locale is None or view.locale == locale)
    ]


def _checked_template_ids(key: str, channel: str, locale: str) -> tuple[str, str, str]:
    if not TEMPLATE_KEY.match(key or ""):
        raise InvalidInput("a template key is 1 to 100 lower-case letters, digits and underscores")
    if not LOCALE_PATTERN.match(locale or ""):
        raise InvalidInput(f"locale is a language code such as en or pt-BR, not {locale!r}")
    return key, channel_of(channel).value, locale


async def update_template(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    key: str,
    channel: str,
    locale: str,
    subject_text: str | None,
    body_text: str,
    body_html: str | None = None,
) -> TemplateView:
    """Store the tenant's own template (replacing the built-in one for its key, channel and locale).
    A template that does not compile or uses an unknown variable is a TemplateError with its line."""
    subject.require_write()
    key, channel, locale = _checked_template_ids(key, channel, locale)
    if channel == Channel.email.value and not (subject_text or "").strip():
        raise InvalidInput("an email template needs a subject")
    if not (body_text or "").strip():
        raise InvalidInput("a template needs a body text")
    html = body_html if channel == Channel.email.value else None
    check_template(TemplateText(subject=subject_text, body_text=body_text, body_html=html))
    values = {"subject": subject_text, "body_text": body_text, "body_html": html, "updated_at": utcnow()}
    insert = insert_for(session)(MessageTemplate).values(
        id=ordered_uuid(), tenant_id=subject.tenant_id, key=key, channel=channel, locale=locale, **values
    )
    upsert = insert.on_conflict_do_update(index_elements=["tenant_id", "key", "channel", "locale"], set_=values)
    await session.execute(upsert)
    return TemplateView(key, channel, locale, subject_text, body_text, html, True)


SAMPLE_VARIABLES = {
    "customer_name": "Alex Sample",
    "plan": "Pro",
    "amount_due": "$29.00",
    "offer_description": "Two months at half price.",
}


async def render_template(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    key: str,
    channel: str,
    locale: str,
    public_url: str,
    subject_text: str | None = None,
    body_text: str | None = None,
    body_html: str | None = None,
) -> Rendered:
    """A preview with a sample customer: the stored template (the tenant's, else the built-in one),
    or the draft given in `subject_text`/`body_text`/`body_html`, which is checked as if saved."""
    subject.require_read()
    key, channel, locale = _checked_template_ids(key, channel, locale)
    if body_text is not None:
        template = TemplateText(subject=subject_text, body_text=body_text, body_html=body_html)
        check_template(template)
    else:
        own = await TemplateRepository(session, subject.tenant_id).find(key, channel, locale)
        found = (
            TemplateText(subject=own.subject, body_text=own.body_text, body_html=own.body_html)
            if own is not None
            else DEFAULTS.get((key, channel, locale))
        )
        if found is None:
            raise NotFound("template")
        template = found
    channel_settings = await load_settings(session, subject.tenant_id)
    tenant = await session.get(Tenant, subject.tenant_id)
    example = f"{public_url.rstrip('/')}/l/preview"
    variables = SAMPLE_VARIABLES | {
        "merchant_name": channel_settings.from_name or (tenant.name if tenant else ""),
        "update_payment_link": example,
        "offer_link": example,
        "unsubscribe_link": example,
    }
    return render(template, variables)


async def send_test_message(
    session: AsyncSession, subject: AuthSubject, *, customer_id: uuid.UUID, channel: str, template: str
) -> ScheduleOutcome:
    """Send `template` to the customer now, marked as a test (never counted toward caps)."""
    subject.require_write()
    return await schedule_message(
        session,
        subject.tenant_id,
        customer_id=customer_id,
        case_id=None,
        channel=channel,
        template=template,
        idempotency_key=f"test:{ordered_uuid()}",
        test=True,
    )


async def get_channel_settings(session: AsyncSession, subject: AuthSubject) -> ChannelSettings:
    subject.require_read()
    return await load_settings(session, subject.tenant_id)


async def update_channel_settings(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    secret_key: str,
    sms_auth_token: str | None = None,
    whop_api_key: str | None = None,
    **changes: Any,
) -> ChannelSettings:
    """The settings with `changes` (None: unchanged), validated and stored. A secret given is sealed
    (an empty string clears it); a secret is never returned, only whether it is set."""
    subject.require_write()
    settings = (await load_settings(session, subject.tenant_id)).updated(**changes)
    sealed: dict[str, bytes | None] = {}
    for column, purpose, secret in (
        ("sms_auth_token_sealed", SMS_TOKEN, sms_auth_token),
        ("whop_api_key_sealed", WHOP_KEY, whop_api_key),
    ):
        if secret is None:
            continue
        secret = secret.strip()
        if len(secret) > 500 or not secret.isprintable():
            raise InvalidInput("a secret is at most 500 printable characters")
        sealed[column] = seal(secret_key, purpose, subject.tenant_id, secret) if secret else None
    await store_settings(session, subject.tenant_id, settings, sealed=sealed)
    return await load_settings(session, subject.tenant_id)


async def opt_out(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, channel: str, source: str
) -> None:
    """Record that the customer wants no more messages over `channel` (a STOP, an unsubscribe)."""
    await ConsentRepository(session, tenant_id).opt_out(customer_id, channel_of(channel).value, source)


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """Where an opened link leads: a URL to redirect to, or (None) a page of ours about the message."""

    url: str | None
    message: Message
    purpose: LinkPurpose


async def open_link(session: AsyncSession, claims: LinkClaims, now: datetime) -> LinkTarget:
    """Record the click of a verified link and say where it leads. NotFound when the message it
    names is not the tenant's, or not the customer's it names (a token never reaches further)."""
    message = await MessageRepository(session, claims.tenant_id).get(claims.message_id)
    if message is None or message.customer_id != claims.customer_id:
        raise NotFound("message")
    await ConsentRepository(session, claims.tenant_id).record_click(message.id, claims.purpose.value)
    if claims.purpose is LinkPurpose.unsubscribe:
        return LinkTarget(url=None, message=message, purpose=claims.purpose)
    if message.status in (MessageStatus.sent.value, MessageStatus.delivered.value):
        message.status = MessageStatus.clicked.value
        message.clicked_at = now
        session.add(
            MessageEvent(
                tenant_id=message.tenant_id,
                message_id=message.id,
                status=MessageStatus.clicked.value,
                data={"purpose": claims.purpose.value},
                occurred_at=now,
            )
        )
    url: str | None = None
    if claims.purpose is LinkPurpose.update_payment:
        given = message.variables.get("update_payment_url")
        url = given if isinstance(given, str) else (await load_settings(session, claims.tenant_id)).update_payment_url
    elif claims.purpose is LinkPurpose.offer:
        given = message.variables.get("offer_url")
        url = given if isinstance(given, str) else None
    return LinkTarget(url=url, message=message, purpose=claims.purpose)


async def unsubscribe(session: AsyncSession, claims: LinkClaims) -> Message:
    """Opt the link's customer out of the channel of the link's message (RFC 8058 one-click, or the
    page's button). NotFound as `open_link`; doing it twice changes nothing."""
    if claims.purpose is not LinkPurpose.unsubscribe:
        raise InvalidInput("this link is not an unsubscribe link")
    message = await MessageRepository(session, claims.tenant_id).get(claims.message_id)
    if message is None or message.customer_id != claims.customer_id:
        raise NotFound("message")
    await ConsentRepository(session, claims.tenant_id).opt_out(message.customer_id, message.channel, "unsubscribe_link")
    return message


# SMS provider webhooks: the tenant comes from the URL, the signature from the tenant's auth token.


async def sms_auth_token(session: AsyncSession, tenant_id: uuid.UUID, secret_key: str) -> str | None:
    row = await load_row(session, tenant_id)
    return unseal(secret_key, SMS_TOKEN, tenant_id, row.sms_auth_token_sealed if row else None)


async def record_sms_status(
    session: AsyncSession, tenant_id: uuid.UUID, sid: str, provider_status: str, error_code: str | None
) -> Message | None:
    """Apply a status callback: delivered, or failed (an unreachable number is suppressed). A
    message already failed, or moved on (clicked), is not moved back; None: no such message."""
    message = await MessageRepository(session, tenant_id).by_provider_id(Channel.sms.value, sid)
    if message is None:
        return None
    now = utcnow()
    if provider_status == "delivered" and message.status == MessageStatus.sent.value:
        message.status, message.delivered_at = MessageStatus.delivered.value, now
        session.add(MessageEvent(tenant_id=tenant_id, message_id=message.id, status=message.status, occurred_at=now))
    elif provider_status in ("failed", "undelivered") and message.status in (
        MessageStatus.sent.value,
        MessageStatus.delivered.value,
    ):
        reason = f"the SMS provider reports {provider_status}" + (f" (error {error_code})" if error_code else "")
        message.status, message.reason = MessageStatus.failed.value, reason
        session.add(
            MessageEvent(
                tenant_id=tenant_id, message_id=message.id, status=message.status, reason=reason, occurred_at=now
            )
        )
        if error_code and error_code.isdigit() and int(error_code) in UNREACHABLE_NUMBER_CODES and message.to_address:
            await ConsentRepository(session, tenant_id).suppress(Channel.sms.value, message.to_address.lower(), reason)
    return message


async def record_sms_stop(session: AsyncSession, tenant_id: uuid.UUID, phone: str) -> list[uuid.UUID]:
    """An inbound STOP from `phone`: the number is suppressed for SMS and every customer it is known
    for (from their SMS consent or the SMS they were sent) is opted out. Returns those customers."""
    number = e164(phone)
    if number is None:
        raise InvalidInput("the sender is not a phone number")
    consent = ConsentRepository(session, tenant_id)
    await consent.suppress(Channel.sms.value, number.lower(), "the recipient replied STOP")
    customers = await consent.customers_of_phone(number)
    for customer_id in customers:
        await consent.opt_out(customer_id, Channel.sms.value, "sms_stop")
    return customers
