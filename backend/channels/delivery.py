"""Sending one message, at most once: claim it, call the provider, record what happened.

1. Claim (one transaction, the row locked): a `scheduled` message is rendered, moved to `sending`
   with a lease, and committed BEFORE any provider is called. A second copy of the job finds it
   `sending` (or done) and does nothing.
2. Send, outside any transaction.
3. Record `sent` with the provider's message id; or, for a temporary failure, put it back to
   `scheduled` and raise so the job retries with backoff; or `failed` (a permanent failure also
   suppresses the address).

A message still `sending` after its lease belongs to a worker that died mid-send. Neither SMTP nor
our Whop call can tell whether that attempt reached the customer, so it is never sent blindly
again: it is marked `failed` with "interrupted; outcome unknown" (`resolve_interrupted`). Sending
twice is the worse error for a recovery message; the failure is visible on the case and in the API.

With no SMTP server (or SMS provider) configured, a message is captured: stored as `sent` with
`captured` set, shown on /dev/mailbox and in the API, never dropped in silence.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.channels import email as smtp
from churnsaver.backend.channels import links
from churnsaver.backend.channels.default_templates import TemplateText
from churnsaver.backend.channels.models import Channel, LinkPurpose, Message, MessageEvent, MessageStatus
from churnsaver.backend.channels.repository import ConsentRepository, MessageRepository, TemplateRepository
from churnsaver.backend.channels.service import destination
from churnsaver.backend.channels.settings import ChannelSettings, load_settings
from churnsaver.backend.channels.templates import Rendered, default_template, locales_to_try, render
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.money import format_money
from churnsaver.backend.core.repository import owned_by
from churnsaver.backend.customers.models import Customer
from churnsaver.tenants.models import Tenant

LEASE = timedelta(minutes=2)  # longer than any provider call's timeout
MAX_ATTEMPTS = 8  # temporary failures after this many tries fail the message
INTERRUPTED = "interrupted; outcome unknown"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
logger = structlog.get_logger(__name__)


class RetryLater(Exception):
    """A temporary failure: the job raises it so its runner retries with backoff."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the provider call needs, read from the claimed message."""

    message_id: uuid.UUID
    tenant_id: uuid.UUID
    channel: str
    to_address: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    from_name: str
    from_address: str
    unsubscribe_url: str
    settings: ChannelSettings


@dataclass(frozen=True, slots=True)
class Sent:
    provider_message_id: str | None
    captured: bool


