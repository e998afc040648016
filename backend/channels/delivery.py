"""Sending one message, at most once: claim it, call the provider, record what happened.

1. Claim (one transaction, the row locked): a `scheduled` message is rendered, moved to `sending`
   with a lease, and committed BEFORE any provider is called. A second copy of the job finds it
   `sending` (or done) and does nothing.
2. Send, outside any transaction.
3. Record `sent` with the provider's message id; or, for a temporary failure, put it back to
   `scheduled` and raise so the job retries with backoff; or `failed` (a permanent failure also
   suppresses the address).

A message still `sending` after its lease belongs to a worker that died mid-send. SMTP cannot be
asked whether that attempt reached the customer, nor can Twilio's API without a sid we never
recorded, so email and SMS are never sent blindly again: they are marked `failed` with
"interrupted; outcome unknown" (`resolve_interrupted`, or the next copy of the job). Sending twice
is the worse error for a recovery message; the failure is visible on the case and in the API.
In-app and Whop are sent again instead: in-app is our own row, and a Whop request carries the
message id as its Idempotency-Key, so the provider drops a repeat. The same holds for a request
that went out and got no answer (OutcomeUnknown).

With no SMTP server (or SMS provider, or Whop API key) configured, a message is captured: stored
as `sent` with `captured` set, shown on /dev/mailbox and in the API, never dropped in silence.
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.backend.channels import email as smtp
from churnsaver.backend.channels import links, sms, whop_notify
from churnsaver.backend.channels.default_templates import TemplateText
from churnsaver.backend.channels.models import Channel, LinkPurpose, Message, MessageEvent, MessageStatus
from churnsaver.backend.channels.outcomes import OutcomeUnknown, PermanentFailure, TemporaryFailure
from churnsaver.backend.channels.repository import ConsentRepository, MessageRepository, TemplateRepository
from churnsaver.backend.channels.service import SEND, destinations, record_events
from churnsaver.backend.channels.settings import (
    SMS_TOKEN,
    WHOP_KEY,
    ChannelSettings,
    load_row,
    settings_from_row,
    unseal,
)
from churnsaver.backend.channels.templates import Rendered, TemplateError, default_template, locales_to_try, render
from churnsaver.backend.core.bulk import is_one_of
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.money import format_money
from churnsaver.backend.core.repository import owned_by
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.jobs.outbox import enqueue
from churnsaver.tenants.models import Tenant

LEASE = timedelta(minutes=2)  # longer than any provider call's timeout
MAX_ATTEMPTS = 8  # temporary failures after this many tries fail the message
RETRY_BASE = timedelta(seconds=5)  # a temporary failure waits 5 s, 10 s, 20 s, ... before the next try
RETRY_MAX = timedelta(minutes=10)
INTERRUPTED = "interrupted; outcome unknown"
# Sending these again cannot reach the customer twice: in-app is only our own row, and a Whop
# request carries the message id as its Idempotency-Key. Their interrupted sends are redone.
IDEMPOTENT_CHANNELS = (Channel.in_app.value, Channel.whop.value)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the provider call needs, read from the claimed message."""

    message_id: uuid.UUID
    tenant_id: uuid.UUID
    channel: str
    attempts: int  # this one included
    to_address: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    from_name: str
    from_address: str
    unsubscribe_url: str
    status_callback_url: str
    settings: ChannelSettings
    sms_auth_token: str | None  # unsealed for this send only; never logged or stored elsewhere
    whop_api_key: str | None


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


async def deliver(
    db: Database, settings: Settings, tenant_id: uuid.UUID, message_id: uuid.UUID, *, batch: int = 1
) -> str:
    """Send one message (see `deliver_many`); returns what happened to it."""
    return (await deliver_many(db, settings, tenant_id, [message_id], batch=batch))[message_id]


