"""Tenant-scoped reads and writes of cases, case events, case settings and the consumer's cursor.

Lists page by keyset: by priority (highest first, then id) with a cursor of their own, or by
opening time (newest first) with core's (time, id) cursor. Reconciling reads a batch of
customers' cases in one statement and writes in bulk."""

import base64
import binascii
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_

from churnsaver.backend.cases.models import CaseEvent, CaseSettingsRow, CaseStatus, RecoveryCase
from churnsaver.backend.core.bulk import is_one_of
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import KeysetOrder, Page, clamp_page_size, keyset_page
from churnsaver.backend.core.repository import TenantRepository

NEWEST_OPENED_FIRST = KeysetOrder(time_column="opened_at", descending=True)
OLDEST_EVENT_FIRST = KeysetOrder(time_column="occurred_at")


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """What a list of cases is narrowed to; None: not narrowed by it."""

    statuses: list[str] | None = None
    kinds: list[str] | None = None
    customer_id: uuid.UUID | None = None
    overdue: bool | None = None
    assignee: str | None = None


class CaseRepository(TenantRepository[RecoveryCase]):
    model = RecoveryCase

    def select_matching(self, query: CaseQuery, now: datetime) -> Select[Any]:
        statement = self.select_readable()
        if query.statuses is not None:
            statement = statement.where(RecoveryCase.status.in_(query.statuses))
        if query.kinds is not None:
            statement = statement.where(RecoveryCase.kind.in_(query.kinds))
        if query.customer_id is not None:
            statement = statement.where(RecoveryCase.customer_id == query.customer_id)
        if query.assignee is not None:
            statement = statement.where(RecoveryCase.assignee == query.assignee)
        if query.overdue is not None:
            overdue = (
                (RecoveryCase.status == CaseStatus.open.value)
                & RecoveryCase.first_touch_at.is_(None)
                & (RecoveryCase.first_touch_due_at < now)
            )
            statement = statement.where(overdue if query.overdue else ~overdue)
        return statement

    async def page_by_priority(
        self, statement: Select[Any], *, first: int | None, after: str | None, with_total: bool = False
    ) -> Page[Any]:
        """Highest priority first (the expected loss), ties by id."""
        size = clamp_page_size(first)
        total = None
        if with_total:
            counting = select(func.count()).select_from(statement.order_by(None).subquery())
            total = (await self.session.execute(counting)).scalar_one()
        if after is not None:
            priority, case_id = _decode_priority_cursor(after)
            statement = statement.where(tuple_(RecoveryCase.priority, RecoveryCase.id) < (priority, case_id))
        statement = statement.order_by(RecoveryCase.priority.desc(), RecoveryCase.id.desc()).limit(size + 1)
        rows = list((await self.session.execute(statement)).scalars())
        shown = rows[:size]
        return Page(
            rows=shown,
            cursors=[_encode_priority_cursor(row.priority, row.id) for row in shown],
            has_next_page=len(rows) > size,
            has_previous_page=after is not None,
            total_count=total,
        )

    async def page_by_opening(
        self, statement: Select[Any], *, first: int | None, after: str | None, with_total: bool = False
    ) -> Page[Any]:
        return await keyset_page(
            self.session,
            statement,
            RecoveryCase,
            first=first,
            after=after,
            with_total=with_total,
            order=NEWEST_OPENED_FIRST,
        )

    async def of_customers(self, customer_ids: Collection[uuid.UUID]) -> list[RecoveryCase]:
        statement = self.select_readable().where(is_one_of(self.session, RecoveryCase.customer_id, list(customer_ids)))
        return list((await self.session.execute(statement)).scalars())

    async def open_of_kind(self, customer_id: uuid.UUID, kind: str) -> RecoveryCase | None:
        statement = self.select_readable().where(
            RecoveryCase.customer_id == customer_id,
            RecoveryCase.kind == kind,
            RecoveryCase.status == CaseStatus.open.value,
        )
        return (await self.session.execute(statement)).scalars().first()

    async def open_of_customer(self, customer_id: uuid.UUID, limit: int) -> list[RecoveryCase]:
        """The customer's open cases, the one that matters most first: highest priority, then newest."""
        statement = (
            self.select_readable()
            .where(RecoveryCase.customer_id == customer_id, RecoveryCase.status == CaseStatus.open.value)
            .order_by(RecoveryCase.priority.desc(), RecoveryCase.opened_at.desc(), RecoveryCase.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())


class CaseEventRepository(TenantRepository[CaseEvent]):
    model = CaseEvent

    async def page_of_case(self, case_id: uuid.UUID, *, first: int | None, after: str | None) -> Page[CaseEvent]:
        """A case's timeline, oldest first."""
        statement = self.select_readable().where(CaseEvent.case_id == case_id)
        return await keyset_page(
            self.session, statement, CaseEvent, first=first, after=after, with_total=True, order=OLDEST_EVENT_FIRST
        )

    async def pages_of_cases(
        self, case_ids: list[uuid.UUID], *, first: int | None, after: str | None
    ) -> dict[uuid.UUID, Page[CaseEvent]]:
        """The same page of each case's timeline, from one statement (a dataloader's batch)."""
        return await self.pages_by(
            CaseEvent.case_id, case_ids, first=first, after=after, with_total=True, order=OLDEST_EVENT_FIRST
        )

    async def of_cases(self, case_ids: Collection[uuid.UUID], *, types: Collection[str]) -> list[CaseEvent]:
        statement = self.select_readable().where(
            is_one_of(self.session, CaseEvent.case_id, list(case_ids)), CaseEvent.type.in_(list(types))
        )
        return list((await self.session.execute(statement.order_by(CaseEvent.occurred_at, CaseEvent.id))).scalars())


class CaseSettingsRepository(TenantRepository[CaseSettingsRow]):
    model = CaseSettingsRow

    async def find(self) -> CaseSettingsRow | None:
        return (await self.session.execute(self.select_readable())).scalar_one_or_none()


def _encode_priority_cursor(priority: float, case_id: uuid.UUID) -> str:
    # repr() of a float reads back to the very same float: the next page starts exactly after it.
    return base64.urlsafe_b64encode(f"case|{float(priority)!r}|{case_id}".encode()).decode().rstrip("=")


def _decode_priority_cursor(cursor: str) -> tuple[float, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, priority, case_id = raw.split("|")
        if kind != "case":
            raise ValueError("not a case cursor")
        return float(priority), uuid.UUID(case_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor") from None