def public_url(settings: Settings) -> str:
    return (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def link(settings: Settings, message: Message, purpose: LinkPurpose, now: datetime) -> str:
    claims = links.LinkClaims(
        tenant_id=message.tenant_id,
        customer_id=message.customer_id,
        case_id=message.case_id,
        message_id=message.id,
        purpose=purpose,
        expires_at=now + links.lifetime(purpose),
    )
    return f"{public_url(settings)}/l/{links.sign(claims, settings.resolved_secret_key)}"


def email_message_id(message_id: uuid.UUID, from_address: str) -> str:
    return f"<{message_id}@{from_address.rsplit('@', 1)[-1]}>"


async def deliver(db: Database, settings: Settings, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str:
    """Send the message if it is still to be sent; returns what happened (for logs and tests).
    Raises RetryLater after a temporary failure (the message is `scheduled` again)."""
    prepared = await _claim(db, settings, tenant_id, message_id)
    if isinstance(prepared, str):
        return prepared
    try:
        sent = await _send(settings, prepared)
    except smtp.TemporaryFailure as error:
        return await _after_temporary_failure(db, tenant_id, message_id, str(error))
    except smtp.PermanentFailure as error:
        await _finish(db, tenant_id, message_id, MessageStatus.failed, str(error), suppress=error.suppress)
        return "failed"
    await _finish(db, tenant_id, message_id, MessageStatus.sent, None, sent=sent)
    return "captured" if sent.captured else "sent"


async def _claim(db: Database, settings: Settings, tenant_id: uuid.UUID, message_id: uuid.UUID) -> Prepared | str:
    now = utcnow()
    async with db.tenant_unit_of_work(tenant_id) as session:
        # The claim is the transaction's first statement, a conditional write: of two workers, the
        # second waits for the first's commit and then matches nothing (on SQLite too, where a
        # transaction that read first could not take the write lock after another commit).
        claimed = {"lease_expires_at": now + LEASE, "attempts": Message.attempts + 1}
        if not await _move(session, tenant_id, message_id, MessageStatus.scheduled, MessageStatus.sending, claimed):
            return await _not_claimed(session, tenant_id, message_id, now)
        message = await MessageRepository(session, tenant_id).locked(message_id)
        assert message is not None  # just claimed
        customer = await session.get(Customer, message.customer_id)
        if customer is None or customer.tenant_id != tenant_id:
            _transition(session, message, MessageStatus.failed, "the customer no longer exists", now)
            return "failed"
        # Consent may have changed since it was scheduled (an unsubscribe, a STOP, a bounce).
        address, reason = await destination(session, tenant_id, customer, Channel(message.channel))
        if reason is not None:
            _transition(session, message, MessageStatus.suppressed, reason, now)
            return "suppressed"
        channel_settings = await load_settings(session, tenant_id)
        tenant = await session.get(Tenant, tenant_id)
        merchant = channel_settings.from_name or (tenant.name if tenant else "")
        rendered, locale = await render_message(session, settings, message, customer, channel_settings, merchant, now)
        message.to_address, message.locale = address, locale
        message.subject, message.body_text, message.body_html = rendered.subject, rendered.body_text, rendered.body_html
        _transition(session, message, MessageStatus.sending, None, now)
        return Prepared(
            message_id=message.id,
            tenant_id=tenant_id,
            channel=message.channel,
            to_address=address,
            subject=rendered.subject,
            body_text=rendered.body_text,
            body_html=rendered.body_html,
            from_name=merchant,
            from_address=channel_settings.from_address,
            unsubscribe_url=link(settings, message, LinkPurpose.unsubscribe, now),
            settings=channel_settings,
        )


async def _not_claimed(session: AsyncSession, tenant_id: uuid.UUID, message_id: uuid.UUID, now: datetime) -> str:
    """Why the message was not ours to send; a lapsed `sending` is resolved to failed on the way."""
    message = await MessageRepository(session, tenant_id).locked(message_id)
    if message is None:
        return "missing"
    if message.status != MessageStatus.sending.value:
        return "done"
    if message.lease_expires_at is not None and message.lease_expires_at > now:
        return "in flight"
    lapsed = Message.lease_expires_at < now
    if await _move(session, tenant_id, message_id, MessageStatus.sending, MessageStatus.failed, {}, lapsed):
        await session.refresh(message)
        _transition(session, message, MessageStatus.failed, INTERRUPTED, now)
    return "interrupted"


async def _move(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    message_id: uuid.UUID,
    source: MessageStatus,
    target: MessageStatus,
    values: dict[str, Any],
    *conditions: Any,
) -> bool:
    """Move the message from `source` to `target` (with `values`) if it is still in `source`."""
    statement = (
        update(Message)
        .where(owned_by(tenant_id, Message), Message.id == message_id, Message.status == source.value, *conditions)
        .values(status=target.value, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def render_message(
    session: AsyncSession,
    settings: Settings,
    message: Message,
    customer: Customer,
    channel_settings: ChannelSettings,
    merchant: str,
    now: datetime,
) -> tuple[Rendered, str]:
    """The message's template for the customer's locale (with fallbacks), rendered, and that locale."""
    template, locale = await choose_template(
        session, message.tenant_id, message.template, message.channel, customer, channel_settings
    )
    case = await session.get(RecoveryCase, message.case_id) if message.case_id else None
    variables = template_variables(message.variables, customer, case, merchant)
    variables |= {
        "update_payment_link": link(settings, message, LinkPurpose.update_payment, now),
        "offer_link": link(settings, message, LinkPurpose.offer, now),
        "unsubscribe_link": link(settings, message, LinkPurpose.unsubscribe, now),
    }
    return render(template, variables), locale


async def choose_template(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    key: str,
    channel: str,
    customer: Customer | None,
    channel_settings: ChannelSettings,
) -> tuple[TemplateText, str]:
    """The tenant's own template, else the built-in one, for the first locale that has either."""
    customer_locale = (customer.traits or {}).get("locale") if customer is not None else None
    templates = TemplateRepository(session, tenant_id)
    for locale in locales_to_try(customer_locale, channel_settings.default_locale):
        own = await templates.find(key, channel, locale)
        if own is not None:
            return TemplateText(subject=own.subject, body_text=own.body_text, body_html=own.body_html), locale
        if (built_in := default_template(key, channel, locale)) is not None:
            return built_in, locale
    fallback = default_template("payment_failed_update_card", channel, "en")
    assert fallback is not None  # every channel has the built-in templates in English
    return TemplateText(subject=fallback.subject, body_text="{{ merchant_name }}"), "en"


def template_variables(
    given: dict[str, Any], customer: Customer | None, case: RecoveryCase | None, merchant: str
) -> dict[str, str]:
    """The template's variables: what the scheduler gave wins, then the customer and the case."""
    traits = (customer.traits or {}) if customer is not None else {}
    details = case.details if case is not None else {}
    amount = details.get("amount")
    currency = details.get("currency") or (case.currency if case is not None else None)
    values = {
        "customer_name": (customer.name if customer is not None else None) or traits.get("name") or "there",
        "plan": traits.get("plan") or details.get("plan") or "your plan",
        "amount_due": format_money(amount, currency) if isinstance(amount, int) else "the amount due",
        "offer_description": "",
        "merchant_name": merchant,
    }
    values |= {name: str(value) for name, value in given.items() if name in values and value is not None}
    return {name: str(value) for name, value in values.items()}


async def _send(settings: Settings, prepared: Prepared) -> Sent:
    if prepared.channel == Channel.in_app.value:
        return Sent(provider_message_id=None, captured=False)  # stored for the widget: that is its delivery
    if prepared.channel == Channel.email.value:
        message_id = email_message_id(prepared.message_id, prepared.from_address)
        if settings.smtp_url is None:
            return Sent(provider_message_id=message_id, captured=True)
        outgoing = smtp.OutgoingEmail(
            message_id=message_id,
            from_name=prepared.from_name,
            from_address=prepared.from_address,
            to_address=prepared.to_address or "",
            subject=prepared.subject or "",
            body_text=prepared.body_text,
            body_html=prepared.body_html,
            unsubscribe_url=prepared.unsubscribe_url,
            date=utcnow(),
        )
        await smtp.pool_for(settings.smtp_url).send(smtp.build(outgoing))
        return Sent(provider_message_id=message_id, captured=False)
    # SMS and Whop notifications: captured until their providers are wired in.
    return Sent(provider_message_id=None, captured=True)


async def _after_temporary_failure(db: Database, tenant_id: uuid.UUID, message_id: uuid.UUID, reason: str) -> str:
    async with db.tenant_unit_of_work(tenant_id) as session:
        # Back to scheduled first (a conditional write, as the claim), failed below if out of tries.
        back = {"lease_expires_at": None}
        if not await _move(session, tenant_id, message_id, MessageStatus.sending, MessageStatus.scheduled, back):
            return "done"  # resolved meanwhile (its lease ran out): what was recorded stands
        message = await MessageRepository(session, tenant_id).locked(message_id)
        assert message is not None
        if message.attempts >= MAX_ATTEMPTS:
            _transition(session, message, MessageStatus.failed, f"gave up after {message.attempts} tries: {reason}")
            return "failed"
        _transition(session, message, MessageStatus.scheduled, f"retrying: {reason}")
    raise RetryLater(reason)


async def _finish(
    db: Database,
    tenant_id: uuid.UUID,
    message_id: uuid.UUID,
    status: MessageStatus,
    reason: str | None,
    *,
    sent: Sent | None = None,
    suppress: bool = False,
) -> None:
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": None, "reason": reason}
    if sent is not None:
        values |= {"provider_message_id": sent.provider_message_id, "captured": sent.captured, "sent_at": now}
    async with db.tenant_unit_of_work(tenant_id) as session:
        if not await _move(session, tenant_id, message_id, MessageStatus.sending, status, values):
            return  # resolved meanwhile (its lease ran out): what was recorded stands
        message = await MessageRepository(session, tenant_id).locked(message_id)
        assert message is not None
        if suppress and message.to_address:
            await ConsentRepository(session, tenant_id).suppress(
                message.channel, message.to_address.lower(), reason or ""
            )
        _transition(session, message, status, reason, now, data={"captured": True} if sent and sent.captured else {})


def _transition(
    session: AsyncSession,
    message: Message,
    status: MessageStatus,
    reason: str | None,
    now: datetime | None = None,
    *,
    data: dict[str, Any] | None = None,
) -> None:
    now = now or utcnow()
    message.status = status.value
    message.reason = reason
    message.updated_at = now
    session.add(
        MessageEvent(
            tenant_id=message.tenant_id,
            message_id=message.id,
            status=status.value,
            reason=reason,
            data=data or {},
            occurred_at=now,
        )
    )


async def resolve_interrupted(db: Database, tenant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Mark the tenant's messages whose sending lease ran out `failed` (interrupted; outcome unknown)."""
    now = now or utcnow()
    async with db.tenant_unit_of_work(tenant_id) as session:
        statement = (
            select(Message)
            .where(
                owned_by(tenant_id, Message),
                Message.status == MessageStatus.sending.value,
                Message.lease_expires_at < now,
            )
            .with_for_update(skip_locked=True)
        )
        stale = list((await session.execute(statement)).scalars())
        for message in stale:
            message.lease_expires_at = None
            _transition(session, message, MessageStatus.failed, INTERRUPTED, now)
        return len(stale)