async def deliver_many(
    db: Database, settings: Settings, tenant_id: uuid.UUID, message_ids: list[uuid.UUID], *, batch: int = 1
) -> dict[uuid.UUID, str]:
    """Send the messages still to be sent, and up to `batch` in all with other due messages of the
    tenant alongside them (their own jobs then find them done); returns what happened to each of
    `message_ids` (for logs and tests): sent, captured, failed, suppressed, retrying, done, ..."""
    unsettled = await _unsettled(db, tenant_id, message_ids)
    outcomes = dict.fromkeys(message_ids, "done")  # the usual case of a batch's other jobs: a read, no write
    if unsettled:
        now = utcnow()
        prepared, claimed = await _claim(db, settings, tenant_id, unsettled, batch, now)
        outcomes |= claimed
        if prepared:
            results = await asyncio.gather(*(_attempt(settings, one) for one in prepared))
            outcomes |= await _record(db, tenant_id, list(zip(prepared, results, strict=True)))
        _remember_settled(outcomes)
    return {message_id: outcomes[message_id] for message_id in message_ids}


SETTLED_OUTCOMES = frozenset(("sent", "captured", "failed", "suppressed"))  # of `deliver`, final
MAX_REMEMBERED = 100_000
_settled_here: set[uuid.UUID] = set()
SETTLED = tuple(
    status.value for status in MessageStatus if status not in (MessageStatus.scheduled, MessageStatus.sending)
)


def _remember_settled(outcomes: dict[uuid.UUID, str]) -> None:
    """Keep the messages this process settled (their transactions committed), for `_settled`."""
    if len(_settled_here) > MAX_REMEMBERED:
        _settled_here.clear()
    _settled_here.update(message_id for message_id, outcome in outcomes.items() if outcome in SETTLED_OUTCOMES)


def forget_settled() -> None:
    """Forget what this process settled, as a freshly started worker knows nothing of it."""
    _settled_here.clear()


