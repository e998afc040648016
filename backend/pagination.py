"""Keyset pagination over (created_at, id), with opaque cursors.

When the caller wants the total count, the page and the count come back from one SQL statement:
the count is a one-row derived table, left-joined to the page, so even an empty page reports the
total. Counting costs a scan of the tenant's rows, so it is done only when asked for.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from churnsaver.backend.errors import InvalidInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None


def encode_cursor(created_at: datetime, record_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, record_id = raw.split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor") from None


def clamp_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise InvalidInput("`first` must not be negative")
    return min(first, MAX_PAGE_SIZE)


async def keyset_page(
    session: AsyncSession,
    statement: Select[Any],
    model: type[Any],
    *,
    first: int | None,
    after: str | None,
    with_total: bool = True,
) -> Page[Any]:
    """Page through `statement` (a select of `model`, already filtered) in (created_at, id) order."""
    size = clamp_page_size(first)
    page_statement = statement
    if after is not None:
        created_at, record_id = decode_cursor(after)
        # A row-value comparison: both backends turn it into an index range on (created_at, id);
        # the equivalent OR of two conditions makes them read every row before the cursor.
        page_statement = page_statement.where(tuple_(model.created_at, model.id) > (created_at, record_id))
    page_statement = page_statement.order_by(model.created_at, model.id).limit(size + 1)
    if with_total:
        rows, total_count = await _page_with_total(session, statement, page_statement, model)
    else:
        rows, total_count = list((await session.execute(page_statement)).scalars()), None
    return Page(
        rows=rows[:size],
        cursors=[encode_cursor(r.created_at, r.id) for r in rows[:size]],
        has_next_page=len(rows) > size,
        has_previous_page=after is not None,
        total_count=total_count,
    )


async def _page_with_total(
    session: AsyncSession, statement: Select[Any], page_statement: Select[Any], model: type[Any]
) -> tuple[list[Any], int]:
    page = page_statement.subquery("page")
    total = select(func.count().label("total")).select_from(statement.order_by(None).subquery()).subquery("total")
    row = aliased(model, page)
    combined = (
        select(total.c.total, row).select_from(total).outerjoin(page, true()).order_by(page.c.created_at, page.c.id)
    )
    results = (await session.execute(combined)).all()
    return [result[1] for result in results if result[1] is not None], results[0].total
