"""Channels for the domains above (the seam campaigns calls) and for the API and CLI.

The seam takes a tenant id, not a subject: campaigns acts for the system, in its own transaction.
`schedule_message` stores the message and enqueues its `channels.send` job through the outbox in
that same transaction, so a rollback drops both and a commit keeps both. A message that may not be
sent (opted out, suppressed address, no address, no SMS consent) is stored as `suppressed` with
its reason and never enqueued: it is visible, never silently dropped.

Quiet hours and caps are enforced by campaigns (it chooses when a step is due); channels stores
the settings (`settings_for`) and counts what reached each customer (`sent_counts`).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.channels.addresses import e164, email_address
from churnsaver.backend.channels.models import Channel, Message, MessageEvent, MessageStatus
from churnsaver.backend.channels.repository import ConsentRepository, MessageRepository
from churnsaver.backend.channels.settings import ChannelSettings, load_settings
from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.customers.repository import CustomerIdentityRepository, CustomerRepository
from churnsaver.jobs.outbox import enqueue

SEND = "channels.send"
MAX_KEY = 255
MAX_TEMPLATE_KEY = 100


@dataclass(frozen=True, slots=True)
class ScheduleOutcome:
    message_id: uuid.UUID
    status: str
    created: bool  # False: a message with this idempotency key already existed, and is returned
    reason: str | None


def channel_of(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(f"unknown channel {value!r} (channels: {', '.join(c.value for c in Channel)})") from None


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
    kind = channel_of(channel)
    if not idempotency_key or len(idempotency_key) > MAX_KEY:
        raise InvalidInput(f"an idempotency key is 1 to {MAX_KEY} characters")
    if not template or len(template) > MAX_TEMPLATE_KEY:
        raise InvalidInput(f"a template key is 1 to {MAX_TEMPLATE_KEY} characters")
    messages = MessageRepository(session, tenant_id)
    if (existing := await messages.by_idempotency_key(idempotency_key)) is not None:
        return _outcome(existing, created=False)
    customer = await CustomerRepository(session, tenant_id).get_or_raise(customer_id, what="customer")
    address, reason = await destination(session, tenant_id, customer, kind)
    status = MessageStatus.suppressed if reason else MessageStatus.scheduled
    message_id = ordered_uuid()
    now = utcnow()
    created = await messages.insert_once(
        {
            "id": message_id,
            "customer_id": customer_id,
            "case_id": case_id,
            "campaign_id": campaign_id,
            "channel": kind.value,
            "template": template,
            "idempotency_key": idempotency_key,
            "status": status.value,
            "reason": reason,
            "variables": dict(variables or {}),
            "to_address": address,
            "test": test,
            "scheduled_for": not_before or now,
            "created_at": now,
            "updated_at": now,
        }
    )
    if not created:
        found = await messages.by_idempotency_key(idempotency_key)
        assert found is not None  # the insert found the key taken
        return _outcome(found, created=False)
    session.add(MessageEvent(tenant_id=tenant_id, message_id=message_id, status=status.value, reason=reason))
    if status is MessageStatus.scheduled:
        enqueue(session, SEND, tenant_id=tenant_id, not_before=not_before, message_id=str(message_id))
    return ScheduleOutcome(message_id=message_id, status=status.value, created=True, reason=reason)


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
    consent = ConsentRepository(session, tenant_id)
    if await consent.opted_out(customer.id, channel.value) or _trait_consent(customer, channel) is False:
        return None, f"the customer opted out of {channel.value}"
    address: str | None = None
    if channel is Channel.email:
        address = email_address(customer.email)
        if address is None:
            return None, "the customer has no valid email address"
    elif channel is Channel.sms:
        country = (customer.traits or {}).get("country")
        address = e164(customer.phone, country if isinstance(country, str) else None)
        if address is None:
            return None, "the customer has no valid phone number"
        recorded = await consent.sms_consent(customer.id)
        if recorded is None and _trait_consent(customer, channel) is not True:
            return address, "no SMS consent recorded for the customer"
    elif channel is Channel.whop:
        address = await _whop_user(session, tenant_id, customer.id)
        if address is None:
            return None, "the customer has no Whop user"
    if address is not None and (suppressed := await consent.suppression(channel.value, address.lower())) is not None:
        return address, f"the address is suppressed: {suppressed.reason}"
    return address, None


async def _whop_user(session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID) -> str | None:
    identities = (await CustomerIdentityRepository(session, tenant_id).by_customer([customer_id])).get(customer_id, [])
    return next((i.provider_id for i in identities if isinstance(i, CustomerIdentity) and i.provider == "whop"), None)


def _outcome(message: Message, *, created: bool) -> ScheduleOutcome:
    return ScheduleOutcome(message_id=message.id, status=message.status, created=created, reason=message.reason)
