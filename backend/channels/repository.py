"""Tenant-scoped reads and writes of messages, their events, templates and consent."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from churnsaver.backend.cases.models import CaseStatus, RecoveryCase
from churnsaver.backend.channels.models import (
    REACHING,
    Channel,
    ChannelOptOut,
    LinkClick,
    Message,
    MessageEvent,
    MessageTemplate,
    SmsConsent,
    SuppressedAddress,
)
from churnsaver.backend.core.bulk import insert_rows, is_one_of
from churnsaver.backend.core.db import insert_for
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_page
from churnsaver.backend.core.repository import TenantRepository

NEWEST_FIRST = KeysetOrder(time_column="created_at", descending=True)
EVENT_COLUMNS = ("id", "message_id", "status", "reason", "data")


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What a list of messages is narrowed to; None: not narrowed by it."""

    case_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    channels: list[str] | None = None
    statuses: list[str] | None = None


class MessageRepository(TenantRepository[Message]):
    model = Message

    async def by_idempotency_key(self, key: str) -> Message | None:
        statement = self.select_readable().where(Message.idempotency_key == key)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_provider_id(self, channel: str, provider_message_id: str) -> Message | None:
        statement = self.select_readable().where(
            Message.channel == channel, Message.provider_message_id == provider_message_id
        )
        return (await self.session.execute(statement.limit(1))).scalar_one_or_none()

    async def by_idempotency_keys(self, keys: list[str]) -> dict[str, Message]:
        if not keys:
            return {}
        statement = self.select_readable().where(is_one_of(self.session, Message.idempotency_key, keys))
        return {message.idempotency_key: message for message in (await self.session.execute(statement)).scalars()}

    async def insert_new(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the messages whose idempotency key is not taken; the keys of those this call
        inserted. A concurrent insert of a key waits for the first transaction, then skips it."""
        if not rows:
            return set()
        insert = insert_for(self.session)(Message).on_conflict_do_nothing(
            index_elements=["tenant_id", "idempotency_key"]
        )
        statement = insert.returning(Message.idempotency_key)
        result = await self.session.execute(statement, [{"tenant_id": self.tenant_id, **row} for row in rows])
        return set(result.scalars())

    async def in_app_of_open_cases(self, customer_id: uuid.UUID, statuses: Sequence[str], limit: int) -> list[Message]:
        """The customer's in-app messages in `statuses` whose case is still open, newest first."""
        statement = (
            self.select_readable()
            .join(RecoveryCase, RecoveryCase.id == Message.case_id)
            .where(
                self.owned(RecoveryCase),
                RecoveryCase.status == CaseStatus.open.value,
                Message.customer_id == customer_id,
                Message.channel == Channel.in_app.value,
                Message.status.in_(statuses),
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def locked(self, message_id: uuid.UUID) -> Message | None:
        """The message, locked until the transaction ends: two workers claiming it take turns."""
        statement = self.select_readable().where(Message.id == message_id).with_for_update()
        statement = statement.execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def reaching_counts(self, customer_id: uuid.UUID, since: datetime) -> dict[str, int]:
        when = func.coalesce(Message.sent_at, Message.scheduled_for, Message.created_at)
        statement = (
            self.select_readable(Message.channel, func.count())
            .where(
                Message.customer_id == customer_id,
                Message.status.in_([status.value for status in REACHING]),
                Message.test.is_(False),
                when >= since,
            )
            .group_by(Message.channel)
        )
        return {channel: count for channel, count in (await self.session.execute(statement)).all()}

    def select_matching(self, query: MessageQuery) -> Select[Any]:
        statement = self.select_readable()
        if query.case_id is not None:
            statement = statement.where(Message.case_id == query.case_id)
        if query.customer_id is not None:
            statement = statement.where(Message.customer_id == query.customer_id)
        if query.channels is not None:
            statement = statement.where(Message.channel.in_(query.channels))
        if query.statuses is not None:
            statement = statement.where(Message.status.in_(query.statuses))
        return statement

    async def page(self, statement: Select[Any], *, first: int | None, after: str | None) -> Page[Any]:
        return await keyset_page(
            self.session, statement, Message, first=first, after=after, with_total=True, order=NEWEST_FIRST
        )

    async def pages_of_cases(
        self, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
    ) -> dict[uuid.UUID, Page[Message]]:
        return await self.pages_by(
            Message.case_id, case_ids, first=first, after=after, with_total=True, order=NEWEST_FIRST
        )


class MessageEventRepository(TenantRepository[MessageEvent]):
    model = MessageEvent

    async def insert_many(
        self, events: Sequence[tuple[uuid.UUID, str, str | None, dict[str, Any]]], now: datetime
    ) -> None:
        """One event (message id, status, reason, data) per message, all at `now`, in one statement."""
        rows = [
            (ordered_uuid().hex, message_id.hex, status, reason, data) for message_id, status, reason, data in events
        ]
        shared = {"tenant_id": self.tenant_id, "occurred_at": now}
        await insert_rows(self.session, MessageEvent.__table__, shared, EVENT_COLUMNS, rows)

    async def of_message(self, message_id: uuid.UUID) -> list[MessageEvent]:
        statement = self.select_readable().where(MessageEvent.message_id == message_id)
        return list(
            (await self.session.execute(statement.order_by(MessageEvent.occurred_at, MessageEvent.id))).scalars()
        )


class TemplateRepository(TenantRepository[MessageTemplate]):
    model = MessageTemplate

    async def find(self, key: str, channel: str, locale: str) -> MessageTemplate | None:
        statement = self.select_readable().where(
            MessageTemplate.key == key, MessageTemplate.channel == channel, MessageTemplate.locale == locale
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def all(self) -> list[MessageTemplate]:
        statement = self.select_readable().order_by(
            MessageTemplate.key, MessageTemplate.channel, MessageTemplate.locale
        )
        return list((await self.session.execute(statement)).scalars())


class ConsentRepository(TenantRepository[ChannelOptOut]):
    model = ChannelOptOut

    async def opted_out(self, customer_id: uuid.UUID, channel: str) -> bool:
        statement = self.select_readable(ChannelOptOut.id).where(
            ChannelOptOut.customer_id == customer_id, ChannelOptOut.channel == channel
        )
        return (await self.session.execute(statement)).first() is not None

    async def opt_out(self, customer_id: uuid.UUID, channel: str, source: str) -> None:
        insert = insert_for(self.session)(ChannelOptOut).values(
            id=uuid.uuid4(), tenant_id=self.tenant_id, customer_id=customer_id, channel=channel, source=source
        )
        await self.session.execute(
            insert.on_conflict_do_nothing(index_elements=["tenant_id", "customer_id", "channel"])
        )

    async def opt_outs_of(self, customer_ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
        statement = self.select_readable(ChannelOptOut.customer_id, ChannelOptOut.channel).where(
            is_one_of(self.session, ChannelOptOut.customer_id, customer_ids)
        )
        return {(row.customer_id, row.channel) for row in await self.session.execute(statement)}

    async def sms_consented(self, customer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        statement = select(SmsConsent.customer_id).where(
            self.owned(SmsConsent), is_one_of(self.session, SmsConsent.customer_id, customer_ids)
        )
        return set((await self.session.execute(statement)).scalars())

    async def suppressions(self, addresses: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The reason each suppressed (channel, address) among `addresses` is suppressed."""
        statement = select(SuppressedAddress.channel, SuppressedAddress.address, SuppressedAddress.reason).where(
            self.owned(SuppressedAddress),
            is_one_of(self.session, SuppressedAddress.address, sorted({address for _, address in addresses})),
        )
        rows = await self.session.execute(statement)
        return {(row.channel, row.address): row.reason for row in rows if (row.channel, row.address) in addresses}

    async def suppression(self, channel: str, address: str) -> SuppressedAddress | None:
        statement = select(SuppressedAddress).where(
            self.owned(SuppressedAddress), SuppressedAddress.channel == channel, SuppressedAddress.address == address
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def suppress(self, channel: str, address: str, reason: str) -> None:
        insert = insert_for(self.session)(SuppressedAddress).values(
            id=uuid.uuid4(), tenant_id=self.tenant_id, channel=channel, address=address, reason=reason
        )
        await self.session.execute(insert.on_conflict_do_nothing(index_elements=["tenant_id", "channel", "address"]))

    async def sms_consent(self, customer_id: uuid.UUID) -> SmsConsent | None:
        statement = select(SmsConsent).where(self.owned(SmsConsent), SmsConsent.customer_id == customer_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def record_sms_consent(self, customer_id: uuid.UUID, phone: str, source: str) -> None:
        values = {"phone": phone, "source": source}
        insert = insert_for(self.session)(SmsConsent).values(
            id=uuid.uuid4(), tenant_id=self.tenant_id, customer_id=customer_id, **values
        )
        await self.session.execute(
            insert.on_conflict_do_update(index_elements=["tenant_id", "customer_id"], set_=values)
        )

    async def customers_of_phone(self, phone: str) -> list[uuid.UUID]:
        """Customers `phone` (E.164) is known for: their SMS consent, or an SMS sent to it."""
        consented = select(SmsConsent.customer_id).where(self.owned(SmsConsent), SmsConsent.phone == phone)
        messaged = select(Message.customer_id).where(
            self.owned(Message), Message.channel == "sms", Message.to_address == phone
        )
        found = (await self.session.execute(consented.union(messaged))).scalars()
        return sorted(set(found), key=str)

    async def record_click(self, message_id: uuid.UUID, purpose: str) -> None:
        self.session.add(LinkClick(tenant_id=self.tenant_id, message_id=message_id, purpose=purpose))
        await self.session.flush()