async def _unsettled(db: Database, tenant_id: uuid.UUID, message_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of the messages not yet sent, failed or suppressed: nothing ever moves a settled one
    back to `scheduled` (a retry or a requeue is decided while it is `sending`), so its job has
    nothing to do. Known without a read for those this process settled (a batch's other jobs)."""
    unknown = [message_id for message_id in dict.fromkeys(message_ids) if message_id not in _settled_here]
    if not unknown:
        return []
    async with db.tenant_session(tenant_id) as session:
        statement = select(Message.id).where(
            owned_by(tenant_id, Message), is_one_of(session, Message.id, unknown), Message.status.in_(SETTLED)
        )
        settled = set((await session.execute(statement)).scalars())
    return [message_id for message_id in unknown if message_id not in settled]


@dataclass
class _TenantContext:
    """What every message of one claim shares: read once per claim, not once per message."""

    settings: ChannelSettings
    merchant: str
    sms_auth_token: str | None
    whop_api_key: str | None
    templates: dict[tuple[str, str, str], tuple[TemplateText, str]]


async def _claim(
    db: Database, settings: Settings, tenant_id: uuid.UUID, message_ids: list[uuid.UUID], batch: int, now: datetime
) -> tuple[list[Prepared], dict[uuid.UUID, str]]:
    outcomes: dict[uuid.UUID, str] = {}
    async with db.tenant_unit_of_work(tenant_id) as session:
        claimed = await _claim_ids(session, tenant_id, message_ids, batch, now)
        for message_id in message_ids:
            if message_id not in claimed:
                outcomes[message_id] = await _not_claimed(session, tenant_id, message_id, now)
        if not claimed:
            return [], outcomes
        statement = (
            select(Message)
            .where(owned_by(tenant_id, Message), is_one_of(session, Message.id, claimed))
            .order_by(Message.id)
            .execution_options(populate_existing=True)
        )
        messages = list((await session.execute(statement)).scalars())
        context = await _tenant_context(session, settings, tenant_id)
        customers = await CustomerRepository(session, tenant_id).get_many(list({m.customer_id for m in messages}))
        cases = await CaseRepository(session, tenant_id).get_many(list({m.case_id for m in messages if m.case_id}))
        addressed = [message for message in messages if message.customer_id in customers]
        # Consent may have changed since they were scheduled (an unsubscribe, a STOP, a bounce).
        found = await destinations(
            session, tenant_id, [(customers[m.customer_id], Channel(m.channel)) for m in addressed]
        )
        where = {message.id: destination for message, destination in zip(addressed, found, strict=True)}
        prepared = []
        # Changes are flushed once, as the claim commits, not before each message's next read.
        with session.no_autoflush:
            for message in messages:
                customer = customers.get(message.customer_id)
                if customer is None:
                    _transition(session, message, MessageStatus.failed, "the customer no longer exists", now)
                    outcomes[message.id] = "failed"
                    continue
                case = cases.get(message.case_id) if message.case_id else None
                result = await _prepare(session, settings, message, customer, case, where[message.id], context, now)
                if isinstance(result, str):
                    outcomes[message.id] = result
                else:
                    prepared.append(result)
        sending = MessageStatus.sending.value
        await record_events(session, tenant_id, [(one.message_id, sending, None, {}) for one in prepared], now)
        return prepared, outcomes


async def _claim_ids(
    session: AsyncSession, tenant_id: uuid.UUID, message_ids: list[uuid.UUID], batch: int, now: datetime
) -> list[uuid.UUID]:
    """Claim the messages, and other due ones up to `batch` in all, in the transaction's first statement:
    a conditional write, so of two workers the second waits for the first's commit and then matches
    nothing (on SQLite too, where a transaction that read first could not take the write lock after
    another commit). On PostgreSQL the others are chosen SKIP LOCKED: claimers do not queue up."""
    wanted: Any = is_one_of(session, Message.id, message_ids)
    if batch > len(message_ids):
        due = (
            select(Message.id)
            .where(
                owned_by(tenant_id, Message),
                Message.status == MessageStatus.scheduled.value,
                Message.scheduled_for <= now,
                Message.id.not_in(message_ids),
            )
            .order_by(Message.scheduled_for)
            .limit(batch - len(message_ids))
            .with_for_update(skip_locked=True)
        )
        wanted = or_(wanted, Message.id.in_(due.scalar_subquery()))
    statement = (
        update(Message)
        .where(owned_by(tenant_id, Message), Message.status == MessageStatus.scheduled.value, wanted)
        .values(
            status=MessageStatus.sending.value,
            lease_expires_at=now + LEASE,
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(statement)).scalars())


async def _tenant_context(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> _TenantContext:
    row = await load_row(session, tenant_id)
    channel_settings = settings_from_row(row)
    tenant = await session.get(Tenant, tenant_id)
    secret_key = settings.resolved_secret_key
    return _TenantContext(
        settings=channel_settings,
        merchant=channel_settings.from_name or (tenant.name if tenant else ""),
        sms_auth_token=unseal(secret_key, SMS_TOKEN, tenant_id, row.sms_auth_token_sealed if row else None),
        whop_api_key=unseal(secret_key, WHOP_KEY, tenant_id, row.whop_api_key_sealed if row else None),
        templates={},
    )


async def _prepare(
    session: AsyncSession,
    settings: Settings,
    message: Message,
    customer: Customer,
    case: RecoveryCase | None,
    where: tuple[str | None, str | None],
    context: _TenantContext,
    now: datetime,
) -> Prepared | str:
    """Render the claimed message and say what the provider call needs; or, when it may no longer
    be sent, record why (returning what happened)."""
    tenant_id = message.tenant_id
    address, reason = where
    if reason is not None:
        _transition(session, message, MessageStatus.suppressed, reason, now)
        return "suppressed"
    unsubscribe_url = link(settings, message, LinkPurpose.unsubscribe, now)  # in the body and the header
    try:
        rendered, locale = await render_message(
            session, settings, message, customer, case, context, now, unsubscribe_url
        )
    except TemplateError as error:
        _transition(session, message, MessageStatus.failed, f"the template cannot be rendered: {error}", now)
        return "failed"
    message.to_address, message.locale = address, locale
    message.subject, message.body_text, message.body_html = rendered.subject, rendered.body_text, rendered.body_html
    return Prepared(
        message_id=message.id,
        tenant_id=tenant_id,
        channel=message.channel,
        attempts=message.attempts,
        to_address=address,
        subject=rendered.subject,
        body_text=rendered.body_text,
        body_html=rendered.body_html,
        from_name=context.merchant,
        from_address=context.settings.from_address,
        unsubscribe_url=unsubscribe_url,
        status_callback_url=f"{public_url(settings)}/sms/{tenant_id}/status",
        settings=context.settings,
        sms_auth_token=context.sms_auth_token,
        whop_api_key=context.whop_api_key,
    )


Attempt = Sent | TemporaryFailure | PermanentFailure | OutcomeUnknown


async def _attempt(settings: Settings, prepared: Prepared) -> Attempt:
    try:
        return await _send(settings, prepared)
    except (TemporaryFailure, PermanentFailure, OutcomeUnknown) as error:
        return error


async def _record(db: Database, tenant_id: uuid.UUID, results: list[tuple[Prepared, Attempt]]) -> dict[uuid.UUID, str]:
    """Record every attempt of a claim in one transaction. A message no longer `sending` (its lease
    ran out and it was resolved meanwhile) keeps what was recorded."""
    outcomes: dict[uuid.UUID, str] = {}
    now = utcnow()
    async with db.tenant_unit_of_work(tenant_id) as session:
        sent = [(prepared, result) for prepared, result in results if isinstance(result, Sent)]
        for captured in (False, True):
            group = [(prepared, result) for prepared, result in sent if result.captured is captured]
            if group:
                outcomes |= await _record_sent(session, tenant_id, group, captured, now)
        for prepared, result in results:
            if not isinstance(result, Sent):
                outcomes[prepared.message_id] = await _record_one(session, tenant_id, prepared, result, now)
    return outcomes


async def _record_sent(
    session: AsyncSession, tenant_id: uuid.UUID, group: list[tuple[Prepared, Sent]], captured: bool, now: datetime
) -> dict[uuid.UUID, str]:
    """Mark the group sent in one conditional statement, then store each provider message id."""
    ids = [prepared.message_id for prepared, _ in group]
    statement = (
        update(Message)
        .where(
            owned_by(tenant_id, Message),
            is_one_of(session, Message.id, ids),
            Message.status == MessageStatus.sending.value,
        )
        .values(
            status=MessageStatus.sent.value,
            sent_at=now,
            captured=captured,
            lease_expires_at=None,
            reason=None,
            updated_at=now,
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    moved = set((await session.execute(statement)).scalars())
    provider_ids = [
        {"id": prepared.message_id, "provider_message_id": result.provider_message_id}
        for prepared, result in group
        if prepared.message_id in moved and result.provider_message_id is not None
    ]
    if provider_ids:
        await session.execute(update(Message), provider_ids)
    data = {"captured": True} if captured else {}
    await record_events(
        session, tenant_id, [(message_id, MessageStatus.sent.value, None, data) for message_id in moved], now
    )
    label = "captured" if captured else "sent"
    return {message_id: label if message_id in moved else "done" for message_id in ids}


async def _record_one(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    prepared: Prepared,
    result: TemporaryFailure | PermanentFailure | OutcomeUnknown,
    now: datetime,
) -> str:
    message_id = prepared.message_id
    retry = isinstance(result, TemporaryFailure) or (
        isinstance(result, OutcomeUnknown) and prepared.channel in IDEMPOTENT_CHANNELS
    )
    if retry and prepared.attempts < MAX_ATTEMPTS:
        due = now + min(RETRY_BASE * 2 ** (prepared.attempts - 1), RETRY_MAX)
        reason = f"retrying: {result}"
        values = {"lease_expires_at": None, "reason": reason, "scheduled_for": due}
        if not await _move(session, tenant_id, message_id, MessageStatus.sending, MessageStatus.scheduled, values):
            return "done"
        _event(session, tenant_id, message_id, MessageStatus.scheduled, reason, now, {})
        # A job of its own, durable in the outbox: the job that failed it may have been another's.
        enqueue(session, SEND, tenant_id=tenant_id, not_before=due, message_ids=[str(message_id)])
        return "retrying"
    if retry:
        reason = f"gave up after {prepared.attempts} tries: {result}"
    elif isinstance(result, OutcomeUnknown):
        reason = f"{INTERRUPTED}: {result}"
    else:
        reason = str(result)
    if not await _move(
        session,
        tenant_id,
        message_id,
        MessageStatus.sending,
        MessageStatus.failed,
        {"lease_expires_at": None, "reason": reason},
    ):
        return "done"
    _event(session, tenant_id, message_id, MessageStatus.failed, reason, now, {})
    if isinstance(result, PermanentFailure) and result.suppress and prepared.to_address:
        await ConsentRepository(session, tenant_id).suppress(prepared.channel, prepared.to_address.lower(), reason)
    return "failed"


def _event(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    message_id: uuid.UUID,
    status: MessageStatus,
    reason: str | None,
    now: datetime,
    data: dict[str, Any],
) -> None:
    session.add(
        MessageEvent(
            tenant_id=tenant_id, message_id=message_id, status=status.value, reason=reason, data=data, occurred_at=now
        )
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
    if message.channel in IDEMPOTENT_CHANNELS:
        if await _move(session, tenant_id, message_id, MessageStatus.sending, MessageStatus.scheduled, {}, lapsed):
            await session.refresh(message)
            _requeue(session, message, now)
        return "requeued"
    if await _move(session, tenant_id, message_id, MessageStatus.sending, MessageStatus.failed, {}, lapsed):
        await session.refresh(message)
        _transition(session, message, MessageStatus.failed, INTERRUPTED, now)
    return "interrupted"


def _requeue(session: AsyncSession, message: Message, now: datetime) -> None:
    """An interrupted send of an idempotent channel: scheduled again, and its job enqueued."""
    message.lease_expires_at = None
    _transition(session, message, MessageStatus.scheduled, "resent after an interrupted send", now)
    enqueue(session, SEND, tenant_id=message.tenant_id, message_ids=[str(message.id)])


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
    case: RecoveryCase | None,
    context: _TenantContext,
    now: datetime,
    unsubscribe_url: str,
) -> tuple[Rendered, str]:
    """The message's template for the customer's locale (with fallbacks), rendered, and that locale."""
    customer_locale = (customer.traits or {}).get("locale")
    chosen_key = (message.template, message.channel, str(customer_locale))
    if chosen_key not in context.templates:
        context.templates[chosen_key] = await choose_template(
            session, message.tenant_id, message.template, message.channel, customer, context.settings
        )
    template, locale = context.templates[chosen_key]
    variables = template_variables(message.variables, customer, case, context.merchant)
    variables |= {
        "update_payment_link": link(settings, message, LinkPurpose.update_payment, now),
        "offer_link": link(settings, message, LinkPurpose.offer, now),
        "unsubscribe_link": unsubscribe_url,
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
    if prepared.channel == Channel.sms.value:
        return await _send_sms(settings, prepared)
    return await _send_whop(settings, prepared)


async def _send_sms(settings: Settings, prepared: Prepared) -> Sent:
    if settings.sms_api_url is None:
        return Sent(provider_message_id=None, captured=True)
    account = prepared.settings
    if not (account.sms_account_sid and account.sms_from_number and prepared.sms_auth_token):
        raise PermanentFailure(
            "SMS is not set up for the tenant (account SID, auth token, from number)", suppress=False
        )
    sid = await sms.send_sms(
        settings.sms_api_url,
        account.sms_account_sid,
        prepared.sms_auth_token,
        to=prepared.to_address or "",
        from_=account.sms_from_number,
        body=prepared.body_text,
        status_callback=prepared.status_callback_url,
    )
    return Sent(provider_message_id=sid, captured=False)


async def _send_whop(settings: Settings, prepared: Prepared) -> Sent:
    if prepared.whop_api_key is None:
        return Sent(provider_message_id=None, captured=True)
    if not prepared.settings.whop_account_id:
        raise PermanentFailure("Whop notifications need the tenant's Whop account id (biz_...)", suppress=False)
    await whop_notify.notify(
        settings.whop_api_url,
        prepared.whop_api_key,
        account_id=prepared.settings.whop_account_id,
        user_id=prepared.to_address or "",
        title=prepared.subject or prepared.from_name,
        content=prepared.body_text,
        idempotency_key=str(prepared.message_id),
    )
    return Sent(provider_message_id=None, captured=False)


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
    if status is not MessageStatus.sending:
        message.lease_expires_at = None
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
            if message.channel in IDEMPOTENT_CHANNELS:
                _requeue(session, message, now)
                continue
            message.lease_expires_at = None
            _transition(session, message, MessageStatus.failed, INTERRUPTED, now)
        return len(stale)
